"""The density model of AffLL: a PixelCNN-like autoregressive density with a continuous mixture head.

Paper §3.4 / App. D: fit a tractable density p(y) = Π_j p(y_j | y_<j) (raster order) to HR images by
maximum likelihood, then train the SR generator to maximise log p(ŷ). The paper used a PixelCNN whose
categorical softmax is replaced by an MCGSM (Theis et al. 2012), because a softmax over 256 intensity
levels is not differentiable w.r.t. the pixel values and AffLL needs ∂ log p(ŷ) / ∂ŷ.

Architecture (every choice below that the paper does not state is [ours]):

* **Causal features.** ``layers`` masked convolutions of ``width`` maps with ReLU: the first of kernel
  ``first_kernel`` and mask type A (pixel j does not see itself), the others of kernel ``kernel`` and
  mask type B (it sees its own *features*), with a residual skip around each type-B layer (branch
  scaled by 1/√(layers − 1)). The input is (2y − 1) plus a constant-ones map, so zero padding reads as
  mid-grey and the network can tell where the border is. The result h_j (B, width, H, W) depends only on pixels before j in raster order. This is
  the plain (van den Oord et al. 2016a) PixelCNN stack, with its known blind spot: some pixels above-right
  of j are outside the receptive field even though they are allowed.
* **Colour.** The masks are spatial only: all channels of pixel j are modelled *jointly* by one mixture
  per pixel. Within a component the channels are chained (PixelCNN++-style): the mean of channel c is
  sigmoid(m_kc(h_j) + Σ_{c'<c} γ_kcc'(h_j) y_jc'), so the per-pixel density is a proper C-dimensional one. For the
  default grey data (C = 1) this reduces to a one-dimensional mixture.
* **MCGSM-like head.** A mixture of K = ``components`` *truncated* Gaussians on [0, 1] per channel:
  p(y_j | y_<j) = Σ_k π_k(h_j) Π_c TN(y_jc; μ_kc, σ_kc; [0, 1]), with means and log-scales linear in h_j
  (1×1 convolutions; MCGSM: mean A_c x linear in the neighbourhood). The gating follows MCGSM's quadratic
  form p(c | x) ∝ exp(η_c − ½ Σ_i β_ci² (b_iᵀ x)²): F = ``features`` shared projections b_i of h_j
  (a 1×1 conv without bias) are squared and weighted per component by β_ki², so
  logit_k = η_k(h_j) − ½ Σ_i β_ki² (b_iᵀ h_j)², with η_k linear in h_j (MCGSM: a constant) — that is our
  reading of "32 quadratic features". ``features: 0`` leaves a plain softmax gating. Unlike MCGSM the
  scale of a component is predicted from h_j (MCGSM: a per-(component, scale) constant e^{α_cs}), which
  also subsumes MCGSM's separate "scales" s. log σ is kept in [−log 256, 1] by a scaled sigmoid and the
  means (after the channel chain) in [0, 1] by a sigmoid, which bounds the density: unbounded peaks on the
  interval's edges were exploited by AffLL.
* **Why truncated.** Normalising each Gaussian on [0, 1] makes p a proper density on [0, 1]^D, so a
  uniform density scores exactly −8 bits/dim in the convention below and the per-pixel conditional
  integrates to one (tested). The same smooth formula is evaluated for values outside [0, 1] (e.g. a
  projected SR output slightly out of range): no −inf, gradients stay useful.

Bits/dim convention (D = C·H·W dimensions of one image)::

    log_likelihood_bits(y) = log2 p_[0,1](y) / D − 8      (higher = more likely)
    cross_entropy_bits(y)  = −log_likelihood_bits(y)       (lower = more likely) = bits_per_dim(y)

log2 p_[0,1](y)/D − 8 is the log-density of the image on the 8-bit [0, 256] intensity scale per dimension;
for dequantised 8-bit data it lower-bounds the discrete log-likelihood log2 P(k)/D (Theis et al. 2016). It
is the number the paper reports in App. E: data scored −4.10 bits/dim, AffLL's blurry outputs > −3.5
(i.e. cross-entropy 4.10 vs < 3.5 bits/dim in affsr's lower-is-better reports).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: log σ range of a mixture component (pixel scale [0, 1]); the floor is one bin of the [0, 1] dequantised
#: 8-bit scale (1/256), so no value can be given more density than data that fills its bin.
LOG_SCALE_MIN = -math.log(256.0)
LOG_SCALE_MAX = 1.0
#: bits per dimension of the uniform density on [0, 1] rescaled to the 8-bit scale [0, 256]: log2 256.
BITS_8 = 8.0
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class MaskedConv2d(nn.Conv2d):
    """A 'same'-padded conv whose kernel sees only pixels before the centre in raster order.

    Mask type ``A`` also hides the centre pixel (first layer: h_j must not see y_j), type ``B`` lets it
    through (later layers: h_j may use its own features). The mask is spatial: all input channels alike.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, mask_type: str):
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"masked conv kernel must be odd and ≥ 1, got {kernel}")
        super().__init__(in_channels, out_channels, kernel, padding=kernel // 2)
        mask = torch.ones(kernel, kernel)
        centre = kernel // 2
        mask[centre, centre + (mask_type == "B"):] = 0
        mask[centre + 1:] = 0
        # Derived from the constructor arguments, so not part of the state dict (snapshots stay weights only).
        self.register_buffer("mask", mask[None, None], persistent=False)
        self.mask_type = mask_type

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


def _log1mexp(x: Tensor) -> Tensor:
    """log(1 − eˣ) for x < 0, accurate near 0 and for large |x| (Mächler 2012)."""
    x = x.clamp(max=-1e-7)
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def _log_unit_mass(mean: Tensor, log_scale: Tensor) -> Tensor:
    """log(Φ(b) − Φ(a)), a = (0 − μ)/σ, b = (1 − μ)/σ: the mass of N(μ, σ²) on [0, 1], stably.

    Uses Φ(b) − Φ(a) = Φ(−a) − Φ(−b) to stay in the lower tail, where log Φ has full precision; both
    arguments are chosen before any log, so no discarded branch can put NaN into the gradients.
    """
    inv = torch.exp(-log_scale)
    a, b = -mean * inv, (1.0 - mean) * inv
    upper_tail = a >= 0  # the whole interval lies above μ: use the mirrored, lower-tail form
    hi = torch.where(upper_tail, -a, b)
    lo = torch.where(upper_tail, -b, a)
    log_hi = torch.special.log_ndtr(hi)
    return log_hi + _log1mexp(torch.special.log_ndtr(lo) - log_hi)


def truncated_normal_log_pdf(y: Tensor, mean: Tensor, log_scale: Tensor) -> Tensor:
    """log density of N(mean, e^{2·log_scale}) truncated to [0, 1], evaluated at y (broadcast shapes).

    The formula is smooth for y outside [0, 1] too (where the true truncated density is 0); callers
    that score continuous outputs rely on that to keep finite values and gradients.
    """
    dtype = torch.promote_types(torch.promote_types(y.dtype, mean.dtype), log_scale.dtype)
    # float64 inside: for σ ≪ 1 and μ outside [0, 1] the terms below are large and nearly cancel, and
    # torch's float32 gradient of log Φ is inaccurate far in the tail. Cheap: elementwise on the head only.
    y, mean, log_scale = (t.double() for t in (y, mean, log_scale))
    z = (y - mean) * torch.exp(-log_scale)
    out = -0.5 * z.square() - log_scale - _HALF_LOG_2PI - _log_unit_mass(mean, log_scale)
    return out.to(dtype)


class DensityModel(nn.Module):
    """PixelCNN-like autoregressive density over images in [0, 1] with a truncated-Gaussian MCGSM-like head.

    ``DensityModel(channels, cfg)`` with ``cfg`` an :class:`affsr.config.DensityConfig` (width, layers,
    kernel, first_kernel, components, features); see the module docstring for the architecture and the
    bits/dim convention. Images are (B, C, H, W) with C = ``channels``, any H, W; values on the [0, 1]
    scale (continuous: dequantise real 8-bit data with :func:`dequantize` first).
    """

    def __init__(self, channels: int, cfg):
        super().__init__()
        for key in ("width", "layers", "kernel", "first_kernel", "components"):
            if getattr(cfg, key) < 1:
                raise ValueError(f"density.{key} must be ≥ 1, got {getattr(cfg, key)}")
        if cfg.features < 0:
            raise ValueError(f"density.features must be ≥ 0, got {cfg.features}")
        for key in ("kernel", "first_kernel"):
            if getattr(cfg, key) % 2 == 0:
                raise ValueError(f"density.{key} must be odd (a centred causal mask), got {getattr(cfg, key)}")
        if channels < 1:
            raise ValueError(f"channels must be ≥ 1, got {channels}")
        self.channels = channels
        self.components = cfg.components
        self.n_features = cfg.features
        width, k, c = cfg.width, cfg.components, channels

        self.first = MaskedConv2d(c + 1, width, cfg.first_kernel, "A")  # +1: the constant-ones map
        self.body = nn.ModuleList(MaskedConv2d(width, width, cfg.kernel, "B") for _ in range(cfg.layers - 1))
        # 1/√(residual branches): the features' scale stays bounded with depth, which keeps the first
        # optimiser steps well conditioned (with unit branches one Adam step at lr 1e-3 often overshot).
        self.residual_scale = 1.0 / math.sqrt(max(1, cfg.layers - 1))
        # Head: 1×1 convolutions, i.e. per pixel, so causality is that of h.
        self.gate = nn.Conv2d(width, k, 1)  # η_k(h), the linear part of the gating logits
        self.quadratic = nn.Conv2d(width, cfg.features, 1, bias=False) if cfg.features else None  # b_iᵀh
        self.beta = nn.Parameter(0.1 * torch.randn(k, cfg.features)) if cfg.features else None  # β_ki
        self.mean = nn.Conv2d(width, k * c, 1)
        self.log_scale = nn.Conv2d(width, k * c, 1)
        n_coupling = c * (c - 1) // 2
        self.coupling = nn.Conv2d(width, k * n_coupling, 1) if n_coupling else None
        with torch.no_grad():
            self.mean.bias.fill_(0.5)
            # start wide: sigmoid(0.35) ≈ 0.587 → log σ ≈ −2.3, σ ≈ 0.1
            self.log_scale.bias.fill_(0.35)
        # (c, c') pairs with c' < c, in a fixed order, for the channel chain
        self._pairs = [(i, j) for i in range(c) for j in range(i)]

    # ------------------------------------------------------------------------------------- features

    def features(self, y: Tensor) -> Tensor:
        """Causal features h (B, width, H, W): h[..., r, s] depends on pixels before (r, s) only."""
        if y.ndim != 4 or y.shape[1] != self.channels:
            raise ValueError(f"expected images (B, {self.channels}, H, W), got {tuple(y.shape)}")
        ones = y.new_ones(y.shape[0], 1, *y.shape[2:])
        h = F.relu(self.first(torch.cat([2.0 * y - 1.0, ones], dim=1)))
        for layer in self.body:
            h = h + self.residual_scale * F.relu(layer(h))
        return h

    def conditionals(self, y: Tensor) -> dict[str, Tensor]:
        """The mixture parameters of every pixel's conditional p(y_j | y_<j).

        Returns ``log_weights`` (B, K, H, W) (log π_k, log-softmax over K), ``means`` (B, K, C, H, W)
        (μ_kc *including* the within-pixel channel chain, so they depend on y_j,<c) and ``log_scales``
        (B, K, C, H, W) (log σ_kc ∈ [LOG_SCALE_MIN, LOG_SCALE_MAX]); means lie in (0, 1).
        """
        h = self.features(y)
        b, _, height, width = y.shape
        k, c = self.components, self.channels
        logits = self.gate(h)
        if self.quadratic is not None:
            q = self.quadratic(h).square()  # (B, F, H, W): (b_iᵀ h)²
            logits = logits - 0.5 * torch.einsum("bfhw,kf->bkhw", q, self.beta.square())
        means = self.mean(h).view(b, k, c, height, width)
        if self.coupling is not None:
            gamma = self.coupling(h).view(b, k, len(self._pairs), height, width)
            shift = [means.new_zeros(b, k, height, width) for _ in range(c)]
            for p, (i, j) in enumerate(self._pairs):
                shift[i] = shift[i] + gamma[:, :, p] * y[:, None, j]
            means = means + torch.stack(shift, dim=2)
        # Means inside [0, 1] and σ ≥ 1/256 bound the density (≤ 2/(σ√2π) per value): with a mean far
        # outside the interval a truncated Gaussian piles unbounded density on the boundary, which AffLL
        # exploited (natural images: −26.7 bits/dim for saturated colour checkerboards).
        means = torch.sigmoid(means)
        raw = self.log_scale(h).view(b, k, c, height, width)
        log_scales = LOG_SCALE_MIN + (LOG_SCALE_MAX - LOG_SCALE_MIN) * torch.sigmoid(raw)
        return {"log_weights": F.log_softmax(logits, dim=1), "means": means, "log_scales": log_scales}

    # ---------------------------------------------------------------------------------- likelihoods

    def log_prob_pixels(self, y: Tensor) -> Tensor:
        """log p(y_j | y_<j) in nats for every pixel j (all channels jointly): (B, H, W)."""
        params = self.conditionals(y)
        per_component = truncated_normal_log_pdf(y[:, None], params["means"], params["log_scales"]).sum(2)
        return torch.logsumexp(params["log_weights"] + per_component, dim=1)

    def log_prob(self, y: Tensor) -> Tensor:
        """log p(y) = Σ_j log p(y_j | y_<j) in nats, density on [0, 1]^D: (B, C, H, W) → (B,)."""
        return self.log_prob_pixels(y).flatten(1).sum(1)

    def forward(self, y: Tensor) -> Tensor:
        """Same as :meth:`log_prob`: (B, C, H, W) → (B,) nats."""
        return self.log_prob(y)

    def log_likelihood_bits(self, y: Tensor) -> Tensor:
        """log2 p_[0,1](y)/D − 8 per image, D = C·H·W: bits/dim on the 8-bit scale, higher = more likely.

        (B, C, H, W) → (B,). The paper's App. E numbers: data −4.10, AffLL outputs > −3.5.
        """
        dims = y[0].numel()
        return self.log_prob(y) / (dims * math.log(2.0)) - BITS_8

    def cross_entropy_bits(self, y: Tensor) -> Tensor:
        """−log_likelihood_bits(y): bits/dim, lower = more likely (what affsr reports). (B, C, H, W) → (B,)."""
        return -self.log_likelihood_bits(y)

    def bits_per_dim(self, y: Tensor) -> Tensor:
        """The usual ML "bits/dim" (negative log-likelihood, lower = better); same as :meth:`cross_entropy_bits`."""
        return self.cross_entropy_bits(y)


def dequantize(y: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Uniform dequantisation of 8-bit images stored as k/255: (B, C, H, W) → same shape, values in [0, 1).

    Exactly: k = round(255·clip(y, 0, 1)), u ~ U[0, 1) i.i.d. per value, result (k + u)/256 — the 256
    intensity levels become the 256 bins [k/256, (k+1)/256) of [0, 1], so a density on [0, 1] is a
    density of (k + u) on [0, 256] divided by 256, and E_u[−log2 p_[0,256](k + u)] ≥ −log2 P(k)
    (Theis et al. 2016). For real data only, never for continuous model outputs. ``generator``: an
    optional torch.Generator on y's device, for reproducible noise (default: the global RNG).
    """
    levels = torch.round(y.clamp(0.0, 1.0) * 255.0)
    noise = torch.rand(y.shape, generator=generator, device=y.device, dtype=y.dtype)
    return (levels + noise) / 256.0
