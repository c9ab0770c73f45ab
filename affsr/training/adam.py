"""Adam, written out: the same arithmetic as ``torch.optim.Adam`` without its import cost.

Why not ``torch.optim.Adam``: constructing one imports ``torch._dynamo`` (its methods are wrapped in
``torch._disable_dynamo``), 1.4 s on the 2-core development machine. The study starts one process per
training and per evaluation (the classifier two-sample test trains a small CNN) — ≈ 80 processes, so
≈ 110 core-seconds of a 10-minute study went into importing a compiler nothing here uses. This class is
the CPU single-tensor update of ``torch.optim.Adam`` (no weight decay, no AMSGrad), operation for
operation, so its updates are bitwise the same (``tests/test_optim.py`` checks it against torch's).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class Adam:
    """Adam (Kingma & Ba, 2015) over ``params`` with learning rate ``lr``, ``betas`` (β₁, β₂) and ``eps``.

    Per parameter: m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², θ ← θ − lr/(1 − β₁ᵗ) · m / (√v/√(1 − β₂ᵗ) + eps),
    with t that parameter's own step count. A parameter whose ``.grad`` is None in a step is left alone
    and its count does not advance (as in torch). ``state_dict``/``load_state_dict`` carry the moments and
    counts, for resumable training.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params = list(params)
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)
        self.steps = [0] * len(self.params)
        self.exp_avg: list[torch.Tensor | None] = [None] * len(self.params)
        self.exp_avg_sq: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        for i, param in enumerate(self.params):
            grad = param.grad
            if grad is None:
                continue
            if self.exp_avg[i] is None:
                self.exp_avg[i] = torch.zeros_like(param, memory_format=torch.preserve_format)
                self.exp_avg_sq[i] = torch.zeros_like(param, memory_format=torch.preserve_format)
            exp_avg, exp_avg_sq = self.exp_avg[i], self.exp_avg_sq[i]
            self.steps[i] += 1
            step = float(self.steps[i])
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            step_size = self.lr / bias_correction1
            denom = (exp_avg_sq.sqrt() / bias_correction2**0.5).add_(self.eps)
            param.addcdiv_(exp_avg, denom, value=-step_size)

    def state_dict(self) -> dict:
        """Moments and step counts per parameter (in ``params`` order) and the hyperparameters."""
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps, "steps": list(self.steps),
                "exp_avg": list(self.exp_avg), "exp_avg_sq": list(self.exp_avg_sq)}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s output (moments moved to each parameter's device). A state of
        another optimiser or of other parameters raises ValueError."""
        try:
            steps, avg, avg_sq = list(state["steps"]), list(state["exp_avg"]), list(state["exp_avg_sq"])
        except (KeyError, TypeError):
            raise ValueError("not an affsr.training.adam.Adam state (made by another optimiser?)") from None
        if not len(steps) == len(avg) == len(avg_sq) == len(self.params):
            raise ValueError(f"optimiser state for {len(steps)} parameters, this optimiser has {len(self.params)}")
        for i, p in enumerate(self.params):
            for moment in (avg[i], avg_sq[i]):
                if moment is not None and moment.shape != p.shape:
                    raise ValueError(f"optimiser state of shape {tuple(moment.shape)} for a parameter of shape "
                                     f"{tuple(p.shape)}")
        self.steps = [int(s) for s in steps]
        self.exp_avg = [None if m is None else m.to(p.device, p.dtype) for m, p in zip(avg, self.params)]
        self.exp_avg_sq = [None if m is None else m.to(p.device, p.dtype) for m, p in zip(avg_sq, self.params)]
        self.lr, self.betas, self.eps = float(state["lr"]), tuple(state["betas"]), float(state["eps"])
