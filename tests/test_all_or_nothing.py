"""All or nothing per command (issue 25): a verb that writes several files leaves either all of them new or
all of them as they were, and a place it cannot write is refused before its work, in one
``affsr: error:`` line naming the path, exit 2, no traceback.

The cases measured before: ``train --log`` on a read-only place trained to the end, wrote model.pt, then
failed; ``upscale --raw`` / ``downsample --raw`` wrote the image, then failed; ``evaluate --samples`` wrote
the metrics, then failed. Each is checked twice: refused up front, and failing at the very end (the place
turned read-only during the work), where the first file must not land either. The read-only places are
real (tests/read_only.py).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from read_only import read_only

import affsr.cli
import affsr.training.run as run_module
from affsr.cli import main
from affsr.training import checkpoint

STEPS = 6


def _listing(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_error_line(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("affsr: error: "), err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


@pytest.fixture
def params(tmp_path, tiny_params) -> Path:
    tiny_params["train"].update(steps=STEPS, checkpoint_every=4, log_every=2)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_params))
    return path


def _train_argv(params: Path, data: Path, run: Path, log: Path) -> list[str]:
    return ["train", "--quiet", "--params", str(params), "--dataset", "grass", "--method", "mse", "--data", str(data),
            "--checkpoint", str(run / "model.pt"), "--log", str(log)]


# ---- train: model.pt and the log -------------------------------------------------------------------------


def test_train_with_its_log_in_a_read_only_place_stops_before_training(tmp_path, params, tiny_data, capsys,
                                                                       monkeypatch):
    def fit(*args, **kwargs):
        raise AssertionError("trained although the log cannot be written")

    monkeypatch.setattr(run_module, "fit", fit)
    logs, run = tmp_path / "logs", tmp_path / "run"
    with read_only(logs):
        code = main(_train_argv(params, tiny_data, run, logs / "losses.csv"))
    _one_error_line(code, capsys.readouterr().err, str(logs / "losses.csv"))
    assert not run.exists() and _listing(logs) == {}


def test_train_writes_model_and_log_together_and_keeps_the_training_if_that_fails(tmp_path, params, tiny_data,
                                                                                  capsys, monkeypatch):
    """The log's place turns read-only during training: neither model.pt nor the log lands, the finished
    state stays in .resume/, and once the place is writable again a rerun writes both without training."""
    logs, run = tmp_path / "logs", tmp_path / "run"
    real_fit = run_module.fit
    place = ExitStack()

    def fit_then_lose_the_place(*args, **kwargs):
        state = real_fit(*args, **kwargs)
        place.enter_context(read_only(logs))
        return state

    monkeypatch.setattr(run_module, "fit", fit_then_lose_the_place)
    with place:
        code = main(_train_argv(params, tiny_data, run, logs / "losses.csv"))
        _one_error_line(code, capsys.readouterr().err, str(logs / "losses.csv"))
        assert _listing(logs) == {}
    assert sorted(_listing(run)) == [".resume/state.pt"]  # no model.pt, no temp file
    assert checkpoint.load(run / ".resume" / "state.pt")[0]["step"] == STEPS

    monkeypatch.undo()
    original = run_module.build_objective

    def untrainable(*args, **kwargs):  # the rerun must not train a single step
        objective = original(*args, **kwargs)
        for phase in objective.phases:
            phase.loss = lambda *a: (_ for _ in ()).throw(AssertionError("trained again"))
        return objective

    monkeypatch.setattr(run_module, "build_objective", untrainable)
    code = main(_train_argv(params, tiny_data, run, logs / "losses.csv"))
    assert code == 0, capsys.readouterr().err
    assert sorted(_listing(run)) == ["model.pt"] and sorted(_listing(logs)) == ["losses.csv"]
    assert pd.read_csv(logs / "losses.csv")["step"].iloc[-1] == STEPS


def test_the_next_train_removes_a_killed_writes_temp_file_but_not_a_live_ones(tmp_path, params, tiny_data,
                                                                              capsys):
    """kill -9 during a state write left `.state.pt.*.tmp` in .resume/: the next train removes it; the temp
    file of a job writing into the shared log folder right now is left alone."""
    from test_atomic_files import _killed_writer, _live_writer

    run, logs = tmp_path / "run", tmp_path / "logs"
    _killed_writer(run / ".resume" / "state.pt")
    assert [p.name.startswith(".state.pt.") for p in (run / ".resume").iterdir()] == [True]
    other_job = _live_writer(logs / "affgan.csv")
    try:
        code = main(_train_argv(params, tiny_data, run, logs / "mse.csv"))
        assert code == 0, capsys.readouterr().err
        assert sorted(_listing(run)) == ["model.pt"]  # no stray temp file (and no lock) left
        names = sorted(p.name for p in logs.iterdir())
        assert len(names) == 2 and names[0].startswith(".affgan.csv.") and names[1] == "mse.csv"
    finally:
        other_job.kill()
        other_job.wait()


# ---- upscale and downsample: the image and --raw --------------------------------------------------------


@pytest.fixture(scope="module")
def model(tmp_path_factory, tiny_data) -> Path:
    from conftest import tiny_params_dict

    root = tmp_path_factory.mktemp("all_or_nothing")
    p = tiny_params_dict()
    p["train"]["steps"] = 2
    (root / "params.yaml").write_text(yaml.safe_dump(p))
    assert main(_train_argv(root / "params.yaml", tiny_data, root, root / "losses.csv")) == 0
    return root / "model.pt"


def _image(path: Path, side: int) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (side, side), dtype=np.uint8)).save(path)
    return path


def _verb_argv(verb: str, tmp_path: Path, model: Path, output: Path, raw: Path) -> list[str]:
    if verb == "upscale":
        return ["upscale", str(_image(tmp_path / "lr.png", 12)), str(output), "--checkpoint", str(model),
                "--raw", str(raw), "--no-box"]  # noise is no image of A: the projection would add a note
    return ["downsample", str(_image(tmp_path / "hr.png", 48)), str(output), "--operator", "gaussian", "--raw", str(raw)]


@pytest.mark.parametrize("verb", ["upscale", "downsample"])
def test_raw_in_a_read_only_place_is_refused_before_the_work(tmp_path, model, capsys, monkeypatch, verb):
    def load_model(*args, **kwargs):
        raise AssertionError("the model was loaded although --raw cannot be written")

    monkeypatch.setattr(checkpoint, "load_model", load_model)
    out, raws = tmp_path / "out", tmp_path / "raws"
    with read_only(raws):
        code = main(_verb_argv(verb, tmp_path, model, out / "image.png", raws / "image.npy"))
    _one_error_line(code, capsys.readouterr().err, str(raws / "image.npy"))
    assert not out.exists() and _listing(raws) == {}


@pytest.mark.parametrize("verb", ["upscale", "downsample"])
def test_raw_failing_at_the_end_leaves_the_image_as_it_was(tmp_path, model, capsys, monkeypatch, verb):
    """--raw's place turns read-only after the check: the image written just before it is not renamed into
    place; the old image stays, byte for byte, and no temp file is left beside it."""
    monkeypatch.setattr(affsr.cli, "before_writing", lambda outputs: None, raising=False)  # no up-front check
    out, raws = tmp_path / "out", tmp_path / "raws"
    out.mkdir()
    (out / "image.png").write_bytes(b"the previous image")
    with read_only(raws):
        code = main(_verb_argv(verb, tmp_path, model, out / "image.png", raws / "image.npy"))
    _one_error_line(code, capsys.readouterr().err, str(raws / "image.npy"))
    assert _listing(out) == {"image.png": b"the previous image"} and _listing(raws) == {}


@pytest.mark.parametrize("verb", ["upscale", "downsample"])
def test_both_files_land_when_all_goes_well(tmp_path, model, capsys, verb):
    out = tmp_path / "out"
    code = main(_verb_argv(verb, tmp_path, model, out / "image.png", out / "image.npy"))
    assert code == 0, capsys.readouterr().err
    assert sorted(_listing(out)) == ["image.npy", "image.png"]


# ---- evaluate: the metrics and --samples ----------------------------------------------------------------


def _evaluate_argv(data: Path, metrics: Path, samples: Path) -> list[str]:
    return ["evaluate", "--data", str(data), "--method", "bicubic", "--out", str(metrics), "--samples", str(samples),
            "--c2st-steps", "2", "--n-samples", "2"]


def test_evaluate_with_samples_in_a_read_only_place_stops_before_evaluating(tmp_path, tiny_data, capsys,
                                                                            monkeypatch):
    import affsr.evaluation.evaluate as evaluation

    def evaluate(*args, **kwargs):
        raise AssertionError("evaluated although --samples cannot be written")

    monkeypatch.setattr(evaluation, "evaluate", evaluate)
    results, samples = tmp_path / "results", tmp_path / "samples"
    with read_only(samples):
        code = main(_evaluate_argv(tiny_data, results / "bicubic.csv", samples / "bicubic.npz"))
    _one_error_line(code, capsys.readouterr().err, str(samples / "bicubic.npz"))
    assert not results.exists() and _listing(samples) == {}


def test_evaluate_samples_failing_at_the_end_leaves_the_metrics_as_they_were(tmp_path, tiny_data, capsys,
                                                                             monkeypatch):
    monkeypatch.setattr(affsr.cli, "before_writing", lambda outputs: None, raising=False)  # no up-front check
    results, samples = tmp_path / "results", tmp_path / "samples"
    results.mkdir()
    (results / "bicubic.csv").write_text("the previous metrics\n")
    with read_only(samples):
        code = main(_evaluate_argv(tiny_data, results / "bicubic.csv", samples / "bicubic.npz"))
    _one_error_line(code, capsys.readouterr().err, str(samples / "bicubic.npz"))
    assert _listing(results) == {"bicubic.csv": b"the previous metrics\n"} and _listing(samples) == {}


def test_two_outputs_naming_one_file_are_refused(tmp_path, tiny_data, capsys):
    code = main(_evaluate_argv(tiny_data, tmp_path / "same.npz", tmp_path / "same.npz"))
    _one_error_line(code, capsys.readouterr().err, "--out and --samples name the same file", str(tmp_path / "same.npz"))
    assert list(tmp_path.iterdir()) == []
