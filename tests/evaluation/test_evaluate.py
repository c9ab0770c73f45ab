"""Tests for affsr.evaluation.evaluate: the metric rows of a reference, of the real images (the floor) and of tiny
trained runs; the samples file; the operator from the manifest; the draw metrics and the c2st groups.

Every c2st classifier here trains 2 steps: its accuracy is meaningless, its plumbing is what is tested.
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from affsr.training.checkpoint import load_model, load_network
from affsr.config.study import RunSettings
from affsr.data.load import load_manifest, load_split
from affsr.evaluation.likelihood import cross_entropy
from affsr.errors import CheckpointError, DataError
from affsr.evaluation.evaluate import (DRAWS, REAL_HR, c2st_groups, data_operator, evaluate, real_data_halves,
                                       save_samples, super_resolve)
from affsr.evaluation.metrics import Scored, compute_metrics
from affsr.evaluation.consistency import lr_mse
from affsr.evaluation.distortion import psnr
from affsr.evaluation.references import reference_outputs
from affsr.operators.downsampling import Downsampling
from affsr.params import load_params, resolve
from affsr.training.run import train
from conftest import COUNTS, HR_SIZE, tiny_params_dict

C2ST_STEPS = 2
PER_IMAGE = {"lr_mse", "lr_rel", "lr_psnr", "psnr", "ssim"}
PERCEPTION = {"swd", "spectrum_distance", "hf_ratio", "c2st", "c2st_se"}
N_TEST = COUNTS["n_test"]


def _params() -> dict:
    """The tiny params plus a stochastic generator run and a tiny held-out density model."""
    params = tiny_params_dict()
    params["train"]["steps"] = 4
    params["density"] = {"width": 8, "layers": 2, "kernel": 3, "first_kernel": 3, "components": 2, "features": 2}
    params["methods"]["mse_z"] = {"objective": "pixel", "constraint": "projected", "options": {"loss": "l2"},
                                  "generator": {"noise": 1}}
    params["methods"]["density_heldout"] = {"objective": "density_fit", "split": "val",
                                            "options": {"snapshots": 1}}
    return params


@pytest.fixture(scope="module")
def runs(tiny_data, tmp_path_factory) -> dict:
    """{method: checkpoint} of tiny finished runs (4 steps each) on the tiny grass set."""
    out = tmp_path_factory.mktemp("evaluate-runs")
    params = load_params(_params())
    paths = {}
    for method in ("mse", "mse_z", "density_heldout"):
        paths[method] = out / f"{method}.pt"
        train(RunSettings.parse(resolve(params, "grass", method)), tiny_data, paths[method],
              out / f"{method}.csv", progress=False)
    return paths


def _values(rows: pd.DataFrame) -> dict[str, float]:
    assert list(rows.columns) == ["dataset", "method", "metric", "value"]
    assert rows.metric.is_unique
    return dict(zip(rows.metric, rows.value))


def _labels(rows: pd.DataFrame, dataset: str, method: str) -> None:
    assert set(rows.dataset) == {dataset} and set(rows.method) == {method}


# ---- the operator of the data --------------------------------------------------------------------------------


def test_data_operator_is_the_operator_the_data_were_made_with(tiny_data):
    op = data_operator(tiny_data)
    made_with = Downsampling.gaussian(1.0, 9, 4)  # as conftest prepared it
    assert op.describe() == made_with.describe() == load_manifest(tiny_data)["operator"]
    assert torch.equal(op.kernel, made_with.kernel)
    lr, hr = load_split(tiny_data, "test")
    assert torch.allclose(op(hr.double()).float(), lr, atol=1e-6)  # it really maps the HR to the LR


@pytest.mark.parametrize("manifest", [{"dataset": "grass"}, {"operator": {"name": "lanczos", "scale": 4}}])
def test_data_operator_without_a_usable_operator_is_a_data_error(tmp_path, manifest):
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=f"^{tmp_path}/manifest.json: no usable operator A recorded"):
        data_operator(tmp_path)


# ---- references and the real images --------------------------------------------------------------------------


def test_pinv_is_consistent_to_float64_round_off(tiny_data):
    rows, sr = evaluate(tiny_data, "pinv", c2st_steps=C2ST_STEPS)
    _labels(rows, "grass", "pinv")
    values = _values(rows)
    assert set(values) == PER_IMAGE | PERCEPTION
    assert values["lr_mse"] < 1e-25 and values["lr_rel"] < 1e-12
    assert values["lr_psnr"] > 200
    assert math.isfinite(values["psnr"]) and 0 < values["psnr"] < 100
    assert 0.0 <= values["c2st"] <= 1.0
    lr, hr = load_split(tiny_data, "test")
    assert sr.dtype == torch.float64 and sr.shape == (N_TEST, 1, HR_SIZE, HR_SIZE)
    assert torch.equal(sr, reference_outputs("pinv", lr, data_operator(tiny_data)))
    assert values["psnr"] == pytest.approx(psnr(sr, hr))


def test_bicubic_is_not_consistent_but_hits_the_lr_samples(tiny_data):
    rows, sr = evaluate(tiny_data, "bicubic", c2st_steps=C2ST_STEPS)
    _labels(rows, "grass", "bicubic")
    values = _values(rows)
    assert set(values) == PER_IMAGE | PERCEPTION
    assert values["lr_mse"] > 1e-6  # plain upsampling does not invert the blur
    assert math.isfinite(values["psnr"])
    lr, hr = load_split(tiny_data, "test")
    assert sr.shape == (N_TEST, 1, HR_SIZE, HR_SIZE)
    # on A's grid (offset 0 for the centred Gaussian) bicubic interpolates: HR pixel 4i is LR pixel i
    assert torch.allclose(sr[..., ::4, ::4], lr.double(), atol=1e-6)
    assert values["lr_mse"] == pytest.approx(lr_mse(sr, lr, data_operator(tiny_data)))


def test_hr_rows_are_the_real_data_floor(tiny_data):
    rows, sr = evaluate(tiny_data, REAL_HR, c2st_steps=C2ST_STEPS)
    _labels(rows, "grass", "hr")
    values = _values(rows)
    assert set(values) == PERCEPTION  # no distortion or consistency of the real images against themselves
    _, hr = load_split(tiny_data, "test")
    assert torch.equal(sr, hr)
    first, second, groups = real_data_halves(hr, groups=c2st_groups(tiny_data, "test", HR_SIZE))
    floor = compute_metrics(Scored(outputs=hr, op=data_operator(tiny_data), compared=first, real=second,
                                   groups=groups, c2st_steps=C2ST_STEPS))
    assert values == floor
    assert values["swd"] > 0 and values["spectrum_distance"] > 0  # sampling noise alone


def test_reference_results_are_reproducible(tiny_data):
    first, _ = evaluate(tiny_data, "bicubic", c2st_steps=C2ST_STEPS)
    torch.manual_seed(123)
    second, _ = evaluate(tiny_data, "bicubic", c2st_steps=C2ST_STEPS)
    pd.testing.assert_frame_equal(first, second)


# ---- trained runs ---------------------------------------------------------------------------------------------


def test_trained_run_rows_and_outputs(tiny_data, runs):
    rows, sr = evaluate(tiny_data, "mse", runs["mse"], c2st_steps=C2ST_STEPS)
    _labels(rows, "grass", "mse")
    values = _values(rows)
    assert set(values) == PER_IMAGE | PERCEPTION  # a deterministic generator: no draw metrics
    assert all(math.isfinite(v) for v in values.values())
    lr, hr = load_split(tiny_data, "test")
    model, _ = load_model(runs["mse"])
    assert sr.dtype == torch.float32 and sr.shape == (N_TEST, 1, HR_SIZE, HR_SIZE)
    # evaluate runs on the GPU when there is one, this model on the CPU: equal up to float32 round-off
    assert torch.allclose(sr, super_resolve(model, lr), rtol=0, atol=1e-5)
    assert values["psnr"] == pytest.approx(psnr(sr, hr))
    assert values["lr_mse"] == pytest.approx(lr_mse(sr, lr, data_operator(tiny_data)))
    assert values["lr_mse"] > 1e-6  # `mse` is unconstrained here (constraint: none)


def test_super_resolve_in_batches_equals_one_pass(tiny_data, runs):
    lr, _ = load_split(tiny_data, "test")
    model, _ = load_model(runs["mse"])
    whole = super_resolve(model, lr)
    assert torch.allclose(super_resolve(model, lr, batch_size=3), whole, atol=1e-6)
    assert whole.device.type == "cpu" and len(whole) == len(lr)


def test_stochastic_run_returns_every_draw_and_their_metrics(tiny_data, runs):
    rows, draws = evaluate(tiny_data, "mse_z", runs["mse_z"], c2st_steps=C2ST_STEPS)
    _labels(rows, "grass", "mse_z")
    values = _values(rows)
    assert set(values) == PER_IMAGE | PERCEPTION | {"diversity", "lr_mse_draws"}
    assert draws.shape == (N_TEST, DRAWS, 1, HR_SIZE, HR_SIZE)
    lr, hr = load_split(tiny_data, "test")
    op = data_operator(tiny_data)
    assert values["psnr"] == pytest.approx(psnr(draws[:, 0], hr))  # per-image metrics: the first draw
    assert values["diversity"] > 0  # the noise input changes the answer
    assert values["diversity"] == pytest.approx(draw_metrics(draws, lr, op)["diversity"])
    assert values["lr_mse_draws"] == pytest.approx(max(lr_mse(draws[:, k], lr, op) for k in range(DRAWS)))
    assert values["lr_mse_draws"] < 1e-10  # projected: every draw is consistent
    again, draws_again = evaluate(tiny_data, "mse_z", runs["mse_z"], c2st_steps=C2ST_STEPS)
    assert torch.equal(draws, draws_again)  # the draws are reproducible
    pd.testing.assert_frame_equal(rows, again)


def test_checkpoint_of_another_method_is_refused(tiny_data, runs):
    with pytest.raises(CheckpointError, match=f"^{runs['mse']}: is a 'mse' run, not 'affgan'; pass --method mse"):
        evaluate(tiny_data, "affgan", runs["mse"], c2st_steps=C2ST_STEPS)


def test_checkpoint_on_another_data_set_is_refused(tiny_data, runs, tmp_path):
    other = tmp_path / "faces"
    shutil.copytree(tiny_data, other)
    manifest = load_manifest(other)
    (other / "manifest.json").write_text(json.dumps({**manifest, "dataset": "faces"}))
    with pytest.raises(CheckpointError, match=f"^{runs['mse']}: does not fit {other}: .*holds data set 'faces'"):
        evaluate(other, "mse", runs["mse"], c2st_steps=C2ST_STEPS)


def test_density_checkpoint_adds_the_cross_entropy(tiny_data, runs):
    density, _ = load_network(runs["density_heldout"], "density")
    rows, sr = evaluate(tiny_data, "pinv", density_checkpoint=runs["density_heldout"], c2st_steps=C2ST_STEPS)
    values = _values(rows)
    assert set(values) == PER_IMAGE | PERCEPTION | {"cross_entropy"}
    expected = cross_entropy(density, sr.float(), dequantize=False)
    assert values["cross_entropy"] == pytest.approx(expected, rel=1e-4)
    # real 8-bit images are dequantised first, outputs are not
    rows, hr = evaluate(tiny_data, REAL_HR, density_checkpoint=runs["density_heldout"], c2st_steps=C2ST_STEPS)
    real = _values(rows)["cross_entropy"]
    assert real == pytest.approx(cross_entropy(density, hr, dequantize=True), rel=1e-4)
    assert real != pytest.approx(cross_entropy(density, hr, dequantize=False), rel=1e-4)


# ---- samples -----------------------------------------------------------------------------------------------------


def test_save_samples_keeps_the_first_n_outputs_as_float32(tmp_path):
    sr = torch.rand(5, 1, 8, 8, dtype=torch.float64)
    save_samples(tmp_path / "samples.npz", sr, 3)
    with np.load(tmp_path / "samples.npz") as z:
        assert z.files == ["sr"]
        assert z["sr"].dtype == np.float32 and z["sr"].shape == (3, 1, 8, 8)
        np.testing.assert_array_equal(z["sr"], sr[:3].numpy().astype(np.float32))


def test_save_samples_of_draws_keeps_the_first_draw_and_every_draw(tmp_path):
    draws = torch.rand(5, DRAWS, 2, 8, 8)
    save_samples(tmp_path / "samples.npz", draws, 2)
    with np.load(tmp_path / "samples.npz") as z:
        assert sorted(z.files) == ["draws", "sr"]
        assert z["sr"].shape == (2, 2, 8, 8) and z["draws"].shape == (2, DRAWS, 2, 8, 8)
        np.testing.assert_array_equal(z["sr"], draws[:2, 0].numpy())
        np.testing.assert_array_equal(z["draws"], draws[:2].numpy())


def test_save_samples_of_fewer_outputs_than_asked_keeps_them_all(tmp_path):
    sr = torch.rand(2, 1, 8, 8)
    save_samples(tmp_path / "samples.npz", sr, 8)
    with np.load(tmp_path / "samples.npz") as z:
        assert z["sr"].shape == (2, 1, 8, 8)


# ---- draw metrics ------------------------------------------------------------------------------------------------


def draw_metrics(draws: torch.Tensor, lr: torch.Tensor, op: Downsampling) -> dict[str, float]:
    """The metric table's rows of several draws per input (N, K, C, H, W)."""
    values = compute_metrics(Scored(outputs=draws[:, 0], op=op, compared=draws[:, 0], real=draws[:, 0], lr=lr,
                                    hr=draws[:, 0], draws=draws, c2st_steps=2))
    return {k: values[k] for k in ("diversity", "lr_mse_draws")}


def test_draw_metrics_known_answer():
    op = Downsampling.gaussian(1.0, 9, 4)
    # two inputs, three constant draws each: 0, 0.5, 1 → pairwise RMS differences 0.5, 1, 0.5 (mean 2/3)
    levels = torch.tensor([0.0, 0.5, 1.0])
    draws = levels.view(1, 3, 1, 1, 1).expand(2, 3, 1, 16, 16).clone()
    lr = torch.zeros(2, 1, 4, 4)  # draw 0 is consistent; A of a constant c is c, so lr_mse of draw k is c²
    got = draw_metrics(draws, lr, op)
    assert set(got) == {"diversity", "lr_mse_draws"}
    assert got["diversity"] == pytest.approx(2 / 3)
    assert got["lr_mse_draws"] == pytest.approx(1.0)  # the worst draw, not the first


def test_draw_metrics_of_identical_draws_is_zero_diversity():
    op = Downsampling.gaussian(1.0, 9, 4)
    one = torch.rand(3, 1, 1, 16, 16, dtype=torch.float64)
    draws = one.expand(3, 4, 1, 16, 16)
    got = draw_metrics(draws, op(one[:, 0]), op)
    assert got["diversity"] == 0.0  # mode collapse
    assert got["lr_mse_draws"] < 1e-25


# ---- c2st groups and the real-data floor ---------------------------------------------------------------------------


def _fake_split(folder, **arrays):
    """A split file with the keys load_positions needs (hr, lr) plus ``arrays``."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(next(iter(arrays.values())))
    np.savez(folder / "test.npz", hr=np.zeros((n, 1, 16, 16), np.uint8), lr=np.zeros((n, 1, 4, 4), np.float32),
             **arrays)
    return folder


def test_c2st_groups_is_the_half_of_the_source_image(tmp_path):
    # image 0: patches at left 0, 10, 84, 38, 45 (16 px) → widest extent 100, centres 8, 18, 92, 46, 53:
    # left, left, right, left, right (by the centre: patch 45 starts left of 50 but is mostly right of it)
    # image 1: patches at left 40, 0 → extent 56, centres 48, 8 → right, left
    positions = np.array([[0, 0, 0], [0, 5, 10], [0, 9, 84], [0, 1, 38], [0, 2, 45], [1, 0, 40], [1, 3, 0]],
                         dtype=np.int64)
    folder = _fake_split(tmp_path / "d", positions=positions)
    groups = c2st_groups(folder, "test", 16)
    assert groups.dtype == np.int64
    np.testing.assert_array_equal(groups, [0, 0, 1, 0, 1, 1, 0])


def test_c2st_groups_use_the_recorded_image_widths(tmp_path):
    # one patch per 100-px-wide photo (a small test split of many photos): the widest extent seen would be
    # the patch's own, putting every patch in the right half (one group); the manifest's widths do not
    positions = np.array([[0, 0, 0], [1, 0, 84], [2, 0, 10], [3, 0, 60]], dtype=np.int64)
    folder = _fake_split(tmp_path / "d", positions=positions)
    (folder / "manifest.json").write_text(json.dumps({"image_shapes": [[1, 100, 100]] * 4}))
    np.testing.assert_array_equal(c2st_groups(folder, "test", 16), [0, 1, 0, 1])


def test_c2st_groups_of_whole_images_is_none(tmp_path):
    folder = _fake_split(tmp_path / "faces", names=np.array(["a.jpg", "b.jpg"]))
    assert c2st_groups(folder, "test", 16) is None


def test_c2st_groups_of_the_tiny_data(tiny_data):
    groups = c2st_groups(tiny_data, "test", HR_SIZE)
    assert groups.shape == (N_TEST,) and set(groups.tolist()) == {0, 1}


def _ids(images: torch.Tensor) -> list[int]:
    return images[:, 0, 0, 0].long().tolist()


def test_real_data_halves_are_disjoint():
    hr = torch.arange(7.0).view(7, 1, 1, 1).expand(7, 1, 8, 8)  # image i is the constant i
    first, second, groups = real_data_halves(hr)
    a, b = _ids(first), _ids(second)
    assert len(a) == len(b) == 3  # ⌊7/2⌋ each
    assert not set(a) & set(b) and set(a) | set(b) <= set(range(7))
    assert groups is None


def test_real_data_halves_with_groups_pair_within_groups():
    hr = torch.arange(9.0).view(9, 1, 1, 1).expand(9, 1, 8, 8)
    groups = np.array([0, 0, 0, 1, 1, 1, 1, 1, 0])  # group 0: 4 images, group 1: 5
    first, second, first_groups = real_data_halves(hr, groups=groups)
    a, b = _ids(first), _ids(second)
    assert len(a) == len(b) == 4  # 2 + 2 from each group's halves (group 1's odd one out is left over)
    assert not set(a) & set(b)
    assert [groups[i] for i in a] == [groups[i] for i in b]  # pair i: both from one group
    np.testing.assert_array_equal(np.asarray(first_groups), groups[a])


def test_real_data_halves_are_seeded(tiny_data):
    _, hr = load_split(tiny_data, "test")
    first = real_data_halves(hr)
    again = real_data_halves(hr)
    assert all(torch.equal(x, y) for x, y in zip(first[:2], again[:2]))
