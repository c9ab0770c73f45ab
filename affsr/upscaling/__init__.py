"""Users' own images: `affsr upscale` and `affsr downsample`.

* :mod:`~affsr.upscaling.files` — reading any image file with its bit depth and alpha, size checks from
  the header, writing PNG (8/16-bit), TIFF and .npy atomically;
* :mod:`~affsr.upscaling.tiles` — the generator over overlapping LR tiles and one affine projection for
  the whole image; A applied to a user's HR image;
* :mod:`~affsr.upscaling.consistency` — the projection onto the set the saved file needs (every LR row
  within half an input step, in [0, 1]) and the check of the rounded output;
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
