"""The paper-scale smoke study's parts (the study itself runs in `make smoke`, not here): the stand-in
archives have the real layouts and are read by the real readers, the `smoke` study is `paper` shrunk
(same networks and shapes), the memory table reads benchmark files, and docs/studies.md's dry-run job count
is what Snakemake plans for `study: paper`."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from snakemake.utils import update_config

from affsr.data.archives import CELEBA_RANGES, celeba_collection, texture_images
from affsr.data.image_collections import imagenet_collection
from affsr.params import load_params

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import rule_memory  # noqa: E402
import smoke_study  # noqa: E402
import standins  # noqa: E402

_DATA = yaml.safe_load((REPO / "params.yaml").read_text())
SMOKE = load_params({**_DATA, "study": "smoke"}, {})
PAPER = load_params({**_DATA, "study": "paper"}, {})


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> standins.Standins:
    return standins.make_standins(tmp_path_factory.mktemp("standins"))


def test_celeba_standin_has_the_real_layout_and_every_split(made):
    with zipfile.ZipFile(made.celeba_zip) as archive:
        names = archive.namelist()
        first = Image.open(archive.open(names[1]))
    assert names[0] == "img_align_celeba/" and all(re.fullmatch(r"img_align_celeba/\d{6}\.jpg", n) for n in names[1:])
    assert first.format == "JPEG" and first.size == (178, 218) and first.mode == "RGB"
    collection = celeba_collection(made.celeba_zip, {})
    counts = {s: len(collection.splits[s]) for s in CELEBA_RANGES}
    assert counts == {"train": SMOKE.datasets["faces"].n_train, "val": SMOKE.datasets["faces"].n_val,
                      "test": SMOKE.datasets["faces"].n_test}
    numbers = {n for ns in made.celeba_numbers.values() for n in ns}
    assert {lo for lo, _ in CELEBA_RANGES.values()} | {hi for _, hi in CELEBA_RANGES.values()} <= numbers
    assert np.ptp(collection.read(collection.splits["test"][0])) > 0.5  # textured, not flat


def test_kylberg_standin_matches_the_paper_members_pattern(made):
    pattern = PAPER.datasets["grass"].members
    with zipfile.ZipFile(made.kylberg_zip) as archive:
        names = archive.namelist()
    assert all(re.fullmatch(r"grass1-[a-d]-p\d{3}\.png", n) for n in names) and "grass1-a-p001.png" in names
    images = texture_images(made.kylberg_zip, pattern, colour=False)
    assert len(images) == len(names) and all(img.shape == (576, 576) for img in images)
    assert all(img.std() > 0.05 for img in images)


def test_imagenet_standin_has_small_files_that_the_filter_drops(made):
    files = made.imagenet_files
    assert all(re.fullmatch(r"(n\d{8})/\1_\d+\.JPEG", rel) for rel in files)
    small = [rel for rel, size in files.items() if size < standins.SMALL_BYTES]
    assert 0 < len(small) < len(files)
    natural = SMOKE.datasets["natural"]
    assert natural.min_files <= len(files) and natural.min_bytes == PAPER.datasets["natural"].min_bytes
    counts = {"train": natural.n_train, "val": natural.n_val, "test": natural.n_test}
    collection = imagenet_collection(made.imagenet, natural.min_bytes, natural.min_files, counts, seed=0)
    used = {n for names in collection.splits.values() for n in names}
    assert used and not any(Path(n).as_posix().endswith(tuple(small)) for n in used)
    assert {s: len(v) for s, v in collection.splits.items()} == counts


def test_the_standins_are_deterministic(made, tmp_path):
    again = standins.make_standins(tmp_path)
    assert again.celeba_zip.read_bytes() == made.celeba_zip.read_bytes()
    assert again.kylberg_zip.read_bytes() == made.kylberg_zip.read_bytes()


def test_smoke_is_paper_with_few_images_and_steps():
    """The same networks, image shapes, sources and operator as `study: paper`; only counts and steps
    shrink, and the outputs go to their own folder."""
    for section in ("generator", "discriminator", "denoiser", "density", "operator"):
        assert getattr(SMOKE, section) == getattr(PAPER, section), section
    for name, ds in PAPER.datasets.items():
        small = SMOKE.datasets[name]
        assert (small.source, small.hr_size, small.crop, small.members) == (ds.source, ds.hr_size, ds.crop, ds.members)
        assert small.n_train < ds.n_train
    assert set(SMOKE.methods) == set(PAPER.methods) and SMOKE.train.steps < 10
    assert SMOKE.workdir == "studies/smoke" and PAPER.workdir == ""


def test_the_run_override_pins_the_served_archives(made):
    config = smoke_study.override("http://127.0.0.1:9", made)
    grass = config["smoke"]["datasets"]["grass"]["download"]
    assert grass["urls"] == ["http://127.0.0.1:9/grass1-without-rotations.zip"]
    assert grass["size"] == made.kylberg_zip.stat().st_size and len(grass["sha256"]) == 64
    data = copy.deepcopy(_DATA)
    update_config(data, config)  # what Snakemake does with a --configfile
    merged = load_params(data, {})
    assert merged.study == "smoke" and merged.datasets["faces"].download.urls[0].endswith("img_align_celeba.zip")
    assert merged.datasets["natural"].path == str(made.imagenet.resolve())


def test_memory_table_extrapolates_benchmark_files(tmp_path):
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for rel, rss in {"train/natural/affinit": 400, "train/natural/mse": 600, "prepare/natural": 300,
                     "evaluate/natural/mse": 500, "download/faces/img_align_celeba.zip": 80}.items():
        path = tmp_path / f"{rel}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + f"1.0\t0:00:01\t{rss}\t0\t0\t0\t0\t0\t0\t1.0\n")
    bench = rule_memory.read_benchmarks(tmp_path)
    assert bench["train"] == {"natural/affinit": 400.0, "natural/mse": 600.0}
    est = rule_memory.extrapolate(bench, SMOKE, PAPER, demo_toy=None)
    batch = PAPER.train.batch_size / SMOKE.train.batch_size
    train_data = 1.25 * (PAPER.datasets["natural"].n_train - SMOKE.datasets["natural"].n_train) * 3 * 128**2 / 1e6
    job, peak, host, gpu = est["train"]
    assert (job, peak) == ("natural/mse", 600) and host == pytest.approx(400 + train_data)
    assert gpu == pytest.approx(200 * batch)
    assert est["download"][1:] == (80, 80, 0.0)
    table = rule_memory.memory_table(tmp_path, REPO / "params.yaml", demo_benchmarks=tmp_path)
    assert table.count("\n") == 2 + 3 and "| train | 2 |" in table


def _readme_job_counts() -> dict[str, int]:
    text = (REPO / "docs" / "studies.md").read_text()
    pattern = (r"plans \*\*(\d+) jobs\*\*: (\d+) downloads, (\d+) data sets prepared, (\d+) trainings, "
               r"(\d+) evaluations").replace(" ", r"\s+")  # the sentence may wrap anywhere
    found = re.search(pattern, text)
    assert found, "docs/studies.md (Paper scale) should say: plans **N jobs**: n downloads, n data sets prepared, ..."
    return dict(zip(("total", "download", "prepare", "train", "evaluate"), map(int, found.groups())))


def test_readme_paper_job_count_is_what_snakemake_plans(tmp_path: Path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    bin_dir = Path(sys.executable).parent
    result = subprocess.run([str(bin_dir / "snakemake"), "--snakefile", str(REPO / "workflow" / "Snakefile"),
                             "--directory", str(tmp_path), "-n", "--quiet", "rules", "--config", "study=paper"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    planned = {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", result.stdout + result.stderr, re.MULTILINE)}
    assert {k: planned[k] for k in _readme_job_counts()} == _readme_job_counts()


def test_the_output_check_names_what_is_missing(tmp_path):
    problems = smoke_study.check_outputs(tmp_path, SMOKE)
    assert any(p.endswith("results/report.html") for p in problems)
    assert any("img_align_celeba.zip.log: no download recorded" in p for p in problems)
    assert len([p for p in problems if p.endswith("manifest.json")]) == len(SMOKE.datasets)
