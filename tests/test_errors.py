"""Every bad input gets a clear error: one line `affsr: error: ...` naming the key, file or step, a
non-zero exit code, no traceback, nothing half-written. One test per case (params schema, data files,
checkpoints, non-finite losses); the CLI is called in-process exactly as the workflow calls it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from affsr.cli import main


def _cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def _one_line(code: int, err: str, *fragments: str, exit_code: int = 2) -> str:
    assert code == exit_code, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("affsr: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def _params(tmp_path: Path, params: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def _train(tmp_path: Path, params: Path, data: Path, method: str = "mse", *extra) -> tuple:
    return ("train", "--quiet", "--params", params, "--dataset", "grass", "--method", method, "--data", data,
            "--checkpoint", tmp_path / "run" / "model.pt", "--log", tmp_path / "run" / "losses.csv", *extra)


# ---- params.yaml: each mistake names the key and the allowed values --------------------------------------

PARAMS_CASES = {
    "unknown key": (lambda p: p["train"].update(stpes=3), ["params.train.stpes", "did you mean 'steps'"]),
    "wrong type": (lambda p: p["train"].update(steps="many"), ["params.train.steps", "expected an integer"]),
    "unknown objective": (lambda p: p["methods"]["mse"].update(objective="pixl"),
                          ["params.methods.mse.objective", "pixel", "gan"]),
    "unknown constraint": (lambda p: p["methods"]["mse"].update(constraint="hard"),
                           ["params.methods.mse.constraint", "projected, projected_box, soft, none"]),
    "unknown guide": (lambda p: p["methods"]["mse"].update(guide="dea"), ["params.methods.mse.guide", "affgan"]),
    "unknown source": (lambda p: p["datasets"]["grass"].update(source="grass"),
                       ["params.datasets.grass.source", "skimage_grass"]),
    "hr not divisible": (lambda p: p["datasets"]["grass"].update(hr_size=18),
                         ["params.datasets.grass.hr_size", "18", "scale 4"]),
    "negative steps": (lambda p: p["train"].update(steps=-5), ["params.train.steps", "≥ 0", "-5"]),
    "negative steps of one method": (lambda p: p["methods"]["mse"].update(train={"steps": -1}),
                                     ["params.methods.mse.train.steps", "≥ 0"]),
    "unknown study": (lambda p: p.update(study="full"), ["params.study", "demo, paper"]),
    "unknown rule in resources": (lambda p: p.update(resources={"trainn": {"gpu": 1}}),
                                  ["params.resources.trainn", "train"]),
    "c2st without steps": (lambda p: p["evaluate"].update(c2st_steps=0), ["params.evaluate.c2st_steps", "≥ 1"]),
    # values that once passed `snakemake -n` and crashed (or silently trained) later (issue 13)
    "negative lr": (lambda p: p["train"].update(lr=-1), ["params.train.lr", "> 0", "-1"]),
    "zero lr": (lambda p: p["train"].update(lr=0), ["params.train.lr", "> 0"]),
    "beta1 above 1": (lambda p: p["train"].update(beta1=1.5), ["params.train.beta1", "[0, 1)", "1.5"]),
    "beta2 of 1": (lambda p: p["train"].update(beta2=1.0), ["params.train.beta2", "[0, 1)"]),
    "generator without width": (lambda p: p["generator"].update(width=0), ["params.generator.width", "≥ 1"]),
    "negative blocks": (lambda p: p["generator"].update(blocks=-1), ["params.generator.blocks", "≥ 0"]),
    "no discriminator steps": (lambda p: p["methods"]["affgan"]["options"].update(d_steps=0),
                               ["params.methods.affgan.options.d_steps", "≥ 1"]),
    "negative instance noise": (lambda p: p["methods"]["affgan"]["options"].update(instance_noise=-0.1),
                                ["params.methods.affgan.options.instance_noise", "≥ 0"]),
    "unknown pixel loss": (lambda p: p["methods"]["mse"]["options"].update(loss="l3"),
                           ["params.methods.mse.options.loss", "'l3'", "l1, l2"]),
    "negative soft weight": (lambda p: p["methods"]["mse"].update(consistency_weight=-10),
                             ["params.methods.mse.consistency_weight", "≥ 0"]),
    "bad lr of one method": (lambda p: p["methods"]["mse"].update(train={"beta1": 2}),
                             ["params.methods.mse.train.beta1", "[0, 1)"]),
}


@pytest.mark.parametrize("case", list(PARAMS_CASES))
def test_params_mistake(case, tmp_path, tiny_params, capsys):
    change, fragments = PARAMS_CASES[case]
    change(tiny_params)
    code, err = _cli(capsys, "prepare", "--params", _params(tmp_path, tiny_params), "--dataset", "grass",
                     "--out", tmp_path / "data")
    _one_line(code, err, *fragments)
    assert not (tmp_path / "data").exists()


def test_c2st_steps_below_one_on_the_command_line(tmp_path, tiny_data, capsys):
    code, err = _cli(capsys, "evaluate", "--data", tiny_data, "--method", "bicubic", "--out", tmp_path / "m.csv",
                     "--c2st-steps", "0")
    _one_line(code, err, "--c2st-steps", "≥ 1")
    assert not (tmp_path / "m.csv").exists()


def test_unknown_dataset_and_method_names(tmp_path, tiny_params, tiny_data, capsys):
    params = _params(tmp_path, tiny_params)
    code, err = _cli(capsys, "prepare", "--params", params, "--dataset", "celeb", "--out", tmp_path / "d")
    _one_line(code, err, "'celeb'", "grass")
    code, err = _cli(capsys, *_train(tmp_path, params, tiny_data, "affgann"))
    _one_line(code, err, "'affgann'", "mse", "affgan")


# ---- data files --------------------------------------------------------------------------------------------


def test_empty_data_folder(tmp_path, tiny_params, capsys):
    (tmp_path / "data").mkdir()
    code, err = _cli(capsys, *_train(tmp_path, _params(tmp_path, tiny_params), tmp_path / "data"))
    _one_line(code, err, str(tmp_path / "data" / "manifest.json"), "affsr prepare")
    assert not (tmp_path / "run" / "model.pt").exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_dataset_file(tmp_path, tiny_params, tiny_data, capsys, damage):
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    blob = (data / "train.npz").read_bytes()
    (data / "train.npz").write_bytes(blob[: len(blob) // 2] if damage == "truncated" else b"\x00" * 100)
    code, err = _cli(capsys, *_train(tmp_path, _params(tmp_path, tiny_params), data))
    _one_line(code, err, str(data / "train.npz"), "corrupt")


def test_corrupt_image_file_in_a_collection(tmp_path, tiny_params, capsys):
    """A truncated JPEG in an ImageNet-style folder: the message names the file."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "imagenet"
    (root / "n00000001").mkdir(parents=True)
    for k in range(6):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
            root / "n00000001" / f"n00000001_{k}.JPEG", quality=95)
    bad = root / "n00000001" / "n00000001_3.JPEG"
    bad.write_bytes(bad.read_bytes()[:600])
    tiny_params["datasets"]["grass"] = {"source": "imagenet", "path": str(root), "hr_size": 32,
                                        "n_train": 10, "n_val": 1, "n_test": 1}
    code, err = _cli(capsys, "prepare", "--quiet", "--params", _params(tmp_path, tiny_params),
                     "--dataset", "grass", "--out", tmp_path / "data")
    _one_line(code, err, "n00000001_3.JPEG", "corrupt or truncated")
    assert not (tmp_path / "data" / "manifest.json").exists()


# ---- checkpoints ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grey_checkpoint(tmp_path_factory, tiny_data) -> Path:
    """A checkpoint of a 2-step mse run on the grey tiny data."""
    from conftest import tiny_params_dict

    root = tmp_path_factory.mktemp("ckpt")
    params = tiny_params_dict()
    params["train"]["steps"] = 2
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    assert main([str(a) for a in _train(root, path, tiny_data)]) == 0
    return root / "run" / "model.pt"


def test_checkpoint_of_grey_run_on_colour_data(tmp_path, grey_checkpoint, capsys):
    from affsr.data.prepare import prepare
    from affsr.operators.downsampling import Downsampling

    colour = tmp_path / "natural"
    prepare("skimage_photos", colour, 16, Downsampling.gaussian(1.0, 9, 4), 4, 2, 2, seed=0)
    code, err = _cli(capsys, "evaluate", "--data", colour, "--method", "mse", "--checkpoint", grey_checkpoint,
                     "--out", tmp_path / "m.csv")
    _one_line(code, err, str(grey_checkpoint), "1-channel", "3-channel")
    assert not (tmp_path / "m.csv").exists()


def test_checkpoint_of_another_operator(tmp_path, grey_checkpoint, capsys):
    from affsr.data.prepare import prepare
    from conftest import operator_of

    box = tmp_path / "box"
    prepare("skimage_grass", box, 16, operator_of("box", scale=4), 4, 2, 2, seed=0)
    code, err = _cli(capsys, "evaluate", "--data", box, "--method", "mse", "--checkpoint", grey_checkpoint,
                     "--out", tmp_path / "m.csv")
    _one_line(code, err, str(grey_checkpoint), "box", "gaussian")


def test_garbage_checkpoint(tmp_path, tiny_data, capsys):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a checkpoint" * 10)
    code, err = _cli(capsys, "evaluate", "--data", tiny_data, "--method", "mse", "--checkpoint", bad,
                     "--out", tmp_path / "m.csv")
    _one_line(code, err, str(bad), "not a readable affsr checkpoint")


def test_guide_checkpoint_of_the_wrong_kind(tmp_path, tiny_params, tiny_data, grey_checkpoint, capsys):
    tiny_params["methods"]["dae"] = {"objective": "dae"}
    tiny_params["methods"]["affdg"] = {"objective": "denoiser_guided", "guide": "dae"}
    code, err = _cli(capsys, *_train(tmp_path, _params(tmp_path, tiny_params), tiny_data, "affdg",
                                     "--guide", grey_checkpoint))
    _one_line(code, err, "dae", "pixel")


# ---- non-finite losses ------------------------------------------------------------------------------------------


def test_nan_in_the_data_stops_training_naming_the_step(tmp_path, tiny_params, tiny_data, capsys):
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    with np.load(data / "train.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["lr"][:] = np.nan
    np.savez(data / "train.npz", **arrays)
    tiny_params["train"].update(steps=20, log_every=4)
    code, err = _cli(capsys, *_train(tmp_path, _params(tmp_path, tiny_params), data))
    _one_line(code, err, "grass/mse", "loss_pixel became nan by step 4", "no state was saved yet", exit_code=1)
    assert not (tmp_path / "run" / "model.pt").exists()


# ---- command-line mistakes with images, outputs and method names (issue 13) ----------------------------------


def _png(path: Path, height: int, width: int) -> Path:
    from PIL import Image

    Image.fromarray(np.full((height, width), 128, np.uint8)).save(path)
    return path


def test_a_text_file_given_as_an_image(tmp_path, grey_checkpoint, capsys):
    text = tmp_path / "notes.png"
    text.write_text("not an image\n")
    code, err = _cli(capsys, "upscale", text, tmp_path / "sr.png", "--checkpoint", grey_checkpoint)
    _one_line(code, err, str(text), "not an image file")
    assert not (tmp_path / "sr.png").exists()


@pytest.mark.parametrize("verb, size", [("upscale", (2, 2)), ("downsample", (8, 8))])
def test_an_image_smaller_than_the_kernel(tmp_path, grey_checkpoint, capsys, verb, size):
    image = _png(tmp_path / "small.png", *size)
    extra = ["--checkpoint", grey_checkpoint]
    code, err = _cli(capsys, verb, image, tmp_path / "out.png", *extra)
    _one_line(code, err, str(image), "smaller than the 9x9 kernel")
    assert not (tmp_path / "out.png").exists()


def test_an_output_path_that_is_a_folder(tmp_path, grey_checkpoint, capsys):
    image = _png(tmp_path / "photo.png", 32, 32)
    folder = tmp_path / "out"
    folder.mkdir()
    code, err = _cli(capsys, "downsample", image, folder, "--checkpoint", grey_checkpoint)
    _one_line(code, err, str(folder), "is a folder")
    assert list(folder.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["out", "photo.png"]


@pytest.mark.parametrize("method, fragment", [("bicubc", "did you mean 'bicubic'"),
                                              ("affgan", "needs --checkpoint runs/DATASET/affgan/model.pt")])
def test_evaluate_method_without_checkpoint(tmp_path, tiny_data, capsys, method, fragment):
    code, err = _cli(capsys, "evaluate", "--data", tiny_data, "--method", method, "--out", tmp_path / "m.csv")
    _one_line(code, err, f"--method '{method}'", fragment)
    assert not (tmp_path / "m.csv").exists()


def test_prepare_input_for_a_source_that_reads_none_or_a_missing_file(tmp_path, tiny_params, capsys):
    """`prepare --input` once silently built the embedded set: an --input the source does not read, or one
    that does not exist, is now one line."""
    params = _params(tmp_path, tiny_params)
    code, err = _cli(capsys, "prepare", "--params", params, "--dataset", "grass", "--out", tmp_path / "d",
                     "--input", tmp_path / "img_align_celeba.zip")
    _one_line(code, err, "--input", "'skimage_grass'", "reads no downloaded file", "study: paper")
    tiny_params["datasets"]["grass"] = {"source": "celeba", "hr_size": 16, "crop": [60, 25, 128],
                                        "download": {"urls": ["http://x/y.zip"], "filename": "y.zip"}}
    code, err = _cli(capsys, "prepare", "--params", _params(tmp_path, tiny_params), "--dataset", "grass",
                     "--out", tmp_path / "d", "--input", tmp_path / "missing.zip")
    _one_line(code, err, str(tmp_path / "missing.zip"), "file not found")
    assert not (tmp_path / "d").exists()


def test_download_of_an_embedded_data_set_points_to_the_paper_study(tmp_path, tiny_params, capsys):
    code, err = _cli(capsys, "download", "--params", _params(tmp_path, tiny_params), "--dataset", "grass",
                     "--out", tmp_path / "x.zip")
    _one_line(code, err, "params.datasets.grass.download.urls", "nothing to download", "study: paper")
    assert not (tmp_path / "x.zip").exists()


# ---- names checked against the manifest and the checkpoint they claim to describe -------------------------


def test_train_on_the_data_of_another_data_set(tmp_path, tiny_params, tiny_data, capsys):
    """`train --dataset faces --data data/grass` once trained "faces/mse" on grass."""
    tiny_params["datasets"]["faces"] = dict(tiny_params["datasets"]["grass"])
    params = _params(tmp_path, tiny_params)
    argv = [a if a != "grass" else "faces" for a in _train(tmp_path, params, tiny_data)]
    code, err = _cli(capsys, *argv)
    _one_line(code, err, str(tiny_data), "holds data set 'grass'", "for data set 'faces'")
    assert not (tmp_path / "run").exists()


def test_evaluate_a_checkpoint_under_another_method_name(tmp_path, tiny_data, grey_checkpoint, capsys):
    """`evaluate --method affgann --checkpoint .../mse/model.pt` once wrote rows labelled affgann."""
    code, err = _cli(capsys, "evaluate", "--data", tiny_data, "--method", "mse_typo", "--checkpoint",
                     grey_checkpoint, "--out", tmp_path / "m.csv")
    _one_line(code, err, str(grey_checkpoint), "is a 'mse' run, not 'mse_typo'", "--method mse")
    assert not (tmp_path / "m.csv").exists()


def test_evaluate_a_checkpoint_on_another_data_set(tmp_path, tiny_data, grey_checkpoint, capsys):
    from affsr.data.prepare import prepare
    from affsr.operators.downsampling import Downsampling

    other = tmp_path / "gravel"
    prepare("skimage_grass", other, 16, Downsampling.gaussian(1.0, 9, 4), 4, 2, 2, seed=0, dataset="gravel")
    code, err = _cli(capsys, "evaluate", "--data", other, "--method", "mse", "--checkpoint", grey_checkpoint,
                     "--out", tmp_path / "m.csv")
    _one_line(code, err, str(grey_checkpoint), "holds data set 'gravel'", "the checkpoint is for data set 'grass'")


def test_guide_trained_on_images_of_other_channels(tmp_path, tiny_params, tiny_data, capsys):
    """A colour denoiser guiding a grey run once failed inside load_state_dict (size mismatch)."""
    from affsr.data.prepare import prepare
    from affsr.operators.downsampling import Downsampling

    colour = tmp_path / "natural"
    prepare("skimage_photos", colour, 16, Downsampling.gaussian(1.0, 9, 4), 4, 2, 2, seed=0, dataset="natural")
    tiny_params["datasets"]["natural"] = dict(tiny_params["datasets"]["grass"], source="skimage_photos")
    tiny_params["methods"]["dae"] = {"objective": "dae", "train": {"steps": 2}}
    tiny_params["methods"]["affdg"] = {"objective": "denoiser_guided", "guide": "dae"}
    params = _params(tmp_path, tiny_params)
    guide = tmp_path / "dae" / "model.pt"
    assert main([str(a) for a in ("train", "--quiet", "--params", params, "--dataset", "natural", "--method", "dae",
                                  "--data", colour, "--checkpoint", guide, "--log", tmp_path / "dae.csv")]) == 0
    code, err = _cli(capsys, *_train(tmp_path, params, tiny_data, "affdg", "--guide", guide))
    _one_line(code, err, str(guide), "3-channel", "1 channels")


def test_resume_after_the_guide_was_retrained(tmp_path, tiny_params, tiny_data, capsys):
    """A resume state made against one guide is not continued against another (it would mix two runs)."""
    import torch

    from affsr.training import checkpoint
    from affsr.config.study import RunSettings
    from affsr.params import load_params, resolve
    from affsr.training.run import train

    tiny_params["methods"]["dae"] = {"objective": "dae", "train": {"steps": 2}}
    tiny_params["methods"]["affdg"] = {"objective": "denoiser_guided", "guide": "dae", "train": {"steps": 4}}
    params = _params(tmp_path, tiny_params)
    guide = tmp_path / "dae" / "model.pt"
    dae = ("train", "--quiet", "--params", params, "--dataset", "grass", "--method", "dae", "--data", tiny_data,
           "--checkpoint", guide, "--log", tmp_path / "dae.csv")
    assert main([str(a) for a in dae]) == 0
    resume = tmp_path / "run" / ".resume"
    settings = RunSettings.parse(resolve(load_params(params), "grass", "affdg"))
    train(settings, tiny_data, tmp_path / "run" / "model.pt", tmp_path / "run" / "losses.csv", resume,
          progress=False, guide_checkpoint=guide)
    state, stored = checkpoint.load(tmp_path / "run" / "model.pt")
    checkpoint.save(resume / "state.pt", {}, stored)  # stands in for a state saved before an interruption
    state, stored = checkpoint.load(guide)
    state["networks"]["denoiser"] = {k: v + 1 if torch.is_floating_point(v) else v
                                     for k, v in state["networks"]["denoiser"].items()}
    checkpoint.save(guide, state, stored)  # the guide was retrained
    code, err = _cli(capsys, *_train(tmp_path, params, tiny_data, "affdg", "--guide", guide))
    _one_line(code, err, "resume state was made with other settings", "data")


def test_downsample_with_an_operator_by_name(tmp_path, capsys):
    """`--operator` names the A of another tool; kind file without --kernel is one line."""
    image = _png(tmp_path / "in.png", 64, 64)
    code, err = _cli(capsys, "downsample", image, tmp_path / "lr.png", "--operator", "file")
    _one_line(code, err, "--operator.kernel_file", ".npy")
    assert main([str(a) for a in ("downsample", image, tmp_path / "lr.png", "--operator", "bicubic")]) == 0
    from PIL import Image

    assert Image.open(tmp_path / "lr.png").size == (16, 16)


def test_claims_tier_without_a_path(tmp_path, capsys):
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("dataset,method,metric,value\ngrass,mse,psnr,19.0\n")
    code, err = _cli(capsys, "claims", "--metrics", metrics, "--tier", "cpu", "--out", tmp_path / "claims.md")
    _one_line(code, err, "--tier 'cpu'", "NAME=METRICS.csv")
    assert not (tmp_path / "claims.md").exists()


def test_options_that_would_be_ignored_are_refused(tmp_path, grey_checkpoint, capsys):
    """--kernel without --operator file, and downsample's --scale where A comes from a run or params.yaml,
    used to be ignored silently: now one line each, and nothing written."""
    image = _png(tmp_path / "in.png", 64, 64)
    kernel = tmp_path / "k.npy"
    np.save(kernel, np.ones((3, 3)) / 9)
    for args, words in [
        (("upscale", image, tmp_path / "out.png", "--checkpoint", grey_checkpoint, "--kernel", kernel),
         ("upscale: --kernel applies only with --operator file", "no --operator")),
        (("downsample", image, tmp_path / "out.png", "--operator", "bicubic", "--kernel", kernel),
         ("downsample: --kernel", "--operator bicubic")),
        (("downsample", image, tmp_path / "out.png", "--checkpoint", grey_checkpoint, "--scale", "2"),
         ("--scale applies only with --operator", str(grey_checkpoint))),
        (("downsample", image, tmp_path / "out.png", "--scale", "2"), ("--scale", "params.yaml")),
    ]:
        code, err = _cli(capsys, *args)
        _one_line(code, err, *words)
        assert not (tmp_path / "out.png").exists()
    assert main([str(a) for a in ("downsample", image, tmp_path / "out.png", "--operator", "file",
                                   "--kernel", kernel, "--scale", "2")]) == 0


def test_an_image_above_the_size_limit_is_one_line_with_the_way_around(tmp_path, grey_checkpoint, capsys):
    """An image too large for memory, or one Pillow calls a decompression bomb, used to end in an allocation
    or DecompressionBombError traceback: now one line with the limit and --max-megapixels, nothing written."""
    import struct
    import zlib

    from PIL import Image

    big = _png(tmp_path / "big.png", 1, 1)  # its header then claims 400 Mpx, above Pillow's bomb limit too
    data = bytearray(big.read_bytes())
    data[16:24] = struct.pack(">II", 20000, 20000)  # IHDR width, height (after signature, length, type)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    big.write_bytes(bytes(data))
    with pytest.raises(Image.DecompressionBombError):  # what the user got before: a traceback from here
        Image.open(big)
    code, err = _cli(capsys, "upscale", big, tmp_path / "out.png", "--checkpoint", grey_checkpoint)
    _one_line(code, err, "20000×20000 upscales to 80000×80000", "limit of 67.2 Mpx", "--max-megapixels")
    code, err = _cli(capsys, "downsample", big, tmp_path / "out.png", "--operator", "bicubic")
    _one_line(code, err, "20000×20000 = 400.0 Mpx", "downsample's limit")
    mid = _png(tmp_path / "mid.png", 64, 64)  # 256² output: above a limit of 0.05 Mpx, below the default
    code, err = _cli(capsys, "upscale", mid, tmp_path / "out.png", "--checkpoint", grey_checkpoint,
                     "--max-megapixels", "0.05")
    _one_line(code, err, "64×64 upscales to 256×256 = 0.0655 Mpx", "limit of 0.05 Mpx")
    code, err = _cli(capsys, "upscale", mid, tmp_path / "out.png", "--checkpoint", grey_checkpoint,
                     "--max-megapixels", "-1")
    _one_line(code, err, "--max-megapixels must be a positive number")
    assert not (tmp_path / "out.png").exists()
    assert main([str(a) for a in ("upscale", mid, tmp_path / "out.png", "--checkpoint", grey_checkpoint)]) == 0
