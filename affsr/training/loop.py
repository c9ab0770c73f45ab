"""The one training loop, shared by every method and auxiliary network, on images and on the 2-D toy.

It knows phases, never method names: an objective (``affsr/methods/<name>.py``) supplies the networks it
trains and the ordered phases of one step (network + loss); the loop owns batches, optimisers, the
device, progress, loss logging, NaN checks, the generator's moving average, periodic resume states
and the finished one (:mod:`affsr.training.resume`), and stopping cleanly on a scheduler's signal.
"""

from __future__ import annotations

import copy
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from affsr.config.training import TrainConfig
from affsr.errors import CheckpointError, ConfigError, Interrupted, TrainingError
from affsr.methods.base import Batch
from affsr.training.accelerate import Plan, accelerated, plan
from affsr.training.adam import Adam
from affsr.training.resume import State, load_resume, save_resume

#: What schedulers send before they kill a job: SLURM sends SIGTERM on preemption / scancel / time limit
#: (then SIGKILL after its grace time), and `sbatch --signal=USR1@<s>` asks for SIGUSR1 earlier.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)  # SIGINT: Ctrl-C saves the state too


class _StopRequest:
    """Turns STOP_SIGNALS into a flag the loop checks after each step (a handler must not save files
    itself: it could run in the middle of an optimiser step). Restores the old handlers on exit. A second
    Ctrl-C while the first is being handled stops at once (KeyboardInterrupt), for a user who will not wait."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "_StopRequest":
        if threading.current_thread() is threading.main_thread():  # handlers only work there
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame) -> None:
        if signum == signal.SIGINT and self.signal == signal.SIGINT:  # Ctrl-C twice: stop now, save nothing
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


EMA_NETWORK = "generator"  # the network whose weights train.ema averages: the SR network


def _ema_copy(objective, decay: float) -> torch.nn.Module | None:
    """A frozen copy of the objective's generator to average into, or None (no ``ema`` or no generator)."""
    if decay <= 0 or EMA_NETWORK not in objective.networks:
        return None
    return copy.deepcopy(objective.networks[EMA_NETWORK]).requires_grad_(False)


@torch.no_grad()
def _ema_update(ema: torch.nn.Module, net: torch.nn.Module, decay: float) -> None:
    """θ_ema ← decay·θ_ema + (1 − decay)·θ after each step; buffers (batch-norm statistics) are copied."""
    for averaged, current in zip(ema.parameters(), net.parameters()):
        averaged.lerp_(current, 1 - decay)
    for averaged, current in zip(ema.buffers(), net.buffers()):
        averaged.copy_(current)


def _finite(objective) -> bool:
    """Every weight finite? Checked before a state is saved, so a saved state is always a good one."""
    return all(bool(torch.isfinite(p).all()) for net in objective.networks.values() for p in net.parameters())


def _snapshot(objective, progress: float) -> dict:
    """A copy (on the CPU) of the objective's networks, labelled by the objective (e.g. its σ)."""
    networks = {k: {n: t.detach().cpu().clone() for n, t in v.state_dict().items()}
                for k, v in objective.networks.items()}
    return {"label": float(objective.snapshot_label(progress)), "networks": networks}


def fit(
    objective,
    sample_batch: Callable[[torch.Generator], Batch],
    cfg: TrainConfig,
    name: str,
    settings_dict: dict,
    device: torch.device,
    resume_path: Path | None = None,
    progress: bool = True,
    discard_stale: bool = False,
    run_plan: Plan | None = None,
) -> State:
    """The loop: every step runs the objective's phases in order, each one optimiser step.

    ``sample_batch(sampler)`` draws a batch on ``device`` using the seeded CPU generator ``sampler``
    (whose state is part of the resume state, so a resumed run draws the same batches). If the
    objective defines ``snapshot_points`` (progress fractions) and ``snapshot_label(progress)``, copies
    of its networks are kept at those points (AffDG's denoiser at decreasing σ, App. D).
    How the networks (and the frozen guides of ``objective.context``) run on ``device`` — bf16,
    channels_last, torch.compile — follows ``run_plan`` (:func:`affsr.training.accelerate.plan` of ``cfg``
    when not given; all off on the CPU).
    Resume state made with other settings is an error, or with ``discard_stale`` is deleted and the
    run starts over (the workflow's choice: it reruns a training only when its settings changed).
    """
    for net in objective.networks.values():
        net.to(device).train()
    unknown = sorted(set(cfg.lr_scale) - set(objective.networks))
    if unknown:
        raise ConfigError(f"train.lr_scale: '{unknown[0]}' is not a network of this method; its networks: "
                          f"{', '.join(objective.networks)}")
    optimisers = {
        key: Adam(net.parameters(), lr=cfg.lr * cfg.lr_scale.get(key, 1.0), betas=(cfg.beta1, cfg.beta2))
        for key, net in objective.networks.items()
    }
    ema = _ema_copy(objective, cfg.ema)
    run_plan = run_plan or plan(cfg, device)  # precision, memory format, compile
    guides = [g.network for g in getattr(getattr(objective, "context", None), "guides", None) or []]
    sampler = torch.Generator().manual_seed(int(settings_dict.get("seed", 0)))
    state = State(step=0, rows=[], snapshots=[])
    if resume_path and resume_path.exists():
        try:
            state = load_resume(resume_path, objective, optimisers, sampler, settings_dict, device, ema)
        except CheckpointError as err:
            if not discard_stale:
                raise
            print(f"{name}: starting over, ignoring {err}", file=sys.stderr)
            resume_path.unlink()
    snapshot_steps = sorted({max(1, round(p * cfg.steps)) for p in getattr(objective, "snapshot_points", [])})

    totals: dict[str, torch.Tensor] = dict(state.totals or {})
    counts: dict[str, int] = dict(state.counts or {})
    started = time.perf_counter()
    bar = tqdm(total=cfg.steps, initial=state.step, disable=not progress, mininterval=2.0, desc=name,
               unit="step")

    saved_step = state.step if resume_path and resume_path.exists() else None

    def last_good() -> str:
        if saved_step is None:
            return "no state was saved yet (lower train.lr, or check the data)"
        return f"the last good state (step {saved_step}) is kept in {resume_path}; a rerun resumes from it"

    def save_state() -> None:
        """Write the resume state, but only a good one: a non-finite weight or loss stops the run and
        leaves the previous (good) state in place."""
        nonlocal saved_step
        if not _finite(objective) or not all(bool(torch.isfinite(v)) for v in totals.values()):
            raise TrainingError(f"{name}: non-finite weights or loss by step {state.step}; {last_good()}")
        state.totals, state.counts = totals, counts
        save_resume(resume_path, objective, optimisers, sampler, state, settings_dict, ema)
        saved_step = state.step

    # No host-device synchronisation per step: losses are summed as tensors on the device and read
    # (`float`, the NaN check) only every log_every steps; weights are checked only when saved.
    with _StopRequest() as stop, accelerated(objective.networks, guides, run_plan):
        while state.step < cfg.steps:
            if stop.signal is not None:  # preempted: save where we are, then leave non-zero
                where = "nothing saved (no resume path)"
                if resume_path:
                    save_state()
                    where = f"state saved to {resume_path}"
                raise Interrupted(f"{name}: stopped by {signal.Signals(stop.signal).name} at step "
                                  f"{state.step} of {cfg.steps}; {where}; rerun to resume", stop.signal)
            batch = sample_batch(sampler)
            fraction = state.step / cfg.steps
            for phase in objective.phases:
                optimiser = optimisers[phase.network]
                optimiser.zero_grad(set_to_none=True)
                loss = phase.loss(batch, fraction)
                loss.backward()
                optimiser.step()
                key = f"loss_{phase.name}"
                totals[key] = totals.get(key, 0.0) + loss.detach()
                counts[key] = counts.get(key, 0) + 1
            if ema is not None:
                _ema_update(ema, objective.networks[EMA_NETWORK], cfg.ema)
            state.step += 1
            bar.update(1)

            if state.step % cfg.log_every == 0 or state.step == cfg.steps:
                row = {"step": state.step, **{k: float(v) / counts[k] for k, v in totals.items()}}
                for extra in ("noise_std", "snapshot_label"):
                    if hasattr(objective, extra):
                        row[{"noise_std": "instance_noise"}.get(extra, extra)] = getattr(objective, extra)(fraction)
                bad = [k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]
                if bad:
                    raise TrainingError(f"{name}: {bad[0]} became {row[bad[0]]} by step {state.step}; "
                                        f"{last_good()}")
                row["seconds"] = time.perf_counter() - started
                state.rows.append(row)
                bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k.startswith("loss_")})
                totals, counts = {}, {}
            if state.step in snapshot_steps:
                state.snapshots.append(_snapshot(objective, fraction))
            if resume_path and (state.step % cfg.checkpoint_every == 0) and state.step < cfg.steps:
                save_state()
        if resume_path and saved_step != state.step:
            # The finished state too: if writing the outputs then fails (a full disk, a place turned
            # read-only), the training is not lost: a rerun loads this state and only writes them.
            save_state()
    bar.close()
    state.ema = ema
    return state
