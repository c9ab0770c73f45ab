"""How the training loop runs its networks on a device: precision, memory format, compilation, and where
the training data live — the device, and the ``train:`` options ``precision``, ``channels_last``, ``compile`` and
``data_on_device`` (:class:`affsr.config.TrainConfig`), resolved here into a :class:`Plan`.

``auto`` is the fastest *safe* choice per device. On the CPU everything is off — fp32, contiguous
tensors, eager, data where they are — so the CPU study runs exactly the code (and gives bitwise the
same weights) it ran before these options existed. On CUDA everything is on: bf16 autocast where the
GPU supports it, channels_last, ``torch.compile`` and the split kept on the GPU when it fits.

What bf16 covers, and what it must not: the *networks' forward passes* run under autocast, and their
outputs are returned as fp32, so losses and the optimiser see fp32 (a phase's loss itself is never
autocast). Two modules are kept in fp32 inside an autocast network (autocast off, inputs cast up):
the affine projection A⁺x + (I − A⁺A)f, whose FFTs and strided blur must keep |Aŷ − x| at fp32
round-off (bf16's 8-bit mantissa would leave errors of ~4e-3, 300 times the 8-bit quantisation noise
the method is designed to respect), and the density model, whose log-likelihood is a sum over every
pixel of log-densities (bits/dim resolved to 1e-3 of ≈ 4 needs more than bf16's 3 digits).

Wrappers are installed for one :func:`affsr.training.loop.fit` (instance ``forward`` attributes) and removed
after it, so networks, their ``state_dict`` keys and checkpoints are the same as without them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn

from affsr.config.training import TrainConfig
from affsr.errors import ConfigError, note
from affsr.nets.density import DensityModel
from affsr.operators.projection import AffineProjection

#: Modules that always run in fp32, even inside a bf16 network (see the module docstring).
FP32_MODULES: tuple[type, ...] = (AffineProjection, DensityModel)
#: ``data_on_device: auto`` keeps the split on a GPU when it takes at most this share of its free memory.
DATA_SHARE = 0.5


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: the GPU when there is one, else the CPU (``train.device``; evaluation and ``upscale`` too)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(name)


@dataclass(frozen=True)
class Plan:
    """The resolved options of one run on ``device``: ``dtype`` is the autocast dtype (None = fp32)."""

    device: torch.device
    dtype: torch.dtype | None = None
    channels_last: bool = False
    compile: bool = False
    data_on_device: bool = True

    @property
    def memory_format(self) -> torch.memory_format | None:
        """The batches' memory format, or None to leave them as they are."""
        return torch.channels_last if self.channels_last else None


def _bf16_ok(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def plan(cfg: TrainConfig, device: torch.device, data_bytes: int = 0) -> Plan:
    """Resolve ``cfg``'s ``auto`` options for ``device``; ``data_bytes``: size of the training split."""
    cuda = device.type == "cuda"

    def choose(value, auto: bool) -> bool:
        return auto if value == "auto" else bool(value)

    if cfg.precision == "auto":
        dtype = torch.bfloat16 if _bf16_ok(device) else None
    else:
        dtype = torch.bfloat16 if cfg.precision == "bf16" else None
    fits = True
    if cuda and data_bytes:
        free, _ = torch.cuda.mem_get_info(device)
        fits = data_bytes <= DATA_SHARE * free
    return Plan(device=device, dtype=dtype, channels_last=choose(cfg.channels_last, cuda),
                compile=choose(cfg.compile, cuda), data_on_device=choose(cfg.data_on_device, fits))


def _map_tensors(value, fn: Callable[[torch.Tensor], torch.Tensor]):
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_map_tensors(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _map_tensors(v, fn) for k, v in value.items()}
    return value


def _to_fp32(value):
    """Reduced-precision floating tensors (bf16, fp16) in ``value`` cast to fp32; others as they are."""
    return _map_tensors(value, lambda t: t.float() if t.dtype in (torch.bfloat16, torch.float16) else t)


def _autocast_forward(forward: Callable, device_type: str, dtype: torch.dtype) -> Callable:
    def run(*args, **kwargs):
        with torch.autocast(device_type, dtype=dtype):
            return _to_fp32(forward(*args, **kwargs))
    return run


def _fp32_forward(forward: Callable, device_type: str) -> Callable:
    def run(*args, **kwargs):
        with torch.autocast(device_type, enabled=False):
            return forward(*_to_fp32(args), **_to_fp32(kwargs))
    return run


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0][:200]}" if text else type(err).__name__


def _compiled_forward(forward: Callable, name: str) -> Callable:
    """``torch.compile(forward)``, falling back to ``forward`` for good (with one note) if compiling
    fails, when it is set up or on a call (no C compiler, an op the compiler does not support). A
    genuine error of the network reappears in the eager call. (A failure first met compiling the
    backward pass, which torch compiles on first use, is not caught: set ``compile: false``.)"""
    try:
        compiled = torch.compile(forward)
    except Exception as err:  # noqa: BLE001 — any failure of an optional speed-up: run eagerly
        note(f"torch.compile of {name} failed ({_first_line(err)}); training it eagerly")
        return forward
    current = [compiled]

    def run(*args, **kwargs):
        if current[0] is not forward:
            try:
                return current[0](*args, **kwargs)
            except Exception as err:  # noqa: BLE001
                note(f"torch.compile of {name} failed ({_first_line(err)}); training it eagerly")
                current[0] = forward
        return forward(*args, **kwargs)
    return run


def _install(module: nn.Module, wrap: Callable[[Callable], Callable], installed: list[nn.Module]) -> None:
    module.forward = wrap(module.forward)  # wraps what is there: the class's forward or an inner wrapper
    if module not in installed:
        installed.append(module)


@contextlib.contextmanager
def accelerated(networks: dict[str, nn.Module], guides: list[nn.Module], p: Plan) -> Iterator[None]:
    """Within the block, ``networks`` (trained) and ``guides`` (frozen) run as ``p`` says. On exit the
    forward wrappers are removed; the memory format (channels_last) stays, which changes no value."""
    installed: list[nn.Module] = []
    named = list(networks.items()) + [(f"guide {i}", g) for i, g in enumerate(guides)]
    if p.channels_last:
        for _, net in named:
            net.to(memory_format=torch.channels_last)
    try:
        if p.dtype is not None:
            for _, net in named:
                for module in net.modules():
                    if isinstance(module, FP32_MODULES):
                        _install(module, lambda f: _fp32_forward(f, p.device.type), installed)
                if not isinstance(net, FP32_MODULES):
                    _install(net, lambda f: _autocast_forward(f, p.device.type, p.dtype), installed)
        if p.compile:
            for name, net in named:
                _install(net, lambda f, name=name: _compiled_forward(f, name), installed)
        yield
    finally:
        for module in installed:
            module.__dict__.pop("forward", None)
