"""The settings of the data side — the degradation A, where a data set's file comes from, and how its
images are made — as frozen dataclasses that check their own ranges."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from affsr.config.parse import check_one_of as _one_of
from affsr.config.parse import check_ranges as _check

#: The data splits every prepared data set has (affsr prepare writes one .npz each).
SPLITS: tuple[str, ...] = ("train", "val", "test")


#: The splits a run may train on: the test split is never trained on.
TRAINING_SPLITS = SPLITS[:2]


@dataclass(frozen=True)
class OperatorConfig:
    """The degradation A (paper: 9×9 Gaussian, stride 4; σ not stated: 1 HR pixel). ``kind`` names a row
    of :data:`affsr.operators.kinds.KINDS`, which also checks the settings that kind needs (when
    params.yaml is loaded, and whenever A is built)."""

    kind: str = "gaussian"
    sigma: float = 1.0
    size: int = 9
    scale: int = 4
    sigma_x: float = 0.0  # gaussian, anisotropic: std along `angle` (0 = sigma) …
    sigma_y: float = 0.0  # … and across it (0 = sigma)
    angle: float = 0.0  # gaussian and motion: degrees, counter-clockwise as displayed, 0 = along the rows
    length: float = 0.0  # motion: > 0
    kernel_file: str = ""  # file: a 2-D .npy kernel (normalised on load)
    origin: tuple[int, ...] = ()  # file: the tap on HR pixel s·i; [] = centre tap, [o] or [oy, ox]
    boundary: str = "circular"  # circular (periodic, exact FFT A⁺) or reflect (symmetric edges, CG A⁺)

    def recorded(self) -> dict:
        """These settings as runs, data and checkpoints record them: kind, sigma, size and scale always,
        any other key only where it differs from its default — so the paper's Gaussian resolves (and a
        finished study reruns) exactly as before other operator kinds existed."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        return {k: v for k, v in dataclasses.asdict(self).items()
                if k in ("kind", "sigma", "size", "scale") or v != defaults[k]}

    def __post_init__(self) -> None:
        _one_of(self.boundary, "boundary", ("circular", "reflect"))
        _check(self, positive=("sigma",), at_least_one=("size", "scale"),
               non_negative=("sigma_x", "sigma_y", "length"), counts=("size", "scale", "origin"))
        if len(self.origin) > 2 or min(self.origin, default=0) < 0:
            raise ValueError(f"origin: must be [], [o] or [oy, ox] ≥ 0, got {self.origin!r}")


@dataclass(frozen=True)
class DownloadConfig:
    """Where an external source's file comes from, and what it must be.

    ``urls``: mirrors, tried in order (``affsr.data.download``): ``http(s)://``, ``file://`` (an archive you
    already have) or ``gdrive:<file id>`` (Google Drive, with its confirm step for large files). A list,
    because single links of these data sets break: Drive's daily quota, moved university pages.
    ``sha256`` (and ``md5`` if given) is checked after the download; an empty sha256 is accepted once and
    its digest printed, to be pinned here. ``size``: bytes, 0 = not checked; when pinned, a mirror that
    announces another size is skipped before its body is downloaded."""

    urls: tuple[str, ...] = ()
    sha256: str = ""
    md5: str = ""
    filename: str = ""
    size: int = 0

    @staticmethod
    def url_problem(url: str) -> str:
        """What is wrong with one mirror address ("" if nothing): the forms the downloader can fetch."""
        if re.fullmatch(r"(?i:https?|file)://\S+|gdrive:[A-Za-z0-9_-]{10,}", url):
            return ""
        return f"{url!r} is not an http://, https:// or file:// url, nor gdrive:<Google Drive file id>"

    def __post_init__(self) -> None:
        for i, url in enumerate(self.urls):
            if problem := self.url_problem(url):
                raise ValueError(f"urls[{i}]: {problem}")
        _check(self, non_negative=("size",))


@dataclass(frozen=True)
class DatasetConfig:
    """One data set: an image source (``affsr.data.sources``) made into HR images of ``hr_size``.

    ``n_train/n_val/n_test``: patch counts (patch sources) or most images per split (image collections).
    ``crop``: image collections only, the box cut before resizing to hr_size: [] = largest centred
    square, [size] = centred square, [top, left, size]. ``download``: the file of a downloaded source.
    ``path``: the folder of a local source (ImageNet). ``members``: archive members to use (textures).
    ``min_bytes`` / ``min_files``: ImageNet's file-size filter and expected image count.
    ``steps_scale``: multiplies every run's steps on this data set (the CPU budget; 1 at paper scale).
    ``mirror_train``: add the left-right mirror image of every training image (LR made from the mirrored
    HR by A, so pairs stay exact): twice the training images where a set is tiny (the 74 demo faces).
    """

    source: str
    hr_size: int = 32
    n_train: int = 2048
    n_val: int = 128
    n_test: int = 128
    crop: tuple[int, ...] = ()
    download: DownloadConfig = DownloadConfig()
    path: str = ""
    members: str = "*"
    min_bytes: int = 0
    min_files: int = 0
    steps_scale: float = 1.0
    mirror_train: bool = False

    def __post_init__(self) -> None:
        _check(self, at_least_one=("hr_size", "n_train", "n_val", "n_test"), positive=("steps_scale",),
               non_negative=("min_bytes", "min_files"), counts=("hr_size", "n_train", "n_val", "n_test", "min_files",
                                                                 "crop"))
        if len(self.crop) not in (0, 1, 3) or any(v < 0 for v in self.crop):
            raise ValueError(f"crop: {list(self.crop)} must be [], [size] or [top, left, size] (≥ 0)")
