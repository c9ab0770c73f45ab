"""Users' own images: `affsr upscale` and `affsr downsample`.

* :mod:`~affsr.upscaling.files` — reading any image file with its bit depth and alpha, size checks from
  the header, writing PNG (8/16-bit), TIFF and .npy atomically, a band of rows at a time;
* :mod:`~affsr.upscaling.disk` — the output's work files (the raw network output, the samples), read and
  written by bands, so that an output is never whole in memory;
* :mod:`~affsr.upscaling.tiles` — the generator over overlapping LR tiles, handed on a band of rows at a
  time, and the affine projection as LR state; A applied to a user's HR image;
* :mod:`~affsr.upscaling.consistency` — the projection onto the set the saved file needs (every LR row
  within half an input step, in [0, 1]) and the check of the rounded output;
* :mod:`~affsr.upscaling.rounding` — the integer repair of rows rounding broke;
* :mod:`~affsr.upscaling.verbs` — the two commands on one file each.
"""

from affsr.lazy_exports import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "upscale_file": "verbs",
    "downsample_file": "verbs",
    "read_user_image": "files",
    "write_output": "files",
    "make_consistent": "consistency",
    "upscale": "tiles",
})
