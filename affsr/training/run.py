"""Train one run on images — the ``affsr train`` step: its data, its guides and its objective are set up
here, once, and :func:`affsr.training.loop.fit` trains it.

Resumable state lives in ``resume_dir`` (not a declared Snakemake output, which Snakemake would delete
before a rerun); only the final checkpoint and the loss log are outputs, written together at the end: both
or neither (:class:`affsr.atomic_files.FileSet`). Before any work their folders are checked writable, and
the run is locked (:mod:`affsr.training.lock`) so that a second job on it stops at once.
"""

from __future__ import annotations

import hashlib
from contextlib import nullcontext
from pathlib import Path

import pandas as pd

from affsr.atomic_files import FileSet, before_writing, write_csv
from affsr.config.study import RunSettings
from affsr.data.load import load_manifest, load_split
from affsr.errors import ConfigError
from affsr.operators.kinds import build_operator
from affsr.training import checkpoint
from affsr.training.accelerate import pick_device, plan
from affsr.training.batches import image_batch_sampler
from affsr.training.build import build_objective
from affsr.training.lock import run_lock
from affsr.training.loop import EMA_NETWORK, fit


def _sha256(path: Path) -> str:
    """Digest of a (small) file: a data manifest or a guide checkpoint."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def train(
    settings: RunSettings,
    data_dir: Path,
    checkpoint_path: Path,
    log_path: Path,
    resume_dir: Path | None = None,
    progress: bool = True,
    guide_checkpoint: Path | None = None,
    discard_stale: bool = False,
) -> pd.DataFrame:
    """Train one run on images; write the final checkpoint and the loss log (CSV). Returns the log.

    The run's split (``data_dir``, from ``affsr prepare``) is kept on the training device and batches
    are sliced there, unless it does not fit (``train.data_on_device``, :mod:`affsr.training.accelerate`). A
    rerun with the same settings resumes from ``resume_dir``. ``guide_checkpoint``: the auxiliary run
    whose snapshots guide this one.

    All or nothing: the checkpoint and the log are written together after training, and the folders of
    both (and ``resume_dir``) are checked writable before it, so a read-only place fails in a second, not
    after the training. The final state is saved to ``resume_dir`` before the outputs are written, so if
    writing them still fails (a full disk), a rerun writes them without training again. While training,
    the run is locked: a second ``train`` with the same ``resume_dir`` raises RunInUse naming this job.
    """
    data_dir, checkpoint_path, log_path = Path(data_dir), Path(checkpoint_path), Path(log_path)
    resume_dir = Path(resume_dir) if resume_dir else None
    before_writing({"--checkpoint": checkpoint_path, "--log": log_path,
                    "--resume-dir": resume_dir / "state.pt" if resume_dir else None})
    with run_lock(resume_dir) if resume_dir else nullcontext():
        return _train(settings, data_dir, checkpoint_path, log_path, resume_dir, progress, guide_checkpoint,
                      discard_stale)


def _train(settings: RunSettings, data_dir: Path, checkpoint_path: Path, log_path: Path,
           resume_dir: Path | None, progress: bool, guide_checkpoint: Path | None,
           discard_stale: bool) -> pd.DataFrame:
    """:func:`train` once its outputs are checked and the run is locked."""
    manifest = load_manifest(data_dir)
    op = build_operator(settings.operator)  # A, once: checked against the data, then the model's
    checkpoint.check_data_matches(settings, data_dir, manifest, op=op)
    device = pick_device(settings.train.device)
    lr_images, hr_images = load_split(data_dir, settings.split, hr_bytes=True)
    run_plan = plan(settings.train, device, lr_images.nbytes + hr_images.nbytes)
    if run_plan.data_on_device:  # else batches are sliced on the host and sent up one by one
        lr_images, hr_images = lr_images.to(device), hr_images.to(device)
    channels = hr_images.shape[1]
    guides = checkpoint.load_guides(guide_checkpoint, settings, channels) if guide_checkpoint else []
    if settings.guide and not guides:
        raise ConfigError(f"method '{settings.method}' is guided by '{settings.guide}': pass --guide CHECKPOINT")
    for guide in guides:
        guide.network.to(device)
    objective = build_objective(settings, channels, guides, op)
    cfg = settings.train
    sample_batch = image_batch_sampler(lr_images, hr_images, cfg.batch_size, device,
                                       run_plan.memory_format)

    # What the run was trained on beyond its settings, part of the resume state's identity: a resume
    # against re-prepared data or a retrained guide would mix two runs' training silently.
    trained_on = {k: manifest[k] for k in ("source", "seed")}
    trained_on["manifest_sha256"] = _sha256(data_dir / "manifest.json")
    if guide_checkpoint:
        trained_on["guide_sha256"] = _sha256(Path(guide_checkpoint))
    settings_dict = {**settings.to_dict(), "data": trained_on}
    resume_path = Path(resume_dir) / "state.pt" if resume_dir else None
    state = fit(objective, sample_batch, cfg, f"{settings.dataset}/{settings.method}", settings_dict,
                device, resume_path, progress, discard_stale, run_plan)

    networks = {k: v.state_dict() for k, v in objective.networks.items()}
    stored = {"networks": networks, "channels": channels, "snapshots": state.snapshots}
    if state.ema is not None:  # evaluation and upscale load `generator`: the average
        stored["raw_networks"] = {EMA_NETWORK: networks[EMA_NETWORK]}
        networks[EMA_NETWORK] = state.ema.state_dict()
    log = pd.DataFrame(state.rows, columns=None if state.rows else ["step"])
    with FileSet():
        checkpoint.save(checkpoint_path, stored, settings_dict)
        write_csv(log_path, log)
    if resume_path:
        # Finished: the resume state has served its purpose. Removing it means a later rerun (which
        # Snakemake only starts when settings or code changed) trains from scratch, not from here.
        resume_path.unlink(missing_ok=True)
    return log
