"""The toy study: train params.yaml's methods on the 2-D roll through the shared loop, score them.

Restarts as an ensemble: all ``restarts`` of a method train in ONE :func:`affsr.training.loop.fit` run as an
ensemble of independently initialised networks fed independent batch blocks; every loss the
objectives compute is a mean over the batch, so each member gets exactly the gradient it would get
alone, scaled by 1/restarts, which Adam's per-parameter step removes (tested). Restart r is
``ensemble.member(r)``; the discriminator and the denoiser are ensembles of the same size.

What each run trains with comes resolved from params.yaml (:func:`affsr.params.resolve_toy`): the
method's objective, constraint and options with the toy's overrides. Nothing here names a method.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from affsr.config.parse import from_dict
from affsr.config.study import ToyConfig
from affsr.config.training import TrainConfig
from affsr.methods import options_class
from affsr.methods.base import Context, Guide
from affsr.toy.nets import ToyDenoiser, ToyModel, ToyNetworks
from affsr.toy.paper_table import BAYES_ROWS
from affsr.toy.roll import ToyOperator, roll_batch_sampler, sample_roll
from affsr.toy.truth import RollKDE, line_estimates, line_posterior
from affsr.training.accelerate import pick_device
from affsr.training.build import guides_from_snapshots, objective_in


@dataclass(frozen=True)
class ToyRun:
    """One toy run as :func:`affsr.params.resolve_toy` resolves it (``seed_slot``: its seed offset)."""

    objective: str
    constraint: str
    consistency_weight: float
    options: dict
    train: TrainConfig
    guide: str
    seed_slot: int


@dataclass(frozen=True)
class ToySettings:
    """Everything ``affsr toy`` needs: the sizes and ground-truth settings, the seed, the SR runs in
    order and the guide runs they name."""

    seed: int
    toy: ToyConfig
    methods: dict[str, ToyRun]
    guides: dict[str, ToyRun]

    @classmethod
    def parse(cls, data: dict) -> "ToySettings":
        return from_dict(cls, data, "settings")


def _run_seed(seed: int, slot: int) -> int:
    """Seed of one training run (all restarts of one method): distinct per (study seed, run slot)."""
    return seed * 1000 + slot


def train_run(name: str, run: ToyRun, cfg: ToyConfig, seed: int, device: torch.device,
              guides: list[Guide] | None = None):
    """Build run ``name``'s objective on a fresh :class:`ToyModel` ensemble (``cfg.restarts`` members,
    weights from the run's seed) and train it with :func:`affsr.training.loop.fit` on fresh roll batches.
    Returns (objective, the fit state) — the model is ``objective.context.model``."""
    from affsr.training.loop import fit  # imported here: the loop pulls in the image stack

    run_seed = _run_seed(seed, run.seed_slot)
    torch.manual_seed(run_seed)
    context = Context(model=ToyModel(run.constraint, cfg.hidden, members=cfg.restarts),
                      options=from_dict(options_class(run.objective), run.options, f"toy.{name}.options"),
                      consistency_weight=run.consistency_weight,
                      nets=ToyNetworks(cfg.hidden, cfg.dae_hidden, cfg.restarts), guides=list(guides or []))
    objective = objective_in(context, run.objective, f"toy.{name}.objective")
    settings = {"seed": run_seed, "dataset": "toy", "method": f"toy-{name}", "restarts": cfg.restarts}
    sampler = roll_batch_sampler(run.train.batch_size, device, cfg.restarts)
    state = fit(objective, sampler, run.train, f"toy-{name}", settings, device, resume_path=None, progress=False)
    return objective, state


def train_guide(name: str, run: ToyRun, cfg: ToyConfig, seed: int, device: torch.device) -> list[Guide]:
    """An auxiliary run (AffDG's denoiser) for every restart at once; its snapshots as frozen guides in
    curriculum order (each guide holds every restart's network, member r guiding restart r)."""
    objective, state = train_run(name, run, cfg, seed, device)
    (network_name, network), = objective.networks.items()
    if not state.snapshots:
        raise RuntimeError(f"toy: the {name} run kept no snapshots (does objective '{run.objective}' define "
                           "snapshot_points?)")
    return guides_from_snapshots(state.snapshots, network_name, lambda: copy.deepcopy(network), device)


@torch.no_grad()
def _outputs(model: nn.Module, x: Tensor) -> Tensor:
    """ŷ = model(x) in float64 on the CPU (so Aŷ = x of projected models holds to ~1e-16)."""
    model64 = copy.deepcopy(model).to("cpu", torch.float64).eval()
    return model64(x.to(torch.float64).reshape(-1, 1))


@torch.no_grad()
def _score_field(denoiser: nn.Module, sigma: float, lim: float = 9.0, n: int = 25) -> dict[str, np.ndarray]:
    """(D(y) − y)/σ² ≈ ∇ log p_σ(y) on an n × n grid over [−lim, lim]² (Eq. 12)."""
    g = torch.linspace(-lim, lim, n, dtype=torch.float64)
    yy, xx = torch.meshgrid(g, g, indexing="ij")
    points = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    net = copy.deepcopy(denoiser).to("cpu", torch.float64).eval()
    vectors = (net(points) - points) / sigma**2
    return {"points": points.numpy(), "vectors": vectors.numpy(), "sigma": float(sigma)}


def _summary_rows(per_restart: pd.DataFrame, methods: list[str]) -> list[dict]:
    """Mean, std (ddof 1), median and standard error over restarts of each method's scores."""
    out = []
    for method in methods:
        sub = per_restart[per_restart["method"] == method]
        for metric in ("cross_entropy", "lr_mse"):
            values = sub[metric].to_numpy()
            std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            out.append({"dataset": "toy", "method": method, "metric": metric, "value": float(values.mean())})
            out.append({"dataset": "toy", "method": method, "metric": f"{metric}_std", "value": std})
        # the median too: one restart that drifts off the roll dominates a mean of log-densities
        out.append({"dataset": "toy", "method": method, "metric": "cross_entropy_median",
                    "value": float(np.median(sub["cross_entropy"].to_numpy()))})
        # standard error of the mean over restarts: what a difference between two methods must exceed
        sem = float(sub["cross_entropy"].std(ddof=1) / math.sqrt(len(sub))) if len(sub) > 1 else 0.0
        out.append({"dataset": "toy", "method": method, "metric": "cross_entropy_sem", "value": sem})
    return out


def run_toy_study(settings: ToySettings, progress: bool = True) -> tuple[pd.DataFrame, dict]:
    """Train every run of ``settings`` × ``restarts``; score them and the brute-force MAP.

    Returns ``(results, data)``. ``results`` is tidy: columns dataset ("toy"), method, metric, value, with
    metrics ``cross_entropy`` (H[q_θ, p_Y] in nats, mean over restarts), ``cross_entropy_std`` (std over
    restarts, ddof 1; 0 with one restart), ``cross_entropy_sem`` (its standard error, std/√restarts),
    ``cross_entropy_median``, ``lr_mse`` and ``lr_mse_std``; plus one ``cross_entropy`` row each for
    ``map`` (the brute-force MAP outputs), ``posterior_mean`` and ``posterior_median`` (the Bayes
    estimators of MSE and MAE, :data:`~affsr.toy.paper_table.BAYES_ROWS`). Every model and these estimators
    are scored on the same ``eval_samples`` draws x ~ p_X. ``data`` holds what
    :func:`affsr.report.plots.toy_figure` draws and the per-restart scores (``per_restart``), the loss logs of
    restart 0 and timings.
    """
    from tqdm import tqdm

    cfg, seed = settings.toy, settings.seed
    # params order = seed-slot order (the settings may arrive as JSON with sorted keys)
    runs = dict(sorted(settings.methods.items(), key=lambda item: item[1].seed_slot))
    guide_runs = dict(sorted(settings.guides.items(), key=lambda item: item[1].seed_slot))
    methods = list(runs)
    timing: dict[str, float] = {}
    started = time.perf_counter()
    op = ToyOperator()
    kde = RollKDE.fit(cfg.kde_samples, cfg.kde_bandwidth, torch.Generator().manual_seed(seed * 7 + 1),
                      cfg.kde_grid_step)
    eval_y = sample_roll(cfg.eval_samples, torch.Generator().manual_seed(seed * 7 + 2), dtype=torch.float64)
    eval_x = op(eval_y)[:, 0]
    curve_x = torch.linspace(-8.0, 8.0, cfg.curve_points, dtype=torch.float64)
    prior = sample_roll(4000, torch.Generator().manual_seed(seed * 7 + 3)).numpy()

    t0 = time.perf_counter()
    kde.table()
    timing["kde_table"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    estimates = line_estimates(kde, torch.cat([eval_x, curve_x]), cfg.map_step)
    timing["map_search"] = time.perf_counter() - t0
    map_points, map_eval_logp = estimates["map"], estimates["map_log_density"][: len(eval_x)]
    # the Bayes-optimal estimators under squared and absolute error, scored like the models
    bayes = {name: float(-kde.fast_log_density(estimates[name][: len(eval_x)]).mean()) for name in BAYES_ROWS}
    line = line_posterior(kde, 0.5, torch.arange(-12.0, 12.0 + 1e-9, 0.01, dtype=torch.float64))

    bar = tqdm(total=len(methods) + len(guide_runs), disable=not progress, desc="toy study", unit="run")
    rows: list[dict] = []
    curves: dict[str, np.ndarray] = {}
    logs: dict[str, pd.DataFrame] = {}
    score_field = None
    guides: dict[str, list[Guide]] = {}
    t_train = time.perf_counter()
    for name, run in guide_runs.items():
        bar.set_postfix_str(name)
        t0 = time.perf_counter()
        guides[name] = train_guide(name, run, cfg, seed, pick_device(run.train.device))
        timing[f"train_{name}"] = time.perf_counter() - t0
        last = guides[name][-1]
        if score_field is None and isinstance(last.network, ToyDenoiser):  # the figure's score arrows
            score_field = _score_field(last.network.member(0), last.label)
        bar.update(1)
    for method, run in runs.items():
        bar.set_postfix_str(method)
        t0 = time.perf_counter()
        objective, state = train_run(method, run, cfg, seed, pick_device(run.train.device),
                                     guides.get(run.guide))
        ensemble, logs[method] = objective.context.model.eval(), pd.DataFrame(state.rows)
        timing[f"train_{method}"] = time.perf_counter() - t0
        for restart in range(cfg.restarts):
            model = ensemble.member(restart)
            sr = _outputs(model, eval_x)
            rows.append({"method": method, "restart": restart,
                         "cross_entropy": float(-kde.fast_log_density(sr).mean()),
                         "lr_mse": float((op(sr)[:, 0] - eval_x).square().mean())})
            if restart == 0:
                curves[method] = _outputs(model, curve_x).numpy()
        bar.update(1)
    bar.close()
    timing["training_and_scoring"] = time.perf_counter() - t_train

    per_restart = pd.DataFrame(rows, columns=["method", "restart", "cross_entropy", "lr_mse"])
    out = _summary_rows(per_restart, methods)
    out.append({"dataset": "toy", "method": "map", "metric": "cross_entropy", "value": float(-map_eval_logp.mean())})
    out.extend({"dataset": "toy", "method": name, "metric": "cross_entropy", "value": value}
               for name, value in bayes.items())
    results = pd.DataFrame(out, columns=["dataset", "method", "metric", "value"])
    timing["total"] = time.perf_counter() - started

    data = {
        "prior": prior,
        "kde_samples": kde.samples[:: max(1, len(kde.samples) // 5000)].numpy(),
        "line": {"x": 0.5, **line},
        "map_curve": {"x": curve_x.numpy(), "y": map_points[len(eval_x):].numpy()},
        "outputs": {m: {"x": curve_x.numpy(), "y": curves[m]} for m in methods},
        "score_field": score_field,
        "x_typical": tuple(float(q) for q in torch.quantile(eval_x, eval_x.new_tensor([0.005, 0.995]))),
        "cross_entropy": {m: float(per_restart.loc[per_restart["method"] == m, "cross_entropy"].mean())
                          for m in methods} | {"map": float(-map_eval_logp.mean())} | bayes,
        "per_restart": per_restart,
        "logs": logs,
        "timing": timing,
        "config": {"toy": asdict(cfg), "methods": {m: asdict(r) for m, r in runs.items()}},
        "seed": seed,
    }
    return results, data
