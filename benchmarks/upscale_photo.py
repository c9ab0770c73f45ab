"""`affsr upscale` at photo size: wall time, peak memory and the round trip, as a user runs it.

The acceptance cases of issue 24, on photos skimage ships: an HR photo resized to 4·n × 4·n colour is
made into an 8-bit LR with `affsr downsample` (n × n), upscaled with the projection, and the saved PNG
downsampled again; the row gives the wall time and peak memory (RSS) of the `affsr upscale` process
alone, the projection's summary, and max |Δ| between the two LR files in grey levels.

    python benchmarks/upscale_photo.py [--checkpoint runs/natural/affgan/model.pt] [--sizes 256 1024]
                                       [--photos astronaut] [--bits 8] [--markdown table.md] [--json out.json]

Default checkpoint: the default study's natural-photo AffGAN (`make study` makes it). `upscale` itself
streams its output; this script's HR photo and `downsample` hold the HR image whole: ≈ 2 GB for
1024 → 4096, ≈ 6 GB for 2048 → 8192.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def photo(name: str, side: int) -> np.ndarray:
    """skimage.data.<name> (colour), its centred square resized to side × side, uint8 (side, side, 3)."""
    import skimage.data
    from skimage.transform import resize

    image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    n = min(image.shape[:2])
    top, left = (image.shape[0] - n) // 2, (image.shape[1] - n) // 2
    square = image[top:top + n, left:left + n, :3] / 255.0
    return np.clip(np.rint(resize(square, (side, side), anti_aliasing=side < n) * 255), 0, 255).astype(np.uint8)


def affsr(*args: str) -> tuple[str, float, float]:
    """(stdout, wall seconds, peak RSS in GB) of one `affsr` command, its own.

    The peak is the child's VmHWM (/proc/<pid>/status), read until it exits: the kernel's high-water
    mark of the memory of the program it runs. Not wait4's ru_maxrss, which a child inherits from its
    parent across fork and exec — after a large case, this script's own photos made a 256² run read 1 GB."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen([sys.executable, "-m", "affsr", *args], stdout=out, stderr=err, text=True)
        peak_kb = 0
        while process.poll() is None:
            try:
                status = Path(f"/proc/{process.pid}/status").read_text()
                peak_kb = max(peak_kb, int(re.search(r"VmHWM:\s+(\d+)", status).group(1)))
            except (OSError, AttributeError):  # exiting: its memory is gone
                pass
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        out.seek(0), err.seek(0)
        if process.returncode:
            raise SystemExit(f"affsr {' '.join(args)} failed:\n{err.read()[-2000:]}")
        return out.read(), seconds, peak_kb / 2**20


def channels(checkpoint: str) -> int:
    """The channels the checkpoint's generator works on."""
    from affsr.training.checkpoint import load_model

    return load_model(Path(checkpoint))[0].generator.channels


def case(checkpoint: str, name: str, n: int, bits: int, folder: Path) -> dict:
    from PIL import Image

    from affsr.upscaling.files import read_user_image

    hr = photo(name, 4 * n)
    if channels(checkpoint) == 1:  # a grey model: a grey photo (ITU-R 601 luma), so both LR files are grey
        hr = np.clip(np.rint(hr @ np.array([0.299, 0.587, 0.114])), 0, 255).astype(np.uint8)
    Image.fromarray(hr).save(folder / "hr.png")
    depth = ["--bits", str(bits)]
    large = ["--max-megapixels", "300"]  # the cases' own sizes, above the defaults (docs/upscale.md)
    affsr("downsample", str(folder / "hr.png"), str(folder / "lr.png"), "--checkpoint", checkpoint, *depth, *large)
    out, seconds, peak = affsr("upscale", str(folder / "lr.png"), str(folder / "sr.png"), "--checkpoint", checkpoint,
                               *depth, *large)
    affsr("downsample", str(folder / "sr.png"), str(folder / "back.png"), "--checkpoint", checkpoint, *depth, *large)
    lr, back = read_user_image(folder / "lr.png").pixels, read_user_image(folder / "back.png").pixels
    top = 2**bits - 1
    summary = re.search(r"note: (projection .*?\)), largest", out)
    return {"photo": name, "lr": n, "hr": 4 * n, "bits": bits, "seconds": round(seconds, 1),
            "peak_gb": round(peak, 2), "levels_off": int(np.abs(np.rint(lr * top) - np.rint(back * top)).max()),
            "projection": summary.group(1) if summary else "?"}


def _cpu() -> str:
    """The CPU's model name (Linux), else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="runs/natural/affgan/model.pt")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024], help="LR sides (output: ×4)")
    parser.add_argument("--photos", nargs="+", default=["astronaut"])
    parser.add_argument("--bits", type=int, default=8)
    parser.add_argument("--markdown")
    parser.add_argument("--json")
    args = parser.parse_args()
    if not Path(args.checkpoint).is_file():
        raise SystemExit(f"{args.checkpoint}: no checkpoint (run `make study` first, or pass --checkpoint)")
    rows = []
    for name in args.photos:
        for n in args.sizes:
            with tempfile.TemporaryDirectory() as tmp:
                rows.append(case(args.checkpoint, name, n, args.bits, Path(tmp)))
            print(rows[-1], flush=True)
    machine = f"{_cpu()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [f"`{' '.join(sys.argv)}` — {machine}", "",
             "| photo | LR → HR | bits | wall s | peak GB | round trip (levels off) | projection |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['photo']} | {r['lr']}² → {r['hr']}² | {r['bits']} | {r['seconds']} | {r['peak_gb']} | "
              f"{r['levels_off']} | {r['projection']} |" for r in rows]
    print("\n".join(lines))
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
