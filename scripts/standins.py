"""Stand-ins for the paper's three data sets, with the real layouts, made offline and deterministically.

Why this exists: `study: paper` reads a CelebA zip, a Kylberg texture zip and an ImageNet folder that
this project cannot download in CI. The smoke study (scripts/smoke_study.py) runs the paper-scale
workflow on these instead, so every paper-scale code path — the download rule, CelebA's partition by file
number, the texture member pattern, ImageNet's layout and 20 kB filter — runs on files shaped like the
real ones:

* ``img_align_celeba.zip``: ``img_align_celeba/NNNNNN.jpg``, 178×218 RGB JPEG (plus the folder entry the
  real zip has); file numbers picked from each range of the official partition (train ≤ 162770,
  val ≤ 182637, test above), the range ends included;
* ``grass1-without-rotations.zip``: Kylberg's member names ``grass1-<a..d>-p<NNN>.png``, 576×576 grey PNG;
* an ImageNet folder ``n<wnid>/n<wnid>_<n>.JPEG`` (RGB, assorted sizes), a few files under 20 kB (the
  paper's ``min_bytes`` filter drops them) and the rest above.

Images are smooth random fields (1/f-like noise) with gradients and shapes: textured enough that training,
PSNR, c2st and the density models see something, not constant or white noise. Every byte depends only on
``seed`` (fixed zip timestamps, fixed PIL settings), so the archives' digests are stable on one install.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["Standins", "make_standins", "celeba_numbers", "CELEBA_SPLIT_ENDS", "KYLBERG_SIZE",
           "CELEBA_SIZE", "SMALL_BYTES"]

#: Last file number of CelebA's train and val splits (affsr.data.archives.CELEBA_RANGES); test runs to 202599.
CELEBA_SPLIT_ENDS = {"train": (1, 162770), "val": (162771, 182637), "test": (182638, 202599)}
CELEBA_SIZE = (178, 218)  # width, height of img_align_celeba
KYLBERG_SIZE = 576  # Kylberg v1.0 samples: 576×576 grey
SMALL_BYTES = 20_000  # the paper's ImageNet filter (params `min_bytes`)
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps: the same bytes on every run
_WNIDS = ("n01440764", "n01443537", "n01484850", "n01491361")


@dataclass
class Standins:
    """Where :func:`make_standins` put each stand-in, and what it holds."""

    celeba_zip: Path
    kylberg_zip: Path
    imagenet: Path
    celeba_numbers: dict[str, list[int]] = field(default_factory=dict)
    kylberg_members: list[str] = field(default_factory=list)
    imagenet_files: dict[str, int] = field(default_factory=dict)  # relative path → bytes


def _field(rng: np.random.Generator, height: int, width: int, channels: int, beta: float) -> np.ndarray:
    """A random field with power spectrum ∝ 1/f^beta, (H, W, C) scaled to [0, 1] per channel."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    f = np.sqrt(fy**2 + fx**2)
    f[0, 0] = 1.0
    amplitude = f ** (-beta / 2)
    amplitude[0, 0] = 0.0
    out = np.empty((height, width, channels))
    for c in range(channels):
        spectrum = amplitude * (rng.standard_normal(f.shape) + 1j * rng.standard_normal(f.shape))
        x = np.fft.irfft2(spectrum, s=(height, width))
        out[..., c] = (x - x.min()) / (np.ptp(x) + 1e-12)
    return out


def _picture(rng: np.random.Generator, height: int, width: int, channels: int, beta: float) -> np.ndarray:
    """A uint8 image (H, W, C): a 1/f field, a linear gradient and a few bright or dark ellipses."""
    img = 0.7 * _field(rng, height, width, channels, beta)
    yy, xx = np.mgrid[0:height, 0:width]
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
    img += 0.3 * (ramp - ramp.min())[..., None] / (np.ptp(ramp) + 1e-12)
    for _ in range(3):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(0.05, 0.25) * height, rng.uniform(0.05, 0.25) * width
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        img[inside] = 0.5 * img[inside] + 0.5 * rng.uniform(0, 1, size=channels)
    return np.clip(np.round(255 * img / img.max()), 0, 255).astype(np.uint8)


def _encode(pixels: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _write_zip(path: Path, members: dict[str, bytes], folders: tuple[str, ...] = ()) -> None:
    """A zip with fixed timestamps (and folder entries first, as `zip -r` writes them), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as archive:
        for folder in folders:
            archive.writestr(zipfile.ZipInfo(folder, _ZIP_DATE), b"")
        for name, data in members.items():
            info = zipfile.ZipInfo(name, _ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED  # JPEG/PNG are compressed already (as in the real zips)
            archive.writestr(info, data)
    tmp.replace(path)


def celeba_numbers(per_split: dict[str, int]) -> dict[str, list[int]]:
    """``per_split[s]`` file numbers of each CelebA split, spread over its range with both ends included
    (the partition's edges are where an off-by-one would show)."""
    numbers = {}
    for split, (lo, hi) in CELEBA_SPLIT_ENDS.items():
        n = per_split[split]
        numbers[split] = sorted({int(v) for v in np.linspace(lo, hi, n).round()}) if n > 1 else [lo][:n]
    return numbers


def make_celeba(path: Path, per_split: dict[str, int], seed: int) -> dict[str, list[int]]:
    """The CelebA stand-in zip: ``img_align_celeba/NNNNNN.jpg`` 178×218 RGB JPEGs (quality 95)."""
    rng = np.random.default_rng([seed, 1])
    numbers = celeba_numbers(per_split)
    width, height = CELEBA_SIZE
    members = {f"img_align_celeba/{k:06d}.jpg": _encode(_picture(rng, height, width, 3, 2.5), "JPEG", quality=95)
               for k in sorted(v for ks in numbers.values() for v in ks)}
    _write_zip(path, members, folders=("img_align_celeba/",))
    return numbers


def make_kylberg(path: Path, samples: int, seed: int) -> list[str]:
    """The Kylberg stand-in zip: ``grass1-<a..d>-p<NNN>.png``, 576×576 grey PNGs (the real naming: four
    source images a–d, 40 patches each; here ``samples`` in all, spread over a–d)."""
    rng = np.random.default_rng([seed, 2])
    names = [f"grass1-{'abcd'[i % 4]}-p{i // 4 + 1:03d}.png" for i in range(samples)]
    members = {name: _encode(_picture(rng, KYLBERG_SIZE, KYLBERG_SIZE, 1, 1.6), "PNG", optimize=False)
               for name in sorted(names)}
    _write_zip(path, members)
    return sorted(names)


def make_imagenet(root: Path, large: int, small: int, seed: int) -> dict[str, int]:
    """The ImageNet stand-in folder: ``large`` JPEGs of 180–280 px sides (≥ 20 kB: kept by the filter)
    and ``small`` ones of 40–70 px (< 20 kB: dropped), spread over a few class folders. Returns each
    file's path relative to ``root`` and its size; raises if a file lands on the wrong side of 20 kB."""
    rng = np.random.default_rng([seed, 3])
    files = {}
    for i in range(large + small):
        is_small = i >= large
        wnid = _WNIDS[i % len(_WNIDS)]
        lo, hi = (40, 70) if is_small else (180, 280)
        height, width = (int(v) for v in rng.integers(lo, hi, size=2))
        data = _encode(_picture(rng, height, width, 3, 1.2), "JPEG", quality=95)
        if (len(data) < SMALL_BYTES) != is_small:
            raise RuntimeError(f"stand-in ImageNet file {i} has {len(data)} bytes; expected it "
                               f"{'under' if is_small else 'at least'} {SMALL_BYTES}")
        rel = f"{wnid}/{wnid}_{1000 + i}.JPEG"
        (root / wnid).mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        files[rel] = len(data)
    return files


def make_standins(out: Path, *, celeba_per_split: dict[str, int] | None = None, kylberg_samples: int = 8,
                  imagenet_large: int = 28, imagenet_small: int = 4, seed: int = 0) -> Standins:
    """All three stand-ins under ``out``: ``www/img_align_celeba.zip`` and
    ``www/grass1-without-rotations.zip`` (the folder to serve over HTTP) and ``imagenet/``.
    An existing ``out`` is overwritten file by file."""
    out = Path(out)
    per_split = celeba_per_split or {"train": 12, "val": 4, "test": 4}
    result = Standins(out / "www" / "img_align_celeba.zip", out / "www" / "grass1-without-rotations.zip",
                      out / "imagenet")
    result.celeba_numbers = make_celeba(result.celeba_zip, per_split, seed)
    result.kylberg_members = make_kylberg(result.kylberg_zip, kylberg_samples, seed)
    result.imagenet_files = make_imagenet(result.imagenet, imagenet_large, imagenet_small, seed)
    return result


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write www/ and imagenet/ into")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    made = make_standins(args.out, seed=args.seed)
    print(f"{made.celeba_zip}\n{made.kylberg_zip}\n{made.imagenet} ({len(made.imagenet_files)} files)")
