"""The degradation A and everything that inverts it: pure tensor maths, no files.

* :mod:`~affsr.operators.downsampling` — :class:`Downsampling`: A, Aᵀ and the exact A⁺ (closed form by FFT
  for the circular boundary);
* :mod:`~affsr.operators.kernels` — the blur kernels; :mod:`~affsr.operators.kinds` — the kinds of A, one
  row each, :func:`build_operator` (from the ``operator:`` settings) and :func:`operator_from_description`;
* :mod:`~affsr.operators.reflect` — the reflect boundary (A Aᵀ not circulant: A⁺ by conjugate gradients);
* :mod:`~affsr.operators.linear_solvers` — Ĝ⁺, conjugate gradients and CGLS: the one copy of each;
* :mod:`~affsr.operators.projection` — :class:`AffineProjection`, the paper's layer (Eq. 7);
* :mod:`~affsr.operators.box_projection`, :mod:`~affsr.operators.box_interior_point`,
  :mod:`~affsr.operators.box_layer` — the projection onto {y : A y = x, 0 ≤ y ≤ 1} and its layer;
* :mod:`~affsr.operators.interpolation` — cubic upsampling on A's sampling grid.
"""

from affsr.lazy_exports import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "Downsampling": "downsampling",
    "AffineProjection": "projection",
    "OperatorKind": "kinds",
    "KINDS": "kinds",
    "check_operator": "kinds",
    "build_operator": "kinds",
    "operator_from_description": "kinds",
    "grid_offset": "interpolation",
    "cubic_upsample": "interpolation",
    "BoxProjection": "box_projection",
    "project_to_box": "box_projection",
    "project_box": "box_layer",
})
