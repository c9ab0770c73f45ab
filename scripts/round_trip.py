"""Round trip through the files a user gets: HR photo → `affsr downsample` → `affsr upscale` → `affsr
downsample` again, at 8 and 16 bits, for every photo skimage.data ships (offline), and at 8 bits for its
drawn images — the acceptance of issue 24: the LR file made from the saved output equals the LR input,
0 levels off at its own depth.

Each photo is cropped to a multiple of the scale (bool images become 0/255, the float phantom is
rounded to 8 bits, logo keeps its alpha, stereo_motorcycle gives its left and right views), saved as PNG,
and sent through the CLI in this process. The table gives the sizes, max |Δ| in levels at the file's
depth, the wall time of `upscale`, and its projection's summary.

    .venv/bin/python scripts/round_trip.py [--checkpoint runs/natural/affgan/model.pt] [--bits 8 16]
                                           [--photos astronaut camera …] [--drawn-bits 8] [--out table.md]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

from affsr.cli import main as affsr
from affsr.upscaling.files import read_user_image

#: skimage.data's 2-D photos that ship with scikit-image (the others need a download) …
PHOTOS = ("astronaut", "brick", "camera", "cat", "cell", "chelsea", "clock", "coffee", "coins", "grass", "gravel",
          "hubble_deep_field", "immunohistochemistry", "microaneurysms", "moon", "page", "retina", "rocket",
          "stereo_motorcycle", "text")
#: … and its drawn images: hard 0/1 edges, whose true image sits on the corners of the box (thin sets).
DRAWN = ("binary_blobs", "checkerboard", "colorwheel", "horse", "logo", "shepp_logan_phantom")


def photos(names: list[str]) -> dict[str, np.ndarray]:
    """name → uint8 (H, W), (H, W, 3) or (H, W, 4)."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            image = getattr(skimage.data, name)()
            views = {f"{name} left": image[0], f"{name} right": image[1]} if isinstance(image, tuple) else {name: image}
            for view, a in views.items():
                if a.dtype == bool:
                    a = a.astype(np.uint8) * 255
                elif a.dtype != np.uint8:
                    a = np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)
                out[view] = a
    return out


def run(*args: str) -> str:
    """The CLI's stdout; raises if it exits non-zero."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(io.StringIO()):
        code = affsr(list(args))
    if code:
        raise RuntimeError(f"affsr {' '.join(args)} exited {code}")
    return buffer.getvalue()


def round_trip(checkpoint: str, hr: np.ndarray, bits: int, folder: Path) -> tuple[int, float, str, tuple]:
    """(max levels off, upscale seconds, projection summary, LR shape)."""
    Image.fromarray(hr).save(folder / "hr.png")
    depth = ["--bits", str(bits)]
    run("downsample", str(folder / "hr.png"), str(folder / "lr.png"), "--checkpoint", checkpoint, *depth)
    start = time.perf_counter()
    out = run("upscale", str(folder / "lr.png"), str(folder / "sr.png"), "--checkpoint", checkpoint, *depth)
    seconds = time.perf_counter() - start
    run("downsample", str(folder / "sr.png"), str(folder / "back.png"), "--checkpoint", checkpoint, *depth)
    lr, back = read_user_image(folder / "lr.png"), read_user_image(folder / "back.png")
    x = lr.pixels if lr.pixels.ndim == back.pixels.ndim else np.repeat(lr.pixels[..., None], 3, axis=2)
    levels = int(np.abs(np.rint(x * (2**bits - 1)) - np.rint(back.pixels * (2**bits - 1))).max())
    summary = re.search(r"projection (.*?) \(", out)
    return levels, seconds, summary.group(1) if summary else "?", lr.pixels.shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default="runs/natural/affgan/model.pt")
    parser.add_argument("--bits", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--photos", nargs="+", default=list(PHOTOS))
    parser.add_argument("--drawn-bits", type=int, nargs="*", default=[8],
                        help="bit depths for the drawn images (default 8; none: leave them out)")
    parser.add_argument("--out", help="also write the table (Markdown) here")
    args = parser.parse_args()
    rows = ["| photo | HR | bits | max abs Δ (levels) | upscale s | projection |", "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        cases = [(name, image, args.bits) for name, image in photos(args.photos).items()]
        cases += [(name, image, args.drawn_bits) for name, image in photos(list(DRAWN)).items() if args.drawn_bits]
        for name, image, depths in cases:
            s = 4
            hr = image[: image.shape[0] // s * s, : image.shape[1] // s * s]
            for bits in depths:
                levels, seconds, summary, _ = round_trip(args.checkpoint, hr, bits, Path(tmp))
                rows.append(f"| {name} | {hr.shape[1]}×{hr.shape[0]}{'×' + str(hr.shape[2]) if hr.ndim == 3 else ''} "
                            f"| {bits} | {levels} | {seconds:.1f} | {summary} |")
                print(rows[-1], flush=True)
    table = "\n".join(rows)
    print(f"\n{args.checkpoint}\n{table}")
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
