"""``affsr`` command line: one verb per pipeline step, so every Snakemake rule also works by hand.

    affsr prepare   --dataset grass --out data/grass
    affsr train     --dataset grass --method affgan --data data/grass --checkpoint runs/grass/affgan/model.pt
    affsr evaluate  --data data/grass --method affgan --checkpoint runs/grass/affgan/model.pt --out ...
    affsr aggregate results/eval/*/*.csv --out results/metrics.csv
    affsr figures   --metrics results/metrics.csv --out-dir results/figures
    affsr summary   results/metrics.csv
    affsr claims    --metrics results/metrics.csv --out results/claims.md
    affsr publish   (results/ → docs/results/, the tables of the README and docs/ rewritten)

``prepare`` and ``train`` take their settings either from params.yaml (``--params``, default) or as the
resolved JSON that Snakemake passes (``--settings``), both through ``affsr.params``. User mistakes end
with one line ``affsr: error: ...`` and exit code 2; internal bugs keep their traceback.

A verb that writes several files writes all of them or none (``with FileSet():``, renamed together at the
end), and checks that every output can be written before its work starts (``before_writing``, which also
removes the temp files a killed run left in those folders).
"""

from __future__ import annotations

import argparse
import errno
import json
import signal
import sys
from pathlib import Path

import numpy as np

from affsr.atomic_files import FileSet, before_writing, remove_stale_temps, write_csv, write_json, write_npy, write_text
from affsr.config.study import RunSettings
from affsr.errors import USER_ERRORS, ConfigError, DataError, Interrupted, TrainingError

EXIT_CTRL_C = 130  # 128 + SIGINT, as shells report Ctrl-C
EXIT_INTERRUPTED = 75  # EX_TEMPFAIL (sysexits.h): stopped by SIGTERM/SIGUSR1, state saved, rerun resumes


def _settings_json(text: str) -> dict:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"--settings is not valid JSON: {err}") from None


def _settings(args: argparse.Namespace, method: str | None) -> dict:
    """The resolved settings: from --settings JSON, else resolved from --params for this run."""
    if args.settings:
        return _settings_json(args.settings)
    from affsr.params import load_params, resolve, resolve_dataset

    params = load_params(args.params)
    return resolve(params, args.dataset, method) if method else resolve_dataset(params, args.dataset)


def _dataset_settings(args: argparse.Namespace):
    """(DatasetConfig, OperatorConfig, seed) of ``--dataset``, from --settings or --params."""
    from affsr.config.data import DatasetConfig, OperatorConfig
    from affsr.config.parse import from_dict

    s = dict(_settings(args, None))
    op_cfg = from_dict(OperatorConfig, s.pop("operator"), "settings.operator")
    seed = s.pop("seed")
    return from_dict(DatasetConfig, s, "settings"), op_cfg, seed


def _need_folder(path: Path, option: str) -> None:
    """DataError, before any work, when a path that must be a folder is an existing file."""
    if path.exists() and not path.is_dir():
        raise DataError(f"{path}: {option} is a file; give a folder (it is made if missing)")


def cmd_prepare(args: argparse.Namespace) -> None:
    from affsr.data.load import MANIFEST_NAME
    from affsr.data.prepare import prepare
    from affsr.data.sources import spec_for
    from affsr.operators.kinds import build_operator

    ds, op_cfg, seed = _dataset_settings(args)
    _need_folder(Path(args.out), "--out")
    # Before reading the source (an ImageNet can take an hour): a read-only or full --out was found only
    # when the first split was written.
    before_writing({"--out": Path(args.out) / MANIFEST_NAME})
    spec = spec_for(args.dataset, ds, Path(args.input) if args.input else None)
    manifest = prepare(ds.source, Path(args.out), ds.hr_size, build_operator(op_cfg), ds.n_train, ds.n_val,
                       ds.n_test, seed, crop=ds.crop, spec=spec, progress=not args.quiet,
                       mirror_train=ds.mirror_train, dataset=args.dataset)
    counts = ", ".join(f"{k} {v}" for k, v in manifest.get("counts", {}).items())
    print(f"prepared {args.out}: {counts}")


def cmd_download(args: argparse.Namespace) -> None:
    from affsr.data.download import download_dataset

    ds, _, _ = _dataset_settings(args)
    digest = download_dataset(args.dataset, ds, Path(args.out), progress=not args.quiet)
    print(f"downloaded {args.out} (sha256 {digest})")


def cmd_toy(args: argparse.Namespace) -> None:
    import torch

    from affsr.params import load_params, resolve_toy
    from affsr.report import plots
    from affsr.report.toy_table import table1_markdown
    from affsr.toy.study import ToySettings, run_toy_study

    settings = ToySettings.parse(_settings_json(args.settings) if args.settings else resolve_toy(load_params(args.params)))
    before_writing({"--out": args.out, "--table": args.table, "--figure": args.figure})
    # Tiny MLPs: more threads only spin-wait (measured 65 s on 1 thread vs minutes on 2 when busy).
    torch.set_num_threads(1)
    metrics, figure_data = run_toy_study(settings, progress=not args.quiet)
    table = table1_markdown(metrics)
    with FileSet():  # the metrics, the table and the figure, or none
        write_csv(args.out, metrics, float_format="%.6g")
        write_text(args.table, table)
        plots.toy_figure(figure_data, Path(args.figure))
    print(table)


def _set_threads(threads: int | None) -> None:
    """Use as many CPU threads as the scheduler gave the job: two 2-thread jobs on 2 cores spin-wait
    against each other (OpenMP), which made the CPU study markedly slower than 1 thread each."""
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads: must be a positive number of CPU threads, got {threads}")
    if threads:
        import torch

        torch.set_num_threads(threads)


def cmd_train(args: argparse.Namespace) -> None:
    from affsr.training.run import train

    _set_threads(args.threads)

    settings = RunSettings.parse(_settings(args, args.method))
    resume = Path(args.resume_dir) if args.resume_dir else Path(args.checkpoint).parent / ".resume"
    _need_folder(resume, "--resume-dir")
    log = train(settings, Path(args.data), Path(args.checkpoint), Path(args.log), resume,
                progress=not args.quiet, guide_checkpoint=Path(args.guide) if args.guide else None,
                discard_stale=args.discard_stale_resume)
    if len(log):
        last = log.iloc[-1]
        losses = ", ".join(f"{k} {last[k]:.4g}" for k in log.columns if k.startswith("loss_"))
        print(f"trained {settings.dataset}/{settings.method}: {int(last['step'])} steps, {losses}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from affsr.config.parse import close_match_hint
    from affsr.config.study import REFERENCES
    from affsr.evaluation.evaluate import REAL_HR, evaluate, save_samples

    _set_threads(args.threads)
    if args.c2st_steps < 1:
        raise ConfigError(f"--c2st-steps: must be ≥ 1, got {args.c2st_steps}")
    references = (*REFERENCES, REAL_HR)  # the outputs evaluate makes without a checkpoint
    if not args.checkpoint and args.method not in references:
        raise ConfigError(f"--method '{args.method}': without --checkpoint it must be one of {', '.join(references)}"
                          f"{close_match_hint(args.method, references)}; a trained run needs --checkpoint "
                          f"runs/DATASET/{args.method}/model.pt")

    before_writing({"--out": args.out, "--samples": args.samples})
    metrics, sr = evaluate(Path(args.data), args.method, Path(args.checkpoint) if args.checkpoint else None,
                           density_checkpoint=Path(args.density) if args.density else None,
                           c2st_steps=args.c2st_steps)
    with FileSet():  # the metrics and the samples, or neither
        write_csv(args.out, metrics, float_format="%.6g")
        if args.samples:
            save_samples(Path(args.samples), sr, args.n_samples)
    print(metrics.to_string(index=False))


def cmd_aggregate(args: argparse.Namespace) -> None:
    from affsr.report.tables import metrics_tree, read_metrics, summary_markdown, summary_table

    before_writing({"--out": args.out, "--summary": args.summary, "--json": args.json})
    metrics = read_metrics([Path(p) for p in args.inputs])
    with FileSet():  # the table, its Markdown and its JSON, or none
        write_csv(args.out, metrics, float_format="%.6g")
        if args.summary:
            write_text(args.summary, summary_markdown(metrics))
        if args.json:
            write_json(args.json, metrics_tree(metrics))
    print(summary_table(metrics))


def cmd_claims(args: argparse.Namespace) -> None:
    from affsr.report.claims import claims_markdown, claims_table
    from affsr.report.tables import read_metrics

    table = claims_table(read_metrics([Path(args.metrics)]))
    others = {}
    for tier in args.tier or []:
        name, sep, path = tier.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--tier {tier!r}: expected NAME=METRICS.csv, e.g. cpu=studies/cpu/results/metrics.csv")
        others[name] = claims_table(read_metrics([Path(path)]))
    write_text(args.out, claims_markdown(table, args.study, others))
    print(table[["claim", "data set", "verdict"]].to_string(index=False))


def cmd_publish(args: argparse.Namespace) -> None:
    from affsr.report.readme_blocks import DOCUMENTS, publish

    try:
        written = publish(Path(args.results), Path(args.to), Path(args.root), tier=args.tier)
    except (FileNotFoundError, ValueError) as err:  # no results yet; a README block nothing publishes
        raise DataError(str(err)) from None
    documents = written[-len(DOCUMENTS):]
    print(f"published {len(written) - len(documents)} files to {args.to}; the tables of {', '.join(documents)} "
          "rewritten from them")


def cmd_summary(args: argparse.Namespace) -> None:
    from affsr.report.tables import read_metrics, summary_table

    print(summary_table(read_metrics([Path(args.metrics)])))


def cmd_figures(args: argparse.Namespace) -> None:
    from affsr.report import plots
    from affsr.report.tables import read_metrics

    out = Path(args.out_dir)
    metrics = read_metrics([Path(p) for p in args.metrics])
    if args.data and not args.methods:
        raise ConfigError("figures: --data needs --methods (the columns of each sample grid)")
    remove_stale_temps(out)
    with FileSet():  # every figure, or none
        plots.study_figures(metrics, [Path(d) for d in args.data], args.methods, Path(args.samples_dir),
                            Path(args.logs_dir), out, with_metrics=args.metrics_plot,
                            log_files=[Path(p) for p in args.logs] if args.logs is not None else None)
    print(f"figures written to {out}")


def _check_image_options(args: argparse.Namespace) -> None:
    """The options upscale and downsample share: --max-megapixels a positive number; --kernel names the
    blur of `--operator file` and nothing else, so it is refused rather than ignored elsewhere."""
    if args.max_megapixels is not None and not args.max_megapixels > 0:
        raise ConfigError(f"{args.verb}: --max-megapixels must be a positive number of megapixels, got {args.max_megapixels}")
    if args.kernel and args.operator != "file":
        raise ConfigError(f"{args.verb}: --kernel applies only with --operator file "
                          f"(got {'--operator ' + args.operator if args.operator else 'no --operator'})")


def cmd_upscale(args: argparse.Namespace) -> None:
    from affsr.params import operator_named
    from affsr.training.accelerate import pick_device
    from affsr.training.checkpoint import load_model
    from affsr.upscaling.files import check_output
    from affsr.upscaling.verbs import upscale_file

    check_output(Path(args.output))  # refuse before the model loads
    _check_image_options(args)
    before_writing({"output": args.output, "--raw": args.raw})
    device = pick_device("auto")
    model, settings = load_model(Path(args.checkpoint), device)
    operator = operator_named(args.operator, model.op.scale, args.kernel, args.boundary) if args.operator else None
    with FileSet():  # the image and --raw, or neither
        lines = upscale_file(model, settings, Path(args.input), Path(args.output), bits=args.bits, box=args.box,
                             alpha=args.alpha, tile=args.tile, overlap=args.overlap, device=device,
                             operator=operator, max_megapixels=args.max_megapixels, progress=True,
                             raw=Path(args.raw) if args.raw else None)
    print("\n".join(lines))


def cmd_downsample(args: argparse.Namespace) -> None:
    from affsr.operators.kinds import build_operator
    from affsr.params import load_params, operator_named
    from affsr.training.checkpoint import load_model
    from affsr.upscaling.files import check_output
    from affsr.upscaling.verbs import downsample_file

    check_output(Path(args.output))
    _check_image_options(args)
    before_writing({"output": args.output, "--raw": args.raw})
    if args.scale is not None and not args.operator:  # A of a run or of params.yaml has its own scale
        raise ConfigError(f"downsample: --scale applies only with --operator; the A of "
                          f"{args.checkpoint or args.params} has its own scale (leave --scale out)")
    # A by name (--operator), of the run (as its checkpoint records it) or of params.yaml
    operator = (operator_named(args.operator, args.scale or 4, args.kernel, args.boundary) if args.operator
                else load_model(Path(args.checkpoint))[1].operator if args.checkpoint else load_params(args.params).operator)
    with FileSet():  # the image and --raw, or neither
        x, lines = downsample_file(build_operator(operator), Path(args.input), Path(args.output), bits=args.bits,
                                   max_megapixels=args.max_megapixels)
        if args.raw:
            write_npy(args.raw, x.astype(np.float32))
    print("\n".join(lines))


def cmd_provenance(args: argparse.Namespace) -> None:
    from affsr.params import load_params
    from affsr.report.provenance import effective_params, write_provenance

    settings = _settings_json(args.settings) if args.settings else effective_params(load_params(args.params))
    write_provenance(Path(args.out_dir), settings)
    print(f"provenance written to {args.out_dir}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="affsr", description=__doc__.split("\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)

    def settings_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
        p.add_argument("--settings", help="resolved settings as JSON (what the workflow passes)")
        p.add_argument("--dataset", required=True)

    p = verbs.add_parser("download", help="fetch a data set's archive from its mirrors (resumes, verifies)")
    settings_args(p)
    p.add_argument("--out", required=True, help="file to write, e.g. data/downloads/faces/img_align_celeba.zip")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_download)

    p = verbs.add_parser("prepare", help="make HR images and their LR images with A")
    settings_args(p)
    p.add_argument("--out", required=True, help="data folder, e.g. data/grass")
    p.add_argument("--input", help="the downloaded file of a downloaded source (the download rule's output)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_prepare)

    p = verbs.add_parser("toy", help="the 2-D toy MAP experiment (paper Table 1 and Fig. 1)")
    p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    p.add_argument("--settings", help="resolved toy settings as JSON (what the workflow passes)")
    p.add_argument("--out", required=True, help="tidy metrics CSV (dataset toy)")
    p.add_argument("--table", required=True, help="Markdown table beside the paper's Table 1")
    p.add_argument("--figure", required=True, help="PNG in the style of the paper's Fig. 1")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=cmd_toy)

    p = verbs.add_parser("train", help="train one method on one data set (resumes if interrupted)")
    settings_args(p)
    p.add_argument("--method", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--checkpoint", required=True, help="final checkpoint path (.pt)")
    p.add_argument("--log", required=True, help="loss log CSV")
    p.add_argument("--resume-dir", help="resumable state (default: .resume beside the checkpoint)")
    p.add_argument("--guide", help="checkpoint of the auxiliary run guiding this one (AffDG, AffLL)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--discard-stale-resume", action="store_true",
                   help="resume state from other settings: start over instead of stopping")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_train)

    p = verbs.add_parser("evaluate", help="metrics of one method (or reference) on the test split")
    p.add_argument("--data", required=True)
    p.add_argument("--method", required=True,
                   help="run name, or bicubic / pinv / hr (real images) without --checkpoint")
    p.add_argument("--checkpoint")
    p.add_argument("--density", help="held-out density-model checkpoint: adds cross_entropy (bits/dim)")
    p.add_argument("--out", required=True, help="metrics CSV")
    p.add_argument("--samples", help="npz with the first test outputs, for figures")
    p.add_argument("--n-samples", type=int, default=8)
    p.add_argument("--c2st-steps", type=int, default=200, help="training steps of the c2st classifier")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    p.set_defaults(run=cmd_evaluate)

    p = verbs.add_parser("aggregate", help="join per-run metric CSVs into one tidy table")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--summary", help="also write the table as Markdown here")
    p.add_argument("--json", help="also write {dataset: {method: {metric: value}}} (DVC metrics)")
    p.set_defaults(run=cmd_aggregate)

    def operator_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--operator", metavar="KIND",
                       help="the A that made the LR image, by kind (as params.yaml's operator.kind: gaussian, box, "
                            "area, bicubic = PIL/MATLAB reduction, motion, file; affsr/operators/kinds.py)")
        p.add_argument("--kernel", help="with --operator file: the blur kernel as a 2-D .npy")
        p.add_argument("--boundary", choices=("circular", "reflect"), default="reflect",
                       help="with --operator: image edges (default reflect: measured closer to other tools' edges)")
        p.add_argument("--max-megapixels", type=float,
                       help="refuse an image whose output (upscale) or input (downsample) is larger (default: "
                            "upscale 67.2 ≈ 8192², time and work files on disk grow with the output; downsample "
                            "16.8 ≈ 4096², memory grows with its input)")

    p = verbs.add_parser("upscale", help="super-resolve any image with a trained checkpoint (tiled)")
    p.add_argument("input", help="LR image (PNG, JPEG, ...); any size")
    p.add_argument("output", help="SR image to write: .png (8-bit, or --bits 16), .tif/.tiff (16-bit), .npy (float32)")
    p.add_argument("--checkpoint", required=True, help="a trained run, e.g. runs/grass/affgan/model.pt")
    operator_args(p)
    p.add_argument("--tile", type=int, default=64, help="LR pixels per tile side (default 64)")
    p.add_argument("--overlap", type=int, default=8, help="LR pixels shared by neighbouring tiles (default 8)")
    p.add_argument("--raw", help="also save the float output (C, H, W) as .npy (exactly consistent)")
    p.add_argument("--bits", type=int, choices=(8, 16), default=8, help="bits per sample of a .png (default 8)")
    p.add_argument("--no-box", dest="box", action="store_false",
                   help="skip the projection onto [0, 1] ∩ {A y = x} (the file then clips; default: project)")
    p.add_argument("--alpha", choices=("keep", "drop"), default="keep",
                   help="an input's alpha plane: cubic-upscaled into .png/.tif outputs (keep, default) or dropped")
    p.set_defaults(run=cmd_upscale)

    p = verbs.add_parser("downsample", help="make an LR image with a study's operator A")
    p.add_argument("input")
    p.add_argument("output", help="LR image to write: .png (8-bit, or --bits 16), .tif/.tiff (16-bit), .npy (float32)")
    p.add_argument("--checkpoint", help="take A from this run (default: params' operator)")
    operator_args(p)
    p.add_argument("--scale", type=int, help="with --operator: the factor (default 4)")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--raw", help="also save the float LR (C, h, w) as .npy")
    p.add_argument("--bits", type=int, choices=(8, 16), default=8, help="bits per sample of a .png (default 8)")
    p.set_defaults(run=cmd_downsample)

    p = verbs.add_parser("provenance", help="effective params and software versions (for the report)")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--settings", help="the effective params as JSON (what the workflow passes)")
    p.add_argument("--out-dir", required=True)
    p.set_defaults(run=cmd_provenance)

    p = verbs.add_parser("claims", help="the paper's claims with verdicts computed from the metrics")
    p.add_argument("--metrics", default="results/metrics.csv")
    p.add_argument("--out", required=True, help="Markdown table, e.g. results/claims.md")
    p.add_argument("--study", default="demo", help="the study tier the metrics come from (named in the title)")
    p.add_argument("--tier", action="append", metavar="NAME=METRICS.csv",
                   help="another tier's metrics: its verdicts beside this study's (repeatable)")
    p.set_defaults(run=cmd_claims)

    p = verbs.add_parser("publish", help="copy a finished study's results to docs/results, rewrite the tables of "
                                         "the README and docs/")
    p.add_argument("--results", default="results")
    p.add_argument("--to", default="docs/results")
    p.add_argument("--root", default=".", help="the repository, whose README.md and docs/ pages hold the tables")
    p.add_argument("--tier", default="", help="a study tier's results (e.g. cpu): published into TO/TIER, "
                   "blocks named TIER-…")
    p.set_defaults(run=cmd_publish)

    p = verbs.add_parser("summary", help="print the metrics table")
    p.add_argument("metrics", nargs="?", default="results/metrics.csv")
    p.set_defaults(run=cmd_summary)

    p = verbs.add_parser("figures", help="sample grids, metrics plot, training curves")
    p.add_argument("--metrics", nargs="+", required=True,
                   help="metric CSVs (results/metrics.csv, or one data set's results/eval/DATASET/*.csv)")
    p.add_argument("--data", nargs="*", default=[], help="data folders (one grid each; none: the metrics plot only)")
    p.add_argument("--methods", nargs="*", default=[], help="columns of the grid, in order")
    p.add_argument("--metrics-plot", action=argparse.BooleanOptionalAction, default=True,
                   help="write metrics.png (every data set in --metrics side by side)")
    p.add_argument("--samples-dir", default="results/samples")
    p.add_argument("--logs-dir", default="results/logs/train")
    p.add_argument("--logs", nargs="*", help="loss logs to draw (default: every LOGS_DIR/DATASET/*.csv)")
    p.add_argument("--out-dir", default="results/figures")
    p.set_defaults(run=cmd_figures)
    return parser


#: What an OS error means for the user, by errno: the cause said plainly, and what to do.
OS_FAULTS = {
    errno.EROFS: "read-only file system; write the output somewhere writable",
    errno.ENOSPC: "no space left on the device; free some or write elsewhere",
    errno.EDQUOT: "disk quota exceeded; free some or write elsewhere",
    errno.EFBIG: "file too large for this system's file-size limit (ulimit -f)",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EISDIR: "is a folder; give a file name",
    errno.ENOTDIR: "a part of this path is a file, not a folder",
    errno.ENOENT: "no such file or folder",
    errno.EEXIST: "already exists",
}


def os_fault(err: OSError) -> str:
    """One line for an OS error: the path it concerns and the cause (errno's meaning, and what to do)."""
    where = err.filename if err.filename is not None else "affsr"
    cause = OS_FAULTS.get(err.errno, err.strerror or type(err).__name__)
    return f"{where}: {cause}"


class _Stopped(BaseException):
    """A scheduler's SIGTERM / SIGUSR1 outside a training loop (which handles them itself and saves its
    state): raised where the verb is, like Ctrl-C's KeyboardInterrupt, so that its cleanup runs — a
    FileSet drops its temp files, `upscale` removes its work folder (GBs for a large image), which a
    process killed by the signal's default action left behind."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, frame) -> None:
    raise _Stopped(signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    scheduler_signals = (signal.SIGTERM, signal.SIGUSR1)
    previous = {sig: signal.signal(sig, _stop) for sig in scheduler_signals} if _main_thread() else {}
    try:
        args.run(args)
    except Interrupted as err:  # preempted: state saved; EX_TEMPFAIL tells a scheduler to try again
        print(f"affsr: interrupted: {err}", file=sys.stderr)
        return EXIT_CTRL_C if err.signum == signal.SIGINT else EXIT_INTERRUPTED
    except KeyboardInterrupt:  # Ctrl-C outside a training loop (or twice inside one): nothing to save
        print("affsr: interrupted: Ctrl-C; outputs are written whole or not at all, so none is half-written",
              file=sys.stderr)
        return EXIT_CTRL_C
    except _Stopped as err:  # a scheduler's signal outside training: nothing to save; rerun to redo it
        print(f"affsr: interrupted: {signal.Signals(err.signum).name}; outputs are written whole or not at all, "
              "so none is half-written; rerun the command", file=sys.stderr)
        return EXIT_INTERRUPTED
    except TrainingError as err:  # e.g. a NaN loss: the message names the step and the saved state
        print(f"affsr: error: {err}", file=sys.stderr)
        return 1
    except USER_ERRORS as err:
        print(f"affsr: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the operating system refused: a read-only place, a full disk, a size limit, …
        print(f"affsr: error: {os_fault(err)}", file=sys.stderr)
        return 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _main_thread() -> bool:
    """Signal handlers can only be set from the main thread (a caller may run ``main`` in another)."""
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
