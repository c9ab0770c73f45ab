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
from affsr.upscaling.consistency import grey_levels_off, make_consistent
from affsr.upscaling.files import (MAX_MEGAPIXELS, check_output, check_size, output_bits, quantise,
                                   read_user_image, write_output)
from affsr.upscaling.tiles import affine_projection, apply_a, downsample, to_channels, upscale, upscale_alpha

__all__ = ["upscale_file", "downsample_file"]


def _depth(bits: int) -> str:
    return "float" if bits >= 32 else f"{bits}-bit"


def upscale_file(model: SRModel, settings, source: Path, target: Path, bits: int = 8, box: bool = True,
                 alpha: str = "keep", tile: int = 64, overlap: int = 8,
                 device: torch.device | str = "cpu", operator=None,
                 max_megapixels: float | None = None, progress: bool = False) -> tuple[np.ndarray, list[str]]:
    """`affsr upscale`: read ``source``, super-resolve, make the output consistent in [0, 1] (``box``; see
    :mod:`affsr.upscaling.consistency`), write ``target`` in the format its extension names. Returns the
    float result (C, H, W) and the lines to print (``note:`` lines, then a summary with the round trip at
    the input's depth). ``operator``: the :class:`~affsr.config.OperatorConfig` of the A that made
    ``source`` (default: the model's, as its checkpoint records it)."""
    from affsr.operators.kinds import build_operator

    ext, bits = check_output(target), output_bits(target, bits)
    check_size(source, int((operator or settings.operator).scale), max_megapixels or MAX_MEGAPIXELS, "upscale")
    image = read_user_image(source)
    lr, note_channels = to_channels(image.pixels, model.generator.channels)
    op = build_operator(operator or settings.operator)
    notes = [note_channels]
    try:
        op.lr_shape(op.hr_shape(lr.shape))  # A applies to the output (an image smaller than A's kernel does not)
        sr = upscale(model, lr, tile=tile, overlap=overlap, device=device, op=op, affine=False)
    except ValueError as err:  # e.g. an image whose HR size is below the kernel of A
        raise DataError(f"{source}: {err}") from None
    if not np.isfinite(sr).all():  # never write an image of NaN (e.g. a model whose weights overflow)
        raise CheckpointError(f"the model gave non-finite values ({int((~np.isfinite(sr)).sum())} of {sr.size}) "
                              f"for {source}: nothing written to {target}")
    if box or settings.constraint in ("projected", "projected_box"):
        sr = affine_projection(op, sr, lr)
    outside = int(((sr < 0) | (sr > 1)).sum())
    if bits < image.bits:
        notes.append(f"the output ({_depth(bits)}) is coarser than the input ({_depth(image.bits)}): rounding it "
                     f"moves A ŷ by more than the input's step, so the round trip holds at {_depth(bits)} only; "
                     "use --bits 16, .tif or .npy to keep it at the input's depth")
    if box:
        result = make_consistent(op, sr, lr, image.bits, bits, progress=progress)
        sr = result.image
        width = (f"|Aŷ − x| ≤ {255 * result.delta:.3g} grey levels (of 255) for a {_depth(min(image.bits, bits))} round trip"
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
        notes.append(f"no box projection: {outside} of {sr.size} values lie outside [0, 1] and are clipped in the file")
    plane = image.alpha
    if plane is not None:
        if alpha == "keep" and ext != ".npy":
            plane = upscale_alpha(op, plane)
            notes.append("alpha channel upscaled with plain cubic interpolation (not the model) and written back")
        else:
            notes.append(f"alpha channel dropped ({'--alpha drop' if alpha == 'drop' else ext + ' holds no alpha'})")
            plane = None
    write_output(target, sr, bits=bits, alpha=plane)
    summary = (f"upscaled {source} {lr.shape[2]}×{lr.shape[1]} → {target} {sr.shape[2]}×{sr.shape[1]} "
               f"({settings.method}, {settings.constraint}); max |Aŷ − x| = "
               f"{255 * grey_levels_off(op, sr, lr).max():.2g} grey levels (of 255) in float, "
               f"{_round_trip(op, sr, lr, min(image.bits, bits), bits)} after {_depth(bits)} quantisation; "
               f"{outside} values would have been clipped without the box projection")
    return sr, [f"note: {n}" for n in notes if n] + [summary]


def _round_trip(op: Downsampling, image: np.ndarray, lr: np.ndarray, bits_in: int, bits_out: int) -> str:
    """max |A ŷ − x| of the saved image (``image`` rounded to ``bits_out``, a channel at a time) in grey
    levels of 255, and for an integer input how many levels
    (of its own depth) the round trip — downsampled, rounded to that depth — is off by."""
    ay = np.concatenate([apply_a(op, quantise(plane, bits_out)) for plane in np.split(image, len(image))])
    text = f"{255 * np.abs(ay - lr).max():.2g}"
    if bits_in < 32:
        top = 2.0**bits_in - 1
        levels = int(np.abs(np.rint(np.clip(ay, 0, 1) * top) - np.rint(lr * top)).max())  # x at that depth
        text += f" (round trip at {bits_in} bits off by {levels} level{'s' * (levels != 1)})"
    return text


def downsample_file(op: Downsampling, source: Path, target: Path, bits: int = 8,
                    max_megapixels: float | None = None) -> tuple[np.ndarray, list[str]]:
    """`affsr downsample`: x = A y of ``source`` written to ``target`` (format by extension); (x, lines)."""
    bits = output_bits(target, bits)
    check_size(source, 1, max_megapixels or MAX_MEGAPIXELS, "downsample")
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
