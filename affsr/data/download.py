"""Download one file (a dataset archive) from its mirrors: tried in order, resumable, checksum-verified, atomic.

Why this module exists: the data sets behind the study (the CelebA archive is about 1.4 GB) come from
servers that drop connections, throttle, refuse (Google Drive's daily quota), move, or answer with an HTML
page instead of the file. A rerun after any of that must neither start from zero nor accept a truncated
or wrong file, and one dead link must not stop the study. So:

* the mirrors in ``download.urls`` are tried in order; one that fails for good (HTTP 4xx, still
  unreachable after its retries, an HTML page, another size, a checksum mismatch) prints one
  ``affsr: note:`` line and the next is tried; when all fail, one :class:`DownloadError` names each
  mirror with its reason and says what to do. How one mirror is fetched (Range resume, retries, HTML
  pages, Drive's confirm step) is :mod:`affsr.data.mirrors`;
* bytes go to ``<dest>.part``, which the next mirror (or the next run) resumes when the sizes agree;
* the complete file is checked against the pinned size, SHA-256 and MD5; a mismatch removes the part
  file, so nothing corrupt is ever resumed;
* only a verified file is moved onto ``dest`` (``os.replace``: atomic on POSIX), so ``dest`` existing
  means "complete and verified" to Snakemake, DVC and the next step. A file the user put at ``dest`` by
  hand is checked, never overwritten.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from affsr.config.data import DatasetConfig, DownloadConfig
from affsr.data.mirrors import GDRIVE_URL, Expected, MirrorFailed, fetch_mirror, gdrive_id
from affsr.errors import ConfigError, DataError, note

__all__ = ["DownloadError", "download", "download_dataset", "file_digest"]

_HEX_LENGTH = {"sha256": 64, "md5": 32}


class DownloadError(DataError):
    """A download failed for good, or its result does not match the pinned checksum.

    A :class:`~affsr.errors.DataError` (hence a ``ValueError``), so the CLI reports it as one line; the
    message names the mirrors and/or file and says what to do.
    """


def _part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _digests(path: Path, algorithms: tuple[str, ...]) -> dict[str, str]:
    """Hex digests of ``path`` for several algorithms in one pass over the file (it may be gigabytes)."""
    hashes = {name: hashlib.new(name) for name in algorithms}
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            for h in hashes.values():
                h.update(block)
    return {name: h.hexdigest() for name, h in hashes.items()}


def file_digest(path: Path | str, algorithm: str = "sha256") -> str:
    """Hex digest (lower case) of the file at ``path``, read in 1 MiB blocks so large archives fit in memory.

    ``algorithm`` is any name :func:`hashlib.new` knows (``"sha256"``, ``"md5"``, ...). Used to pin a
    checksum in ``params.yaml`` and to check a file already on disk.
    """
    return _digests(Path(path), (algorithm,))[algorithm]


def _expected(name: str, value: str, dest: Path) -> str:
    """Normalise a pinned checksum (strip, lower case) and reject a malformed one before downloading."""
    value = value.strip().lower()
    if value and not re.fullmatch(f"[0-9a-f]{{{_HEX_LENGTH[name]}}}", value):
        raise DownloadError(
            f"the {name} given for {dest.name} is {value!r}, not {_HEX_LENGTH[name]} hex digits; "
            f"fix it in params.yaml (or leave it empty to print the digest of the downloaded file)"
        )
    return value


def _mismatches(path: Path, size: int, wanted: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """(digests, problems): ``"sha256 expected E, got A"`` for every pinned value the file does not match.
    The size is compared first, so a wrong file of 1.4 GB is refused without hashing it."""
    if size and _size(path) != size:
        return {}, [f"size expected {size} bytes, got {_size(path)}"]
    actual = _digests(path, ("sha256", "md5") if "md5" in wanted else ("sha256",))
    return actual, [f"{name} expected {w}, got {actual[name]}" for name, w in wanted.items() if w != actual[name]]


def _warn_unpinned(url: str, path: Path, digest: str) -> None:
    """Trust on first use: accept the file but show its digest so the user can pin it."""
    print(
        f"affsr: warning: no sha256 is pinned for {path.name} (from {url}); accepted {path} with sha256 "
        f"{digest}. Pin it in params.yaml (sha256: {digest}) so later downloads are verified.",
        file=sys.stderr,
    )


def _all_failed(dest: Path, failures: list[tuple[str, MirrorFailed]]) -> DownloadError:
    """One line: each mirror with its reason, what was kept, and what the user can do."""
    if len(failures) == 1:
        tried = f"{failures[0][0]}: {failures[0][1]}"
    else:
        tried = "; ".join(f"mirror {i} {url}: {err}" for i, (url, err) in enumerate(failures, 1))
    part = _part_path(dest)
    kept = (f" The {_size(part)} bytes received are kept in {part}, so rerunning resumes from there."
            if _size(part) else "")
    by_hand = (f"download it by hand (e.g. in a browser) and put it at {dest}, where `affsr download` checks "
               f"it instead of downloading, or list a file:// url first in download.urls")
    if any(err.quota for _, err in failures):
        drive = next(gdrive_id(url) for url, err in failures if err.quota)
        advice = (f"Google Drive allows only so many downloads of a file a day: wait 24 h and rerun, or "
                  f"open https://drive.google.com/uc?id={drive}&export=download in a browser, then {by_hand}")
    elif any(err.kind == "checksum" for _, err in failures):
        advice = (f"check the urls in params.yaml, or if the file legitimately changed, update its checksum "
                  f"there; or {by_hand}")
    else:
        advice = f"check the urls in params.yaml and the network connection, or {by_hand}"
    return DownloadError(f"could not download {dest.name} to {dest} from any mirror ({tried}). "
                         f"{advice[0].upper()}{advice[1:]}.{kept}")


def download(
    urls: str | Sequence[str],
    dest: Path | str,
    sha256: str = "",
    md5: str = "",
    *,
    size: int = 0,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 1.0,
    chunk_size: int = 1 << 20,
    progress: bool = True,
    gdrive_url: str = GDRIVE_URL,
) -> str:
    """Download a file from the first of its mirrors that delivers it; return its SHA-256 hex digest.

    Args:
        urls: one url or several mirrors, tried in order: ``http(s)://``, ``file://`` or
            ``gdrive:<Google Drive file id>``.
        dest: where the verified file ends up; parent folders are created. While downloading, bytes go
            to ``<dest>.part``, which a later mirror or a later call resumes from.
        sha256, md5: pinned hex digests (any case); empty means "not pinned". With ``sha256`` empty the
            file is accepted and its digest printed to stderr so it can be pinned (trust on first use).
        size: the file's size in bytes; 0 means "not pinned". A mirror announcing another size is skipped.
        retries: per mirror, how many failed attempts (network error, timeout, early close, HTTP 5xx /
            429) in a row are retried, each resuming from the partial file; an attempt that enlarged the
            partial file does not use up a retry.
        timeout: seconds without data (connect or read) before an attempt counts as failed.
        backoff: the n-th consecutive retry waits ``backoff * 2**n`` seconds (n = 0, 1, ...).
        chunk_size: bytes read and written per step.
        progress: show a tqdm progress bar on stderr.
        gdrive_url: Google Drive's download endpoint (tests point it at a local server).

    Returns:
        The lower-case SHA-256 hex digest of ``dest``.

    Raises:
        DownloadError: a url is malformed, every mirror failed (each named with its reason), or ``dest``
            already exists with other content. Nothing unverified is ever left at ``dest``.
    """
    dest = Path(dest)
    urls = (urls,) if isinstance(urls, str) else tuple(urls)
    if not urls:
        raise DownloadError(f"no url to download {dest.name} from; list its mirrors in download.urls")
    for url in urls:
        if problem := DownloadConfig.url_problem(url):
            raise DownloadError(f"cannot download {dest.name}: {problem}")
    wanted = {name: _expected(name, value, dest) for name, value in (("sha256", sha256), ("md5", md5))}
    wanted = {name: value for name, value in wanted.items() if value}

    if dest.exists():  # already downloaded (or placed there by the user): check it, never overwrite it
        actual, bad = _mismatches(dest, size, wanted)
        if bad:
            raise DownloadError(f"{dest} already exists but is not the file of {urls[0]} ({'; '.join(bad)}); "
                                f"delete it to re-download, or fix the checksum in params.yaml")
        if not wanted:
            _warn_unpinned(urls[0], dest, actual["sha256"])
        return actual["sha256"]

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _part_path(dest)
    if size and _size(part) > size:  # longer than the file: cannot be the start of it
        part.unlink()
    expected, failures = Expected(size), []
    with tqdm(desc=dest.name, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
              disable=not progress) as bar:
        for i, url in enumerate(urls):
            try:
                fetch_mirror(url, part, expected, retries=retries, timeout=timeout, backoff=backoff,
                             chunk_size=chunk_size, bar=bar, gdrive_url=gdrive_url)
                actual, bad = _mismatches(part, size, wanted)
                if bad:
                    part.unlink()  # a corrupt part must not be resumed by the next mirror or run
                    raise MirrorFailed(f"the downloaded file does not match ({'; '.join(bad)}); it was deleted",
                                       kind="checksum")
            except MirrorFailed as err:
                failures.append((url, err))
                if i + 1 < len(urls):
                    note(f"mirror {i + 1} of {len(urls)} for {dest.name} failed ({url}: {err}); trying {urls[i + 1]}")
                continue
            if not wanted:
                _warn_unpinned(url, dest, actual["sha256"])
            os.replace(part, dest)
            return actual["sha256"]
    if not _size(part):
        part.unlink(missing_ok=True)
    raise _all_failed(dest, failures)


def download_dataset(name: str, ds: DatasetConfig, dest: Path, *, progress: bool = True) -> str:
    """``affsr download``: the file of data set ``name`` from its mirrors to ``dest``; its SHA-256.

    Raises ConfigError when the data set has nothing to download (a demo-study source), naming the key."""
    if not ds.download.urls:
        raise ConfigError(f"params.datasets.{name}.download.urls: data set '{name}' (source '{ds.source}') has "
                          "nothing to download in this study; the downloads are the paper scale's (a params "
                          "file with `study: paper`)")
    cfg = ds.download
    return download(cfg.urls, dest, cfg.sha256, cfg.md5, size=cfg.size, progress=progress)
