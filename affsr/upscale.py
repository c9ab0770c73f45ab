"""Super-resolve and downsample users' own images with a study's model and operator.

Why tiles and one global projection: a large image does not fit through the generator at once, and a
projected model applied tile by tile would be consistent per tile (with A wrapping around each tile's
borders), not for the whole image. So the *raw* generator output f(x) is computed on overlapping LR
tiles, blended with linear ramps across the overlaps, and the affine projection
ŷ = A⁺x + (I − A⁺A) f(x) is applied once to the whole image (A circular on the whole image, as in
training). Then A ŷ = x up to float round-off for any tiling. Soft and unconstrained models are
stitched the same way without the projection.

Images are float arrays in [0, 1], (H, W) grey or (H, W, 3) colour, converted to the channels the
checkpoint was trained on (colour → grey: ITU-R 601 luma; grey → colour: the grey copied to R, G, B).
"""

from __future__ import annotations

import contextlib
import io
import struct
from pathlib import Path

import numpy as np
import torch

from affsr.errors import CheckpointError, DataError
from affsr.nets.sr_model import SRModel
from affsr.operators.downsampling import Downsampling

__all__ = ["to_channels", "upscale", "downsample", "read_image", "write_image", "read_alpha", "write_output",
           "check_output", "OUTPUT_FORMATS"]

#: Output extensions and what each holds: bits per sample and whether it can hold an alpha plane.
OUTPUT_FORMATS = {".png": "8-bit (or 16-bit with --bits 16) PNG, grey/RGB ± alpha",
                  ".tif": "16-bit TIFF, grey/RGB ± alpha", ".tiff": "16-bit TIFF, grey/RGB ± alpha",
                  ".npy": "float32 (C, H, W), no alpha"}

_LUMA = np.array([0.299, 0.587, 0.114])


#: Default ceiling on the pixels `upscale` writes (and `downsample` reads): 4096 × 4096. Memory grows
#: with the whole image today (1024² → 4096² without the box projection peaked at 3.3 GB); above the
#: ceiling a one-line error says so instead of an allocation failure part-way (``--max-megapixels``).
MAX_MEGAPIXELS = 16.8  # ≈ 4096²


@contextlib.contextmanager
def _opened(path: Path):
    """The image file open in Pillow (header read, nothing decoded), with Pillow's decompression-bomb limit
    lifted inside (:func:`check_size` checks sizes, with the limit the user chose); DataError names the
    file when it is missing or not an image."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image not found")
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(path) as img:
            yield img
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"{path}: not an image file PIL can read ({err})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding it; DataError names the file."""
    with _opened(path) as img:
        return img.size


def check_size(path: Path, scale: int, max_megapixels: float, verb: str) -> None:
    """Refuse, in one line with the limit and the way around it, an image whose output (×``scale`` per
    side; 1 for the HR input of `downsample`) would exceed ``max_megapixels``."""
    def mpx(value: float) -> str:
        return f"{value:.1f}" if value >= 1 else f"{value:.3g}"

    width, height = image_size(path)
    megapixels = width * scale * height * scale / 1e6
    if megapixels > max_megapixels:
        size = f"{width}×{height}" + (f" upscales to {width * scale}×{height * scale}" if scale > 1 else "")
        raise DataError(f"{path}: {size} = {mpx(megapixels)} Mpx, above {verb}'s limit of {mpx(max_megapixels)} Mpx "
                        "(its memory grows with the whole image: ≈ 3.3 GB at 16.8 Mpx); raise the limit with "
                        "--max-megapixels or cut the image into parts")


def read_image(path: Path) -> np.ndarray:
    """An image file as float64 in [0, 1]: (H, W) or (H, W, 3) (alpha dropped). DataError names the file."""
    from affsr.data.image_files import decode_image

    with _opened(path) as img:
        colour = img.mode not in ("L", "I;16", "I;16B", "I;16L", "I", "1", "LA")
        return decode_image(Path(path).read_bytes(), str(path), colour=colour)


def write_image(path: Path, image: np.ndarray) -> None:
    """Write (H, W) or (H, W, 3) values in [0, 1] as an 8-bit PNG (clipped, rounded), atomically."""
    from PIL import Image

    from affsr.atomic_files import atomic_write

    pixels = np.clip(np.rint(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)
    atomic_write(path, lambda handle: Image.fromarray(pixels).save(handle, format="PNG"))


def check_output(path: Path) -> str:
    """The output's extension (lower case) if affsr can write it; DataError naming the file otherwise."""
    ext = Path(path).suffix.lower()
    if Path(path).is_dir():
        raise DataError(f"{path}: is a folder; give a file name ending in {', '.join(OUTPUT_FORMATS)}")
    if ext not in OUTPUT_FORMATS:
        raise DataError(f"{path}: cannot write '{ext or '(no extension)'}' files; use one of "
                        f"{', '.join(OUTPUT_FORMATS)} (.png 8-bit or --bits 16, .tif/.tiff 16-bit, .npy float32)")
    return ext


def output_bits(path: Path, bits: int) -> int:
    """Bits per sample the file will hold: 8/16 for PNG, 16 for TIFF, 32 (float) for .npy."""
    return {".png": bits, ".tif": 16, ".tiff": 16, ".npy": 32}[check_output(path)]


def quantise(image: np.ndarray, bits: int) -> np.ndarray:
    """What the written file will give back, in [0, 1] (float32 values for 32)."""
    if bits == 32:
        return np.asarray(image, dtype=np.float32).astype(np.float64)
    top = 2.0**bits - 1
    return np.clip(np.rint(np.asarray(image) * top), 0, top) / top


def write_output(path: Path, image: np.ndarray, bits: int = 8, alpha: np.ndarray | None = None) -> None:
    """Write a (C, H, W) image in [0, 1] (C = 1 or 3) in the format ``path``'s extension names, atomically.

    ``alpha``: (H, W) in [0, 1], written as a fourth (or second) plane for PNG and TIFF. Values are clipped
    to [0, 1] and rounded to the file's bit depth (``bits`` 8 or 16 for PNG; TIFF is always 16-bit).
    """
    import zlib

    from affsr.atomic_files import atomic_write, write_npy

    ext, path = check_output(path), Path(path)
    if ext == ".npy":
        write_npy(path, np.asarray(image, dtype=np.float32))
        return
    planes = list(image) + ([alpha] if alpha is not None else [])
    depth = 16 if ext != ".png" else bits
    dtype = np.uint16 if depth == 16 else np.uint8
    pixels = np.stack([np.clip(np.rint(np.asarray(p) * (2.0**depth - 1)), 0, 2**depth - 1) for p in planes],
                      axis=-1).astype(dtype)
    if ext != ".png":
        import tifffile

        buffer = io.BytesIO()  # tifffile wants a named file or a buffer, not atomic_write's handle
        tifffile.imwrite(buffer, pixels if pixels.shape[-1] > 1 else pixels[..., 0],
                         photometric="rgb" if image.shape[0] == 3 else "minisblack",
                         extrasamples=["unassalpha"] if alpha is not None else None)
        atomic_write(path, lambda handle: handle.write(buffer.getvalue()))
        return
    # Pillow cannot write 16-bit colour PNGs, so PNGs are encoded here (zlib; filter type 0 per row).
    height, width, planes_n = pixels.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[planes_n]
    rows = pixels.astype(">u2" if depth == 16 else np.uint8).reshape(height, -1).view(np.uint8)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6))
           + chunk(b"IEND", b""))
    atomic_write(path, lambda handle: handle.write(png))


def read_alpha(path: Path) -> np.ndarray | None:
    """The alpha plane of an image file as (H, W) float in [0, 1], or None if it has none."""
    from PIL import Image

    with Image.open(path) as img:
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            alpha = np.asarray(img.convert("RGBA"), dtype=np.float64)[..., 3] / 255.0
            return alpha
    return None


def to_channels(image: np.ndarray, channels: int) -> tuple[np.ndarray, str]:
    """(C, H, W) float array with ``channels`` channels, and a note of any conversion made."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    elif a.ndim == 3 and a.shape[2] in (3, 4):
        a = a[..., :3].transpose(2, 0, 1)
    else:
        raise DataError(f"image of shape {np.shape(image)}: expected (H, W) or (H, W, 3)")
    if a.shape[0] == channels:
        return np.ascontiguousarray(a), ""
    if channels == 1:
        return np.tensordot(_LUMA, a, axes=1)[None], "converted colour to grey (ITU-R 601 luma): the model is grey"
    return np.repeat(a, channels, axis=0), f"copied grey into {channels} channels: the model is colour"


def _ramp(n: int, overlap: int) -> np.ndarray:
    """Blending weights along one tile side: linear ramps of ``overlap`` samples at both ends."""
    w = np.ones(n)
    if overlap > 0:
        ramp = (np.arange(overlap) + 1.0) / (overlap + 1.0)
        w[:overlap] = np.minimum(w[:overlap], ramp)
        w[-overlap:] = np.minimum(w[-overlap:], ramp[::-1])
    return w


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile start offsets covering [0, length) with at least ``overlap`` samples shared between tiles."""
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step)) + [length - tile]
    return sorted(set(starts))


@torch.no_grad()
def upscale(model: SRModel, lr: np.ndarray, tile: int = 64, overlap: int = 8,
            device: torch.device | str = "cpu", op: Downsampling | None = None) -> np.ndarray:
    """ŷ for one LR image (C, h, w) float in [0, 1] → (C, s·h, s·w) float64, consistent: A ŷ = x.

    ``tile``/``overlap``: LR pixels per tile side and shared between neighbouring tiles. ``op``: the A the
    LR image was made with, if not the model's (an image from another tool: pick its operator); the
    network's raw output is projected onto that A's solutions (same scale as the model's).
    """
    if tile <= 0 or not 0 <= overlap < tile:
        raise DataError(f"tile={tile}, overlap={overlap}: need tile > 0 and 0 ≤ overlap < tile")
    op = op or model.op
    if int(op.scale) != int(model.op.scale):
        raise DataError(f"the operator's scale {op.scale} is not the model's {model.op.scale}")
    s = int(op.scale)
    channels, h, w = lr.shape
    x = torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32))[None].to(device)
    raw = np.zeros((channels, s * h, s * w))
    weight = np.zeros((s * h, s * w))
    for top in _starts(h, tile, overlap):
        for left in _starts(w, tile, overlap):
            th, tw = min(tile, h), min(tile, w)
            f = model.generator(x[:, :, top:top + th, left:left + tw]).double().cpu().numpy()[0]
            ov_h = min(s * overlap, s * th // 2) if th < h else 0
            ov_w = min(s * overlap, s * tw // 2) if tw < w else 0
            ramp = np.outer(_ramp(s * th, ov_h), _ramp(s * tw, ov_w))
            raw[:, s * top:s * (top + th), s * left:s * (left + tw)] += f * ramp
            weight[s * top:s * (top + th), s * left:s * (left + tw)] += ramp
    f_all = torch.from_numpy(raw / weight)[None]
    if model.constraint not in ("projected", "projected_box"):  # the box comes after (upscale_file)
        return f_all[0].numpy()
    x64 = x.double().cpu()
    return (f_all + op.pinv(x64 - op(f_all)))[0].numpy()  # A⁺x + (I − A⁺A) f, in float64


def upscale_alpha(op: Downsampling, alpha: np.ndarray) -> np.ndarray:
    """An (h, w) alpha plane → (s·h, s·w) by plain cubic interpolation on A's grid (edges repeated,
    clipped to [0, 1]); alpha is not part of what the model or A see."""
    from affsr.operators.interpolation import cubic_upsample, grid_offset

    a = torch.from_numpy(np.ascontiguousarray(alpha, dtype=np.float64))[None, None]
    return cubic_upsample(a, op.scale, grid_offset(op), boundary="replicate")[0, 0].clamp(0, 1).numpy()


def project_output(op: Downsampling, sr: np.ndarray, lr: np.ndarray, tol: float = 0.01 / 255):
    """The nearest image in [0, 1] with A y = x to ``sr`` (C, H, W), for LR ``lr`` (C, h, w):
    :class:`affsr.operators.box_projection.BoxProjection` (its ``image`` is (1, C, H, W) float64).

    ``tol`` defaults to 0.01 grey levels: an 8-bit LR input is itself rounded, so A [0, 1]ⁿ need not
    contain it exactly and a much smaller tolerance may be unreachable (the result says so).

    Newton alone (50 steps), not ``auto``: its interior-point hand-over converges on training patches but
    is too slow at photo size on a CPU (retina 1024² colour: stopped after 13 min, where Newton's 50 steps
    take ≈ 250 s and already give a round trip within 0 grey levels; affsr.operators.box_projection.MEASURED)."""
    from affsr.operators.box_projection import project_to_box

    return project_to_box(op, torch.from_numpy(sr)[None], torch.from_numpy(lr)[None], tol=tol, method="newton")


def max_grey_error(op: Downsampling, sr: np.ndarray, lr: np.ndarray) -> float:
    """max |A ŷ − x| in grey levels of 255 for one image (C, H, W) and its LR (C, h, w)."""
    with torch.no_grad():
        d = op(torch.from_numpy(np.asarray(sr, dtype=np.float64))[None]) - torch.from_numpy(lr)[None].double()
    return 255.0 * float(d.abs().max())


def downsample(op: Downsampling, hr: np.ndarray) -> tuple[np.ndarray, str]:
    """x = A y for one image (C, H, W); crops H, W down to multiples of the scale first (and says so)."""
    s = int(op.scale)
    channels, height, width = hr.shape
    H, W = height - height % s, width - width % s
    if H == 0 or W == 0:
        raise DataError(f"image {height}×{width} is smaller than the scale {s}")
    note = "" if (H, W) == (height, width) else (
        f"cropped {height}×{width} to {H}×{W} (bottom/right edge) so that the scale {s} divides it")
    with torch.no_grad():
        x = op(torch.from_numpy(np.ascontiguousarray(hr[:, :H, :W]))[None].double())[0].numpy()
    return x, note


def upscale_file(model: SRModel, settings, source: Path, target: Path, bits: int = 8, box: bool = True,
                 alpha: str = "keep", tile: int = 64, overlap: int = 8,
                 device: torch.device | str = "cpu", operator=None,
                 max_megapixels: float | None = None) -> tuple[np.ndarray, list[str]]:
    """`affsr upscale`: read ``source``, super-resolve, box-project (``box``), write ``target`` in the format
    its extension names. Returns the float result (C, H, W) and the lines to print (``note:`` lines, then
    a summary with the consistency in grey levels before and after quantisation to the file's depth).
    ``operator``: the :class:`~affsr.config.OperatorConfig` of the A that made ``source`` (default: the
    model's, as its checkpoint records it)."""
    from affsr.operators.kinds import build_operator

    ext, bits = check_output(target), output_bits(target, bits)
    check_size(source, int((operator or settings.operator).scale), max_megapixels or MAX_MEGAPIXELS, "upscale")
    lr, note = to_channels(read_image(source), model.generator.channels)
    plane = read_alpha(source)
    op = build_operator(operator or settings.operator)
    notes = [note]
    try:
        sr = upscale(model, lr, tile=tile, overlap=overlap, device=device, op=op)
        op.lr_shape(sr.shape)  # A applies to the output (an image smaller than A's kernel does not)
    except ValueError as err:  # e.g. an image whose HR size is below the kernel of A
        raise DataError(f"{source}: {err}") from None
    if not np.isfinite(sr).all():  # never write an image of NaN (e.g. a model whose weights overflow)
        raise CheckpointError(f"the model gave non-finite values ({int((~np.isfinite(sr)).sum())} of {sr.size}) "
                              f"for {source}: nothing written to {target}")
    outside = int(((sr < 0) | (sr > 1)).sum())
    if box:
        result = project_output(op, sr, lr)
        sr = result.image[0].numpy()
        notes.append(result.summary())
        if settings.constraint != "projected":
            notes.append(f"the box projection also made this {settings.constraint}-constraint model's output consistent")
        if not result.converged:
            notes.append("the LR image may not be A of any image in [0, 1] (e.g. not made by `affsr downsample`): "
                         "the output is in [0, 1] but only consistent to the residual above")
    else:
        notes.append(f"no box projection: {outside} of {sr.size} values lie outside [0, 1] and are clipped in the file")
    if plane is not None:
        if alpha == "keep" and ext != ".npy":
            plane = upscale_alpha(op, plane)
            notes.append("alpha channel upscaled with plain cubic interpolation (not the model) and written back")
        else:
            notes.append(f"alpha channel dropped ({'--alpha drop' if alpha == 'drop' else ext + ' holds no alpha'})")
            plane = None
    write_output(target, sr, bits=bits, alpha=plane)
    written = "float32" if bits == 32 else f"{bits}-bit"
    summary = (f"upscaled {source} {lr.shape[2]}×{lr.shape[1]} → {target} {sr.shape[2]}×{sr.shape[1]} "
               f"({settings.method}, {settings.constraint}); max |Aŷ − x| = {max_grey_error(op, sr, lr):.2g} grey "
               f"levels (of 255) in float, {max_grey_error(op, quantise(sr, bits), lr):.2g} after {written} "
               f"quantisation; {outside} values would have been clipped without the box projection")
    return sr, [f"note: {n}" for n in notes if n] + [summary]


def downsample_file(op: Downsampling, source: Path, target: Path, bits: int = 8,
                    max_megapixels: float | None = None) -> tuple[np.ndarray, list[str]]:
    """`affsr downsample`: x = A y of ``source`` written to ``target`` (format by extension); (x, lines)."""
    bits = output_bits(target, bits)
    check_size(source, 1, max_megapixels or MAX_MEGAPIXELS, "downsample")
    image = read_image(source)
    hr, _ = to_channels(image, 1 if image.ndim == 2 else 3)
    try:
        x, note = downsample(op, hr)
    except ValueError as err:  # e.g. an image smaller than the kernel of A
        raise DataError(f"{source}: {err}") from None
    write_output(target, x, bits=bits)
    dropped = "alpha channel dropped (A is applied to the colour planes only)" if read_alpha(source) is not None else ""
    return x, [f"note: {n}" for n in (note, dropped) if n] + [
        f"downsampled {source} → {target} {x.shape[2]}×{x.shape[1]} with {op!r}"]
