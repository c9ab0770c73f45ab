"""The resume state of a training run: everything the loop needs to continue bitwise where it stopped.

Networks, optimisers, both random generators (the global one and the batch sampler), the loss sums since
the last log row, the snapshots taken and the moving average, with the run's settings: a state made
with other settings is refused, so a resume never mixes two runs' training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from affsr.training import checkpoint


@dataclass
class State:
    """Where a run stands: the step reached, its log rows and snapshots so far."""

    step: int
    rows: list[dict]
    snapshots: list[dict]
    totals: dict | None = None  # loss sums since the last log row (so a resumed log is the same)
    counts: dict | None = None
    ema: torch.nn.Module | None = None  # the generator's moving average (train.ema > 0), after fit


def save_resume(path: Path, objective, optimisers, sampler, state: State, settings: dict,
                 ema: torch.nn.Module | None = None) -> None:
    rng = {"torch": torch.get_rng_state(), "sampler": sampler.get_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    checkpoint.save(
        path,
        {
            "networks": {k: v.state_dict() for k, v in objective.networks.items()},
            "optimisers": {k: v.state_dict() for k, v in optimisers.items()},
            "rng": rng,
            "step": state.step,
            "rows": state.rows,
            "snapshots": state.snapshots,
            "totals": {k: torch.as_tensor(v).detach().cpu() for k, v in (state.totals or {}).items()},
            "counts": dict(state.counts or {}),
            "ema": ema.state_dict() if ema is not None else None,
        },
        settings,
    )


def load_resume(path: Path, objective, optimisers, sampler, settings: dict, device,
                 ema: torch.nn.Module | None = None) -> State:
    try:
        stored, stored_settings = checkpoint.load(path, map_location="cpu")
    except checkpoint.CheckpointError as err:  # cut short or damaged: say what to do, as for the cases below
        raise checkpoint.CheckpointError(f"{err}; it is this run's resume state: delete it to start the run "
                                         "over") from None
    if stored_settings != settings:
        changed = sorted(k for k in settings if settings.get(k) != stored_settings.get(k))
        raise checkpoint.CheckpointError(
            f"{path}: resume state was made with other settings (differs in: {', '.join(changed)}); "
            "delete it to start this run over"
        )
    for name, net in objective.networks.items():
        net.load_state_dict(stored["networks"][name])
    if ema is not None:
        ema.load_state_dict(stored["ema"])
    for name, opt in optimisers.items():
        try:
            opt.load_state_dict(stored["optimisers"][name])
        except ValueError as err:  # e.g. a state saved by torch.optim.Adam before affsr.training.adam
            raise checkpoint.CheckpointError(f"{path}: optimiser '{name}': {err}; delete it to start over") from None
    torch.set_rng_state(stored["rng"]["torch"])
    sampler.set_state(stored["rng"]["sampler"])
    if "cuda" in stored["rng"] and device.type == "cuda":
        torch.cuda.set_rng_state_all(stored["rng"]["cuda"])
    return State(step=int(stored["step"]), rows=list(stored["rows"]),
                  snapshots=list(stored.get("snapshots", [])),
                  totals={k: v.to(device) for k, v in stored.get("totals", {}).items()},
                  counts=dict(stored.get("counts", {})))
