"""The toy's networks: ``members`` independent 2-layer MLPs evaluated together (one per restart)."""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn

from affsr.config.training import CONSTRAINTS
from affsr.toy.roll import ToyOperator

#: The constraints of the 2-D toy: every one but ``projected_box`` (its [0, 1] box is for images).
TOY_CONSTRAINTS = tuple(c for c in CONSTRAINTS if c != "projected_box")
#: The generator sees x / X_SCALE (x has std ≈ 2.8 under p_X): standardised input, so the ReLU kinks
#: of the default initialisation (within ~1 of 0) spread over the data instead of its middle third.
X_SCALE = 3.0


class EnsembleLinear(nn.Module):
    """``members`` independent affine maps applied blockwise: h (members, b, inputs) → (members, b, outputs).

    Each member is initialised like ``nn.Linear`` (weights and bias ~ U(±1/√inputs)).
    """

    def __init__(self, members: int, inputs: int, outputs: int):
        super().__init__()
        bound = 1.0 / math.sqrt(inputs)
        self.weight = nn.Parameter(torch.empty(members, inputs, outputs).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, outputs).uniform_(-bound, bound))

    def forward(self, h: Tensor) -> Tensor:
        return torch.baddbmm(self.bias, h, self.weight)


class EnsembleMLP(nn.Module):
    """'2 FC layers × width' (paper): two hidden layers of ``width`` units, then a linear read-out —
    ``members`` independent copies of it, evaluated together.

    Input (B, inputs) is split into ``members`` consecutive blocks of B/members rows; block r goes
    through copy r. With ``members = 1`` this is a plain MLP. The copies share nothing, so training the
    ensemble on a loss that is a mean over the whole batch trains each copy exactly as on its own block
    (Adam's step is per parameter and invariant to the 1/members scale of each copy's gradient).
    """

    def __init__(self, inputs: int, width: int, outputs: int, members: int = 1,
                 activation: type[nn.Module] | None = None):
        super().__init__()
        make = activation or nn.ReLU
        self.members = members
        self.layers = nn.ModuleList([EnsembleLinear(members, inputs, width), EnsembleLinear(members, width, width),
                                     EnsembleLinear(members, width, outputs)])
        self.activations = nn.ModuleList([make(), make()])

    def forward(self, z: Tensor) -> Tensor:
        batch = z.shape[0]
        if batch % self.members:
            raise ValueError(f"EnsembleMLP: batch {batch} is not a multiple of members {self.members}")
        h = z.reshape(self.members, batch // self.members, z.shape[1])
        for layer, activation in zip(self.layers, self.activations):
            h = activation(layer(h))
        return self.layers[-1](h).reshape(batch, -1)

    def member(self, index: int) -> "EnsembleMLP":
        """Copy ``index`` as a stand-alone (``members = 1``) network."""
        if not 0 <= index < self.members:
            raise IndexError(f"member {index} of an ensemble of {self.members}")
        single = copy.deepcopy(self)
        single.members = 1
        for layer in single.layers:
            layer.weight = nn.Parameter(layer.weight.data[index:index + 1].clone())
            layer.bias = nn.Parameter(layer.bias.data[index:index + 1].clone())
        return single


def _leaky() -> nn.Module:
    return nn.LeakyReLU(0.2)


class ToyModel(nn.Module):
    """ŷ = g(x) for x (B, 1) → (B, 2); f is a 2-layer MLP (``hidden`` units) with unbounded outputs
    (no sigmoid on the toy), ``members`` independent copies of it (see :class:`EnsembleMLP`).

    ``projected``: ŷ = A⁺x + (I − A⁺A) f(x), so Aŷ = x for any weights (Eq. 7); ``soft``/``none``: ŷ = f(x).
    """

    def __init__(self, constraint: str, hidden: int = 64, op: ToyOperator | None = None, members: int = 1):
        super().__init__()
        if constraint not in TOY_CONSTRAINTS:
            raise ValueError(f"constraint must be one of {', '.join(TOY_CONSTRAINTS)}, got '{constraint}'")
        self.op = op or ToyOperator()
        self.constraint = constraint
        self.f = EnsembleMLP(1, hidden, 2, members)

    @property
    def members(self) -> int:
        return self.f.members

    def forward(self, x: Tensor) -> Tensor:
        f = self.f(x / X_SCALE)
        if self.constraint != "projected":
            return f
        # (I − A⁺A) f + A⁺x written as f + A⁺(x − Af) (one A⁺ instead of two; same map).
        return f + self.op.pinv(x - self.op(f))

    def member(self, index: int) -> "ToyModel":
        """Restart ``index`` of an ensemble as a stand-alone model (same constraint, ``members = 1``)."""
        single = copy.deepcopy(self)
        single.f = self.f.member(index)
        return single


class ToyDiscriminator(nn.Module):
    """y (B, 2) → logit (B,); 2 FC layers × ``hidden`` with LeakyReLU(0.2); ``members`` copies."""

    def __init__(self, hidden: int = 64, members: int = 1):
        super().__init__()
        self.net = EnsembleMLP(2, hidden, 1, members, activation=_leaky)

    def forward(self, y: Tensor) -> Tensor:
        return self.net(y).squeeze(1)


class ToyDenoiser(nn.Module):
    """D(ỹ) = ỹ + r(ỹ), r: 2 FC layers × ``hidden`` (paper: 256); ``members`` copies. Residual form as in
    the image DAE, so the score estimate (D(ỹ) − ỹ)/σ² is the network's own output scaled."""

    def __init__(self, hidden: int = 256, members: int = 1):
        super().__init__()
        self.residual = EnsembleMLP(2, hidden, 2, members, activation=nn.SiLU)

    def forward(self, y: Tensor) -> Tensor:
        return y + self.residual(y)

    def member(self, index: int) -> "ToyDenoiser":
        single = copy.deepcopy(self)
        single.residual = self.residual.member(index)
        return single


class ToyNetworks:
    """The toy's auxiliary networks (:class:`~affsr.methods.base.NetworkFactory`), ``members`` copies each
    (one per restart, matching the model's ensemble)."""

    def __init__(self, hidden: int = 64, dae_hidden: int = 256, members: int = 1):
        self.hidden = hidden
        self.dae_hidden = dae_hidden
        self.members = members

    def discriminator(self) -> nn.Module:
        return ToyDiscriminator(self.hidden, self.members)

    def denoiser(self) -> nn.Module:
        return ToyDenoiser(self.dae_hidden, self.members)

    def density(self) -> nn.Module:
        raise NotImplementedError("the 2-D toy has no density-guided method (no AffLL in the paper's Table 1)")
