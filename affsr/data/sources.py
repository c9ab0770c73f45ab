"""Where a data set's images come from: the registry of image sources.

Two layouts, as in the paper:

* **patches** — a few large images (textures, photographs); :func:`affsr.data.prepare` cuts random HR
  patches from disjoint row bands of every image (grass: "random patches extracted from high-resolution
  images of grass texture").
* **images** — a collection with one HR image per file, already split by image (CelebA's official
  partition, ImageNet's random re-split); each image is cropped and resized to the HR size.

Embedded sources ship inside scikit-image (no network: the CPU default); external ones read a file the
workflow downloaded (``input: download``) or a folder the user points to (``input: path``). To add a
source, add one entry to :data:`SOURCES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from affsr.config.data import DatasetConfig
from affsr.errors import ConfigError, DataError

__all__ = ["Source", "SourceSpec", "SOURCES", "source", "FACE_FRACTIONS"]

#: The embedded faces are split by image, 75 / 12.5 / 12.5 % (the fractions of the patch sources' bands).
FACE_FRACTIONS: dict[str, float] = {"train": 0.75, "val": 0.125, "test": 0.125}


@dataclass(frozen=True)
class SourceSpec:
    """What an external source reads, from the data set's params.

    path: the downloaded archive (``input: download``) or the user's folder (``input: path``).
    members: fnmatch pattern of the archive members to use (texture archives).
    min_bytes: drop image files smaller than this (ImageNet: 20 kB, the paper's filter).
    min_files: expect at least this many image files under ``path`` (ImageNet: a complete download).
    counts: images per split (``images`` layout): caps, or the exact val/test sizes of a random re-split.
    """

    path: Path | None = None
    members: str = "*"
    min_bytes: int = 0
    min_files: int = 0
    counts: dict | None = None


@dataclass(frozen=True)
class Source:
    """One image source. ``load(spec, seed)`` returns a list of images (patches layout: float arrays in
    [0, 1], (H, W) grey or (H, W, 3) colour) or an :class:`affsr.data.image_collections.ImageCollection` (images layout).
    """

    layout: str  # "patches" | "images"
    input: str  # "embedded" | "download" | "path"
    colour: bool
    description: str
    load: Callable[[SourceSpec, int], object]


def _unit_float(img: np.ndarray) -> np.ndarray:
    """uint8 image → float64 in [0, 1] (values k/255, so ``round(255·y)`` recovers the bytes exactly)."""
    return np.asarray(img, dtype=np.float64) / 255.0


def _skimage(*names: str) -> Callable[[SourceSpec, int], list[np.ndarray]]:
    """Images of ``skimage.data``, loaded lazily (import and decode only when asked)."""

    def load(spec: SourceSpec, seed: int) -> list[np.ndarray]:
        import skimage.data

        return [_unit_float(getattr(skimage.data, name)()) for name in names]

    return load


def _lfw_faces(spec: SourceSpec, seed: int):
    """The 100 faces of scikit-image's LFW subset (25×25 grey; its other 100 images are not faces),
    split by image so no person's photo is in two splits' sets of files."""
    import skimage.data

    from affsr.data.image_collections import ArrayImages
    from affsr.data.splits import fraction_split

    faces = [np.clip(face, 0.0, 1.0) for face in skimage.data.lfw_subset()[:100]]
    names = [str(i) for i in range(len(faces))]
    return ArrayImages(faces, fraction_split(names, FACE_FRACTIONS, seed))


def _texture_archive(spec: SourceSpec, seed: int) -> list[np.ndarray]:
    from affsr.data.archives import texture_images

    return texture_images(_need_path(spec), spec.members, colour=False)


def _celeba(spec: SourceSpec, seed: int):
    from affsr.data.archives import celeba_collection

    return celeba_collection(_need_path(spec), dict(spec.counts or {}))


def _imagenet(spec: SourceSpec, seed: int):
    from affsr.data.image_collections import imagenet_collection

    return imagenet_collection(_need_path(spec), spec.min_bytes, spec.min_files, dict(spec.counts or {}), seed)


def _need_path(spec: SourceSpec) -> Path:
    if spec.path is None:
        raise DataError("this data source reads a downloaded file or a local folder, but no path was given")
    return Path(spec.path)


#: name → Source. Embedded sources need nothing outside installed packages.
SOURCES: dict[str, Source] = {
    "skimage_grass": Source("patches", "embedded", False, "skimage.data.grass(): 512×512 grey grass",
                            _skimage("grass")),
    "skimage_gravel": Source("patches", "embedded", False, "skimage.data.gravel(): 512×512 grey texture",
                             _skimage("gravel")),
    "skimage_brick": Source("patches", "embedded", False, "skimage.data.brick(): 512×512 grey texture",
                            _skimage("brick")),
    "skimage_astronaut": Source("patches", "embedded", True, "skimage.data.astronaut(): 512×512 RGB photo",
                                _skimage("astronaut")),
    "skimage_photos": Source(
        "patches", "embedded", True,
        "four RGB photographs of scikit-image (astronaut 512×512, chelsea 300×451, coffee 400×600, "
        "rocket 427×640)", _skimage("astronaut", "chelsea", "coffee", "rocket")),
    "skimage_faces": Source("images", "embedded", False,
                            "the 100 faces of skimage.data.lfw_subset(), 25×25 grey", _lfw_faces),
    "kylberg_grass": Source("patches", "download", False,
                            "grass1 of the Kylberg Texture Dataset v1.0 (576×576 grey PNG samples)",
                            _texture_archive),
    "celeba": Source("images", "download", True,
                     "CelebA aligned & cropped (img_align_celeba.zip, 202,599 JPEGs 178×218)", _celeba),
    "imagenet": Source("images", "path", True,
                       "ILSVRC-2012 training images, extracted into class folders", _imagenet),
}


def source(name: str) -> Source:
    """The registered source ``name``; DataError listing the known names otherwise."""
    if name not in SOURCES:
        raise DataError(f"unknown data source {name!r}; known sources: {', '.join(sorted(SOURCES))}")
    return SOURCES[name]


def spec_for(dataset: str, ds: DatasetConfig, input_file: Path | None) -> SourceSpec:
    """What ``affsr prepare`` reads for data set ``dataset``: the downloaded file ``input_file`` (for a
    downloaded source, and only then), the folder of a local source, or nothing (embedded data)."""
    kind = source(ds.source).input
    if kind == "download" and not input_file:
        raise ConfigError(f"source '{ds.source}' reads a downloaded file: pass --input PATH (the workflow's "
                          f"download rule writes data/downloads/{dataset}/{ds.download.filename})")
    if input_file and kind != "download":
        raise ConfigError(f"--input {input_file}: source '{ds.source}' of data set '{dataset}' reads no "
                          "downloaded file (is `study: paper` meant? `--config study=paper` or --params)")
    if input_file and not Path(input_file).is_file():
        raise DataError(f"--input {input_file}: file not found")
    path = Path(input_file) if input_file else (Path(ds.path) if kind == "path" else None)
    return SourceSpec(path=path, members=ds.members, min_bytes=ds.min_bytes, min_files=ds.min_files)
