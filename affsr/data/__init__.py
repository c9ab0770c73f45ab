"""The data: where images come from, how they are downloaded, cut and split, and the prepared sets.

* :mod:`~affsr.data.sources` — the registry of image sources (``datasets.<name>.source``);
* :mod:`~affsr.data.download`, :mod:`~affsr.data.mirrors` — a data set's archive from its mirrors;
* :mod:`~affsr.data.archives`, :mod:`~affsr.data.image_collections`, :mod:`~affsr.data.image_files` —
  images inside zip archives and folders, and one image file decoded and cut to HR;
* :mod:`~affsr.data.patches`, :mod:`~affsr.data.splits` — patches from a few large images, and train / val /
  test splits that share no source pixel;
* :mod:`~affsr.data.prepare` — ``affsr prepare``: (LR, HR) sets made with A; :mod:`~affsr.data.load` —
  reading them back.
"""

from affsr.lazy_exports import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "SourceSpec": "sources",
    "SOURCES": "sources",
    "spec_for": "sources",
    "download_dataset": "download",
    "MANIFEST_NAME": "load",
    "load_split": "load",
    "hr_to_float": "load",
    "load_positions": "load",
    "load_manifest": "load",
    "band_ranges": "splits",
    "random_split": "splits",
    "decode_image": "image_files",
    "crop_resize": "image_files",
    "ImageCollection": "image_collections",
    "ArrayImages": "image_collections",
    "FolderImages": "image_collections",
})
