"""The super-resolver ŷ = g(x): the generator followed by the run's consistency constraint (paper Eq. 7)."""

from __future__ import annotations

from torch import Tensor, nn

from affsr.config.training import CONSTRAINTS
from affsr.nets.generator import Generator
from affsr.operators.box_layer import project_box
from affsr.operators.downsampling import Downsampling
from affsr.operators.projection import AffineProjection


class SRModel(nn.Module):
    """The super-resolver ŷ = g(x): the generator with the chosen consistency constraint.

    ``projected``: ŷ = A⁺x + (I − A⁺A) f(x) — consistent (Aŷ = x) for any weights (paper Eq. 7).
    ``projected_box``: the nearest point to that with 0 ≤ ŷ ≤ 1 and still Aŷ = x (to 1e-6; beyond the
    paper: an image a file can hold; :mod:`affsr.operators.box_layer`, exact gradient).
    ``soft`` and ``none``: ŷ = f(x); ``soft`` only differs in the loss (see methods.base).
    """

    def __init__(self, generator: Generator, op: Downsampling, constraint: str):
        super().__init__()
        if constraint not in CONSTRAINTS:
            raise ValueError(f"constraint must be one of {', '.join(CONSTRAINTS)}, got '{constraint}'")
        self.generator = generator
        self.op = op
        self.constraint = constraint
        self.projection = AffineProjection(op)

    def forward(self, x: Tensor) -> Tensor:
        f = self.generator(x)
        if self.constraint == "projected":
            return self.projection(f, x)
        if self.constraint == "projected_box":  # P_C(f) = P_C(P_aff(f)): C lies in the affine set
            return project_box(self.projection(f, x), x, self.op)
        return f
