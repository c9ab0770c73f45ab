"""Evaluation: every metric as one record (:mod:`~affsr.evaluation.metrics`), the reference
upsamplers, and ``affsr evaluate``.

PSNR and SSIM compare each output with its own ground truth and so reward the blurry mean answer; the
paper's point (§1, Fig. 1) is that a MAP estimate should instead look like a sample of the image
distribution. So beside consistency and distortion, three *realism* metrics compare the set of outputs
with the set of real images — swd, the power spectrum, c2st — none of which needs downloaded weights.

* :mod:`~affsr.evaluation.metrics` — :data:`METRICS`: each metric's function, direction, format and label;
* :mod:`~affsr.evaluation.consistency` — ℓ_MSE(x, Aŷ) and its scale-free forms;
* :mod:`~affsr.evaluation.distortion` — PSNR and SSIM against the HR image;
* :mod:`~affsr.evaluation.swd`, :mod:`~affsr.evaluation.spectrum`, :mod:`~affsr.evaluation.c2st` — realism
  of an output set against the real images (no downloaded weights);
* :mod:`~affsr.evaluation.likelihood` — held-out cross-entropy under a density model;
* :mod:`~affsr.evaluation.references` — bicubic and A⁺x; :mod:`~affsr.evaluation.evaluate` — one method
  on a test split.
"""

from affsr.lazy_exports import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "Scored": "metrics",
    "Metric": "metrics",
    "METRICS": "metrics",
    "compute_metrics": "metrics",
    "lr_mse": "consistency",
    "lr_rel": "consistency",
    "lr_psnr": "consistency",
    "psnr": "distortion",
    "ssim": "distortion",
    "radial_power_spectrum": "spectrum",
    "spectrum_distance": "spectrum",
    "hf_ratio": "spectrum",
    "cross_entropy": "likelihood",
    "bicubic": "references",
    "reference_outputs": "references",
})
