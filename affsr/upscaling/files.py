"""Users' image files for `affsr upscale` / `affsr downsample`: read with their bit depth, size-checked from
the header, written in the format the extension names (atomically: never half a file).

Why the bit depth travels with the pixels: the promise of `upscale` is about the saved files —
downsample(saved output), rounded to the input's depth, equals the input — and the tolerance that
promise leaves is half the input's quantisation step (:mod:`affsr.upscaling.consistency`). So a 16-bit
file must be read as 16-bit: Pillow reads a 16-bit colour PNG as 8-bit (even affsr's own
`downsample --bits 16` output), so 16-bit PNGs are decoded with imagecodecs (libpng) and TIFFs with
tifffile. Float inputs (.npy, float TIFF) have no step: bits 32, the exact set.

Images are float64 in [0, 1], (H, W) grey or (H, W, 3) colour, plus an optional (H, W) alpha plane.
"""

from __future__ import annotations

import contextlib
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affsr.errors import DataError

__all__ = ["UserImage", "read_user_image", "image_size", "check_size", "check_output", "output_bits",
           "quantise", "file_values", "Samples", "write_output", "write_samples", "OUTPUT_FORMATS", "MAX_MEGAPIXELS"]

#: Output extensions and what each holds: bits per sample and whether it can hold an alpha plane.
OUTPUT_FORMATS = {".png": "8-bit (or 16-bit with --bits 16) PNG, grey/RGB ± alpha",
                  ".tif": "16-bit TIFF, grey/RGB ± alpha", ".tiff": "16-bit TIFF, grey/RGB ± alpha",
                  ".npy": "float32 (C, H, W), no alpha"}

#: Default ceilings on the pixels `upscale` writes and `downsample` reads; above them a one-line error says
#: so (``--max-megapixels`` raises them). `upscale` holds only LR-sized state and bands of its output
#: (:mod:`affsr.upscaling.disk`), so its ceiling (8192²) is about time and work files on disk (≈ 30 bytes
#: per colour output pixel); `downsample` reads its HR input whole, so its ceiling (4096²) is about memory.
MAX_MEGAPIXELS = {"upscale": 67.2, "downsample": 16.8}

_TIFF = (".tif", ".tiff")


@dataclass(frozen=True)
class UserImage:
    """pixels: (H, W) or (H, W, 3) float64 in [0, 1]; alpha: (H, W) in [0, 1] or None; bits: 8 or 16 for
    integer files (values k / (2^bits − 1)), 32 for float files."""

    pixels: np.ndarray
    alpha: np.ndarray | None
    bits: int


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


def _npy(path: Path, mmap: bool) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not a NumPy array file ({err})") from None


def _hwc(array: np.ndarray, path: Path) -> np.ndarray:
    """(H, W), (H, W, C) or affsr's own (C, H, W) (C = 1 or 3) as (H, W) or (H, W, C)."""
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[2] not in (1, 2, 3, 4):
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (2, 3, 4)):
        return array
    raise DataError(f"{path}: array of shape {array.shape}; expected (H, W), (H, W, 3) or (C, H, W) with C = 1 or 3")


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding it; DataError names the file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy" and path.is_file():
        height, width = _hwc(_npy(path, mmap=True), path).shape[:2]
        return width, height
    if suffix in _TIFF and path.is_file():
        import tifffile

        try:
            with tifffile.TiffFile(path) as tiff:
                shape = tiff.series[0].shape
        except (ValueError, RuntimeError, OSError, IndexError) as err:
            raise DataError(f"{path}: not a TIFF file tifffile can read ({err})") from None
        height, width = _hwc(np.broadcast_to(np.uint8(0), shape), path).shape[:2]  # a shape, no pixels
        return width, height
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
        raise DataError(f"{path}: {size} = {mpx(megapixels)} Mpx, above {verb}'s limit of {mpx(max_megapixels)} Mpx; "
                        "raise the limit with --max-megapixels (upscale: time and work files on disk grow with the output, ≈ 30 bytes per colour pixel; downsample: memory, ≈ 80 bytes per colour pixel of its input) or cut the image into parts")


def _integers(array: np.ndarray, path: Path) -> UserImage:
    """An integer (H, W[, C]) array from a file: colour planes and alpha as floats, and the depth."""
    if array.dtype == np.uint8:
        bits = 8
    elif array.dtype == np.uint16:
        bits = 16
    elif np.issubdtype(array.dtype, np.floating):
        values = np.asarray(array, dtype=np.float64)
        if not np.isfinite(values).all():
            raise DataError(f"{path}: {int((~np.isfinite(values)).sum())} non-finite values (NaN or inf); "
                            "float images must be finite and in [0, 1]")
        if values.min() < 0 or values.max() > 1:
            raise DataError(f"{path}: float values must be in [0, 1] (found {values.min():.3g} … {values.max():.3g})")
        return _split(values, 32)
    else:
        raise DataError(f"{path}: samples of type {array.dtype}; affsr reads 8- and 16-bit integers and floats in [0, 1]")
    return _split(np.asarray(array, dtype=np.float64) / (2.0**bits - 1), bits)


def _split(values: np.ndarray, bits: int) -> UserImage:
    """Colour planes and alpha of (H, W), (H, W, 2) grey+alpha, (H, W, 3) or (H, W, 4) RGBA."""
    if values.ndim == 2:
        return UserImage(values, None, bits)
    channels = values.shape[2]
    colour = values[..., :3] if channels >= 3 else values[..., 0]
    alpha = values[..., -1] if channels in (2, 4) else None
    return UserImage(np.ascontiguousarray(colour), alpha, bits)


def _png_depth(path: Path) -> int:
    """A PNG's bit depth from its IHDR chunk (0 if the file is not a PNG)."""
    with open(path, "rb") as handle:
        head = handle.read(26)
    return head[24] if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) == 26 else 0


def read_user_image(path: Path) -> UserImage:
    """Any image file a user has, with its bit depth: PNG (8/16-bit, grey/RGB ± alpha, palettes), JPEG and
    everything else Pillow reads (8-bit), TIFF (8/16-bit or float, by tifffile), .npy (float in [0, 1],
    (H, W), (H, W, 3) or affsr's (C, H, W)). DataError names the file if it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image not found")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _integers(_hwc(_npy(path, mmap=False), path), path)
    try:
        if suffix in _TIFF:
            import tifffile

            return _integers(_hwc(tifffile.imread(path), path), path)
        if _png_depth(path) == 16:
            import imagecodecs

            return _integers(_hwc(imagecodecs.png_decode(path.read_bytes()), path), path)
    except (ValueError, RuntimeError, OSError) as err:  # tifffile / imagecodecs on a corrupt file
        raise DataError(f"{path}: image is corrupt or truncated ({type(err).__name__}: {err})") from None
    return _pillow(path)


def _pillow(path: Path) -> UserImage:
    """An 8-bit file (or 16-bit grey, Pillow's I;16 modes) through Pillow; alpha kept."""
    from affsr.data.image_files import decode_image

    with _opened(path) as img:
        mode, transparent = img.mode, "transparency" in img.info
        colour = mode not in ("L", "I;16", "I;16B", "I;16L", "I", "1", "LA")
        sixteen = mode.startswith("I")
        alpha = None
        if mode in ("RGBA", "LA", "PA") or (mode == "P" and transparent):
            alpha = np.asarray(img.convert("RGBA"), dtype=np.float64)[..., 3] / 255.0
    pixels = decode_image(path.read_bytes(), str(path), colour=colour)
    return UserImage(pixels, alpha, 16 if sixteen else 8)


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


def file_values(image: np.ndarray, bits: int) -> np.ndarray:
    """What a file of ``bits`` per sample stores for ``image`` in [0, 1]: uint8/uint16 levels (clipped,
    rounded) or float32 (bits 32)."""
    if bits == 32:
        return np.asarray(image, dtype=np.float32)
    top = 2**bits - 1
    return np.clip(np.rint(np.asarray(image) * top), 0, top).astype(np.uint16 if bits == 16 else np.uint8)


class Samples:
    """A (P, H, W) array of a file's samples as :func:`write_samples` reads it: ``block(rows)`` → (P, n, W).
    (:class:`affsr.upscaling.disk.DiskImage` is the same thing on disk.)"""

    def __init__(self, array: np.ndarray):
        self.array, self.shape, self.dtype = array, array.shape, array.dtype

    def block(self, index) -> np.ndarray:
        return self.array[:, index]


def write_output(path: Path, image: np.ndarray, bits: int = 8, alpha: np.ndarray | None = None) -> None:
    """Write a (C, H, W) image in [0, 1] (C = 1 or 3) in the format ``path``'s extension names, atomically.

    ``alpha``: (H, W) in [0, 1], written as a fourth (or second) plane for PNG and TIFF. Values are clipped
    to [0, 1] and rounded to the file's bit depth (``bits`` 8 or 16 for PNG; TIFF is always 16-bit).
    """
    depth = output_bits(path, bits)
    planes = list(image) + ([alpha] if alpha is not None and depth < 32 else [])
    write_samples(path, Samples(np.stack([file_values(p, depth) for p in planes])), alpha=len(planes) > len(image))


#: Bytes of samples per band when a file is written (16 MB): what is in memory of the output at once.
WRITE_BAND_BYTES = 16 * 2**20


class _Named:
    """A file handle whose ``name`` is a path (tifffile reads it; an ``os.fdopen`` handle's name is its fd)."""

    def __init__(self, handle, path: Path):
        self._handle, self.name = handle, str(path)

    def __getattr__(self, attr):
        return getattr(self._handle, attr)


def write_samples(path: Path, samples, alpha: bool = False) -> None:
    """Write the samples (``Samples`` or a DiskImage: (P, H, W) uint8/uint16 levels, or float32 for .npy)
    to ``path`` in its format, atomically, a band of rows at a time: P colour planes (1 or 3) plus alpha
    (when ``alpha``) for PNG and TIFF; the (C, H, W) float32 array itself for .npy."""
    from affsr.atomic_files import atomic_write

    ext, path = check_output(path), Path(path)
    planes, height, width = samples.shape
    band = max(1, WRITE_BAND_BYTES // (planes * width * np.dtype(samples.dtype).itemsize))
    tops = range(0, height, band)
    if ext == ".npy":
        def npy(handle) -> None:
            np.lib.format.write_array_header_1_0(handle, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                                                          "fortran_order": False, "shape": samples.shape})
            for c in range(planes):
                for top in tops:
                    handle.write(np.ascontiguousarray(samples.block(slice(top, top + band))[c], dtype=np.float32).tobytes())

        atomic_write(path, npy)
        return
    colour = planes - alpha

    def interleaved():  # (n, W, P) bands, top to bottom
        for top in tops:
            yield np.moveaxis(samples.block(slice(top, top + band)), 0, -1)

    if ext != ".png":
        import tifffile

        shape = (height, width, planes) if planes > 1 else (height, width)
        strips = (b if planes > 1 else b[..., 0] for b in interleaved())
        atomic_write(path, lambda handle: tifffile.imwrite(
            _Named(handle, path), strips, shape=shape, dtype=samples.dtype, rowsperstrip=band,
            photometric="rgb" if colour == 3 else "minisblack", extrasamples=["unassalpha"] if alpha else None))
        return
    # Pillow cannot write 16-bit colour PNGs, so PNGs are encoded here: zlib, filter type 0 per row, one IDAT
    # chunk per band (the format allows any number)
    depth = 16 if samples.dtype == np.uint16 else 8
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[planes]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    def png(handle) -> None:
        handle.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)))
        compressor = zlib.compressobj(6)
        for block in interleaved():
            rows = block.astype(">u2" if depth == 16 else np.uint8).reshape(block.shape[0], -1).view(np.uint8)
            data = compressor.compress(np.concatenate([np.zeros((rows.shape[0], 1), np.uint8), rows], axis=1).tobytes())
            if data:
                handle.write(chunk(b"IDAT", data))
        handle.write(chunk(b"IDAT", compressor.flush()) + chunk(b"IEND", b""))

    atomic_write(path, png)
