"""affsr.training.adam.Adam against torch.optim.Adam: the same updates bit for bit, a resumable state, and no
torch._dynamo import (the reason it exists)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from affsr.training.adam import Adam


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 1, 1),
                               torch.nn.Flatten(), torch.nn.Linear(36, 3))


def _train(net: torch.nn.Module, opt, steps: range, skip_last_layer_every: int = 3) -> None:
    gen = torch.Generator().manual_seed(1)
    for step in steps:
        x = torch.randn(5, 2, 6, 6, generator=torch.Generator().manual_seed(step))
        opt.zero_grad(set_to_none=True)
        out = net[:4](x) if step % skip_last_layer_every == 0 else net(x)  # last layer: no grad this step
        (out.square().mean() + torch.rand((), generator=gen)).backward()
        opt.step()


@pytest.mark.parametrize("lr, betas", [(1e-3, (0.9, 0.999)), (2e-4, (0.5, 0.999)), (3e-2, (0.9, 0.99))])
def test_updates_are_bitwise_those_of_torch_adam(lr, betas):
    ours, theirs = _net(), _net()
    _train(ours, Adam(ours.parameters(), lr=lr, betas=betas), range(25))
    _train(theirs, torch.optim.Adam(theirs.parameters(), lr=lr, betas=betas), range(25))
    moved = [not torch.equal(p, q) for p, q in zip(ours.parameters(), _net().parameters())]
    assert all(moved)
    for p, q in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(p, q)


def test_a_parameter_without_gradient_keeps_its_own_step_count():
    net = _net()
    opt = Adam(net.parameters(), lr=1e-3)
    _train(net, opt, range(9))  # steps 0, 3, 6 skip the last layer
    assert opt.state_dict()["steps"] == [9, 9, 9, 9, 6, 6]


def test_state_dict_resumes_to_the_same_weights():
    straight = _net()
    _train(straight, Adam(straight.parameters(), lr=1e-2), range(20))

    first = _net()
    opt = Adam(first.parameters(), lr=1e-2)
    _train(first, opt, range(10))
    state = {k: v for k, v in opt.state_dict().items()}
    resumed = _net()
    resumed.load_state_dict(first.state_dict())
    opt2 = Adam(resumed.parameters(), lr=1e-2)
    opt2.load_state_dict(state)
    _train(resumed, opt2, range(10, 20))
    for p, q in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(p, q)


def test_a_foreign_or_mismatched_state_is_refused():
    net = _net()
    torch_state = torch.optim.Adam(net.parameters(), lr=1e-3).state_dict()
    with pytest.raises(ValueError, match="not an affsr.training.adam.Adam state"):
        Adam(net.parameters(), lr=1e-3).load_state_dict(torch_state)
    small = Adam(torch.nn.Linear(2, 2).parameters(), lr=1e-3)
    with pytest.raises(ValueError, match="for 2 parameters, this optimiser has 6"):
        Adam(net.parameters(), lr=1e-3).load_state_dict(small.state_dict())


def test_training_and_evaluation_never_import_torch_dynamo():
    """The import this class avoids (1.4 s per process): a training step and a c2st leave it out."""
    code = (
        "import sys, torch\n"
        "from affsr.training.adam import Adam\n"
        "from affsr.evaluation.c2st import c2st\n"
        "net = torch.nn.Linear(3, 1); opt = Adam(net.parameters(), lr=1e-2)\n"
        "net(torch.ones(2, 3)).sum().backward(); opt.step()\n"
        "c2st(torch.rand(8, 1, 8, 8), torch.rand(8, 1, 8, 8), steps=2)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
