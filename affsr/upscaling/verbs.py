"""`affsr upscale` and `affsr downsample` on one file each: read, check, compute, write, and the lines to print.

Every user mistake ends before anything is written, as one DataError/CheckpointError line (the CLI prints
it as ``affsr: error:`` and exits 2); the output file is written atomically, after every check, and
never holds non-finite values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from affsr.errors import CheckpointError, DataError, note
from affsr.nets.sr_model import SRModel
from affsr.operators.downsampling import Downsampling
from affsr.operators.row_bands import InMemory, bands, lr_errors, v_rows
from affsr.upscaling.consistency import make_consistent
from affsr.upscaling.disk import DiskImage, give_back_memory, work_folder
from affsr.upscaling.files import (MAX_MEGAPIXELS, check_output, check_size, file_values, output_bits,
                                   read_user_image, write_output, write_samples)
from affsr.upscaling.tiles import (check_tiling, affine_projection, affine_state, alpha_bands, downsample, raw_bands,
                                   to_channels)

__all__ = ["upscale_file", "downsample_file"]

_DTYPES = {8: np.uint8, 16: np.uint16, 32: np.float32}


def _depth(bits: int) -> str:
    return "float" if bits >= 32 else f"{bits}-bit"


def upscale_file(model: SRModel, settings, source: Path, target: Path, bits: int = 8, box: bool = True,
                 alpha: str = "keep", tile: int = 64, overlap: int = 8,
                 device: torch.device | str = "cpu", operator=None,
                 max_megapixels: float | None = None, progress: bool = False, raw: Path | None = None) -> list[str]:
    """`affsr upscale`: read ``source``, super-resolve, make the output consistent in [0, 1] (``box``; see
    :mod:`affsr.upscaling.consistency`), write ``target`` in the format its extension names (and the float
    output to ``raw``, a .npy, if given). Returns the lines to print (``note:`` lines, then a summary
    with the round trip at the input's depth). ``operator``: the :class:`~affsr.config.OperatorConfig`
    of the A that made ``source`` (default: the model's, as its checkpoint records it).

    The HR image is never whole in memory: the raw output goes to a work file beside ``target``
    (:mod:`affsr.upscaling.disk`), the projections keep LR-grid state, and the samples are written a
    band of rows at a time; the circular boundary is local, the reflect boundary is held in memory."""
    from affsr.operators.kinds import build_operator

    ext, bits = check_output(target), output_bits(target, bits)
    if raw is not None and check_output(raw) != ".npy":
        raise DataError(f"{raw}: --raw writes the float output as a NumPy array: give a name ending in .npy")
    check_size(source, int((operator or settings.operator).scale), max_megapixels or MAX_MEGAPIXELS["upscale"], "upscale")
    image = read_user_image(source)
    lr, note_channels = to_channels(image.pixels, model.generator.channels)
    bits_in, alpha_plane = image.bits, image.alpha
    del image  # its pixels: lr holds them, as (C, h, w)
    op = build_operator(operator or settings.operator)
    check_tiling(model, op, tile, overlap)
    try:
        op.lr_shape(op.hr_shape(lr.shape))  # A applies to the output (an image smaller than A's kernel does not)
    except ValueError as err:  # e.g. an image whose HR size is below the kernel of A
        raise DataError(f"{source}: {err}") from None
    notes = [note_channels]
    channels, h, w = lr.shape
    s = int(op.scale)
    shape = (channels, s * h, s * w)
    keep_alpha = alpha_plane is not None and alpha == "keep" and ext != ".npy"
    planes = channels + keep_alpha
    sample_bytes = np.dtype(_DTYPES[bits]).itemsize
    needed = s * h * s * w * (8 * channels + 2 * planes * sample_bytes + (8 * channels if raw else 0))
    with work_folder(target, needed) as work:
        f = DiskImage(work / "f.bin", shape)
        for top, rows in raw_bands(model, lr, tile, overlap, device, s):
            if not np.isfinite(rows).all():  # never write an image of NaN (e.g. a model whose weights overflow)
                raise CheckpointError(f"the model gave non-finite values ({int((~np.isfinite(rows)).sum())} in output "
                                      f"rows {top}–{top + rows.shape[1] - 1}) for {source}: nothing written to {target}")
            f.write(top, rows)
        give_back_memory()
        affine = box or settings.constraint in ("projected", "projected_box")
        if op.boundary == "circular":
            source_f, u = f, (affine_state(op, f, lr) if affine else None)
        else:  # the reflect boundary's A⁺ is not local: this image is held in memory
            whole = f.rows(np.arange(shape[1])).numpy()
            source_f, u = InMemory(torch.from_numpy(affine_projection(op, whole, lr) if affine else whole)), None
        x = torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float64))
        give_back_memory()
        if bits < bits_in:
            notes.append(f"the output ({_depth(bits)}) is coarser than the input ({_depth(bits_in)}): rounding it "
                         f"moves A ŷ by more than the input's step, so the round trip holds at {_depth(bits)} only; "
                         "use --bits 16, .tif or .npy to keep it at the input's depth")
        out = DiskImage(work / "out.bin", (planes,) + shape[1:], _DTYPES[bits])
        floats = DiskImage(work / "raw.bin", shape, np.float32) if raw else None
        if box:
            result = make_consistent(op, source_f, u, lr, bits_in, bits, out, floats, progress=progress)
            float_error, outside = result.float_error, result.projection.clipped_before
            width = (f"|Aŷ − x| ≤ {255 * result.delta:.3g} grey levels (of 255) for a {_depth(min(bits_in, bits))} round trip"
                     if result.delta else "A ŷ = x exactly (a float input)")
            notes.append(f"{result.projection.summary()}; set: {width}, in [0, 1]"
                         + (f"; {result.rounds - 1} re-solve(s) for rows rounding broke" if result.rounds > 1 else ""))
            if settings.constraint not in ("projected", "projected_box"):
                notes.append(f"the projection also made this {settings.constraint}-constraint model's output consistent")
            if result.empty:
                note(f"{source}: no image in [0, 1] downsamples to this input within the interval (proven by the "
                     "solver's certificate): it was not made by this A, or was edited; the output is in [0, 1] and as "
                     "close as the solver got — try --operator with the A that made it")
            elif not result.projection.converged:
                notes.append("the projection did not converge: the output is in [0, 1] but consistent only to the "
                             "violation above")
        else:
            outside = 0
            for first, end in bands(h):  # ŷ as it is; the file clips it to [0, 1]
                y = v_rows(op, source_f, u, np.arange(first, end)).numpy()
                outside += int(((y < 0) | (y > 1)).sum())
                for c in range(channels):
                    out.channel(c).write(s * first, file_values(y[c:c + 1], bits))
                if floats is not None:
                    floats.write(s * first, y)
            float_error = float(lr_errors(op, source_f, u, x).abs().max())
            notes.append(f"no box projection: {outside} of {f.shape[0] * f.shape[1] * f.shape[2]} values lie outside "
                         "[0, 1] and are clipped in the file")
        if alpha_plane is not None:
            if keep_alpha:
                for top, rows in alpha_bands(op, alpha_plane):
                    out.channel(channels).write(top, file_values(rows[None], bits))
                notes.append("alpha channel upscaled with plain cubic interpolation (not the model) and written back")
            else:
                notes.append(f"alpha channel dropped ({'--alpha drop' if alpha == 'drop' else ext + ' holds no alpha'})")
        round_trip = _round_trip(op, out, x, min(bits_in, bits), bits)
        if floats is not None:
            write_samples(raw, floats)
        write_samples(target, out, alpha=keep_alpha)
    summary = (f"upscaled {source} {w}×{h} → {target} {s * w}×{s * h} "
               f"({settings.method}, {settings.constraint}); max |Aŷ − x| = {255 * float_error:.2g} grey levels "
               f"(of 255) in float, {round_trip} after {_depth(bits)} quantisation; "
               f"{outside} values would have been clipped without the box projection")
    return [f"note: {n}" for n in notes if n] + [summary]


def _round_trip(op: Downsampling, out: DiskImage, x: torch.Tensor, bits_in: int, bits_out: int) -> str:
    """max |A ŷ − x| of the saved samples (``out``'s colour planes, a channel at a time) in grey levels of
    255, and for an integer input how many levels (of its own depth) the round trip — downsampled,
    rounded to that depth — is off by."""
    scale = 1.0 if bits_out >= 32 else 1.0 / (2.0**bits_out - 1)
    ay = torch.cat([lr_errors(op, out.channel(c), None, torch.zeros_like(x[c:c + 1]), lambda v: v * scale)
                    for c in range(len(x))])
    text = f"{255 * float((ay - x).abs().max()):.2g}"
    if bits_in < 32:
        top = 2.0**bits_in - 1
        levels = int((torch.round(ay.clamp(0, 1) * top) - torch.round(x * top)).abs().max())  # x at that depth
        text += f" (round trip at {bits_in} bits off by {levels} level{'s' * (levels != 1)})"
    return text


def downsample_file(op: Downsampling, source: Path, target: Path, bits: int = 8,
                    max_megapixels: float | None = None) -> tuple[np.ndarray, list[str]]:
    """`affsr downsample`: x = A y of ``source`` written to ``target`` (format by extension); (x, lines)."""
    bits = output_bits(target, bits)
    check_size(source, 1, max_megapixels or MAX_MEGAPIXELS["downsample"], "downsample")
    image = read_user_image(source)
    hr, _ = to_channels(image.pixels, 1 if image.pixels.ndim == 2 else 3)
    try:
        x, crop_note = downsample(op, hr)
    except ValueError as err:  # e.g. an image smaller than the kernel of A
        raise DataError(f"{source}: {err}") from None
    write_output(target, x, bits=bits)
    dropped = "alpha channel dropped (A is applied to the colour planes only)" if image.alpha is not None else ""
    return x, [f"note: {n}" for n in (crop_note, dropped) if n] + [
        f"downsampled {source} → {target} {x.shape[2]}×{x.shape[1]} with {op!r}"]
