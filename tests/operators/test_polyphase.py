"""The polyphase A and Aᵀ are Downsampling's circular A and Aᵀ, for any kernel, origin and scale, and in
the bands a large image goes through."""

from __future__ import annotations

import pytest
import torch

from affsr.operators import polyphase
from affsr.operators.downsampling import Downsampling
from affsr.operators.polyphase import Polyphase

_G = torch.Generator().manual_seed(0)
OPERATORS = {
    "paper gaussian x4": Downsampling.gaussian(),
    "gaussian 13x13 x3": Downsampling.gaussian(1.5, 13, 3),
    "5x7 origin at a corner x2": Downsampling(torch.rand(5, 7, generator=_G), 2, (0, 6)),
    "8x8 origin (7, 0) x4": Downsampling(torch.rand(8, 8, generator=_G), 4, (7, 0)),
    "1x1 x2": Downsampling(torch.ones(1, 1), 2),
    "kernel smaller than the scale": Downsampling(torch.rand(2, 3, generator=_G), 4, (1, 0)),
}


@pytest.mark.parametrize("name", OPERATORS)
def test_equals_the_downsampling_operator(name):
    op = OPERATORS[name]
    fast = Polyphase(op)
    x = torch.rand(2, 3, 10, 12, dtype=torch.float64, generator=_G)
    y = torch.rand(2, 3, 10 * op.scale, 12 * op.scale, dtype=torch.float64, generator=_G)
    assert torch.allclose(fast.adjoint(x), op.adjoint(x), atol=1e-13, rtol=0)
    assert torch.allclose(fast(y), op(y), atol=1e-13, rtol=0)
    squares = Downsampling(op.kernel.square(), op.scale, op.origin)
    assert torch.allclose(fast.squares()(y), squares(y), atol=1e-13, rtol=0)


def test_bands_give_the_same_image(monkeypatch):
    op = Downsampling.gaussian()
    y = torch.rand(1, 2, 4 * 37, 4 * 23, dtype=torch.float64, generator=_G)
    whole = Polyphase(op)(y)
    monkeypatch.setattr(polyphase, "BAND_VALUES", 1000)  # bands of a row or two
    assert torch.allclose(Polyphase(op)(y), whole, atol=1e-14, rtol=0)  # equal up to the order of the sums
    assert torch.allclose(whole, op(y), atol=1e-13, rtol=0)


def test_refuses_the_reflect_boundary():
    op = Downsampling(Downsampling.gaussian().kernel, 4, boundary="reflect")
    with pytest.raises(ValueError, match="circular"):
        Polyphase(op)
