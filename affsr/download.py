"""Download one file (a dataset archive) robustly: resumable, retried, checksum-verified, atomic.

Why this module exists: the data sets behind the study (the CelebA archive is about 1.4 GB) come from
servers and links that drop connections, throttle, or answer with an HTML error page. A rerun after any
of that must neither start from zero nor accept a truncated or wrong file. So:

* bytes stream into ``<dest>.part`` beside ``dest``; a rerun (or a retry) asks the server for the rest
  with ``Range: bytes=<size>-`` and appends when the server answers ``206``; a server without range support
  (``200``) makes us start over;
* network failures (refused connections, timeouts, early-closed bodies, HTTP 5xx / 429) are retried with
  exponential backoff; other HTTP errors (404, 403, ...) are not, since retrying cannot fix them;
* the complete file is checked against the SHA-256 (and MD5) pinned in ``params.yaml``; a mismatch removes
  the partial file, so the next run starts clean instead of resuming a corrupt one;
* only a verified file is moved onto ``dest`` (``os.replace``: atomic on POSIX), so ``dest`` existing means
  "complete and verified" to Snakemake, DVC and the next step.

Standard library only (plus tqdm for the progress bar); ``file://`` URLs work too, for users with a
pre-fetched archive.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from affsr.errors import DataError

__all__ = ["DownloadError", "download", "file_digest"]

_SCHEMES = ("http", "https", "file")
_HEX_LENGTH = {"sha256": 64, "md5": 32}
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)
_USER_AGENT = "affsr-download/1 (+python urllib)"  # some hosts refuse urllib's default agent


class DownloadError(DataError):
    """A download failed for good, or its result does not match the pinned checksum.

    A :class:`~affsr.errors.DataError` (hence a ``ValueError``), so the CLI reports it as one line; the
    message names the url and/or file and says what to do.
    """


class _Retry(Exception):
    """A failure worth retrying (network trouble, server overload); carries a one-line reason."""


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


def _expected(name: str, value: str, url: str) -> str:
    """Normalise a pinned checksum (strip, lower case) and reject a malformed one before downloading."""
    value = value.strip().lower()
    if value and not re.fullmatch(f"[0-9a-f]{{{_HEX_LENGTH[name]}}}", value):
        raise DownloadError(
            f"the {name} given for {url} is {value!r}, not {_HEX_LENGTH[name]} hex digits; "
            f"fix it in params.yaml (or leave it empty to print the digest of the downloaded file)"
        )
    return value


def _mismatches(actual: dict[str, str], wanted: dict[str, str]) -> list[str]:
    """``"sha256 expected E, got A"`` for every pinned checksum that ``actual`` does not match."""
    return [f"{name} expected {w}, got {actual[name]}" for name, w in wanted.items() if w != actual[name]]


def _warn_unpinned(url: str, path: Path, digest: str) -> None:
    """Trust on first use: accept the file but show its digest so the user can pin it."""
    print(
        f"affsr: warning: no sha256 is pinned for {url}; accepted {path} with sha256 {digest}. "
        f"Pin it in params.yaml (sha256: {digest}) so later downloads are verified.",
        file=sys.stderr,
    )


def _content_range(value: str | None) -> tuple[int, int | None] | None:
    """``(start, total)`` from a ``Content-Range: bytes start-end/total`` header (total None if ``*``)."""
    match = _CONTENT_RANGE.fullmatch((value or "").strip())
    if match is None:
        return None
    return int(match[1]), None if match[3] == "*" else int(match[3])


def _fetch(url: str, part: Path, *, timeout: float, chunk_size: int, bar: tqdm) -> None:
    """One attempt: bring ``part`` to the complete body, resuming from its current size where possible.

    Returns when the body is complete; raises :class:`_Retry` for failures worth another attempt and
    :class:`DownloadError` for ones that are not (HTTP 404, a missing local file, ...).
    """
    is_http = urllib.parse.urlsplit(url).scheme != "file"
    offset = _size(part) if is_http else 0  # file:// has no Range support: copying again is cheap
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and offset:
            # Range not satisfiable: we asked for bytes past the end. Complete if the server's total
            # (Content-Range: bytes */total) equals what we hold; otherwise the part is not this file.
            span = err.headers.get("Content-Range", "")
            total = span.rpartition("/")[2].strip()
            if total.isdigit() and int(total) == offset:
                return
            part.unlink(missing_ok=True)
            raise _Retry(f"HTTP 416 for bytes={offset}- (server size {total or 'unknown'}); starting over")
        if err.code >= 500 or err.code == 429:
            raise _Retry(f"HTTP {err.code} {err.reason}") from err
        raise DownloadError(
            f"could not download {url}: the server answered HTTP {err.code} {err.reason}; check the url "
            f"(in params.yaml) or download the file by hand and use a file:// url"
        ) from err
    except (OSError, http.client.HTTPException) as err:  # URLError, refused, reset, timeout, bad status
        if not is_http:
            raise DownloadError(f"could not read {url}: {getattr(err, 'reason', err)}") from err
        raise _Retry(f"{type(err).__name__}: {getattr(err, 'reason', err)}") from err

    with response:
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        span = _content_range(response.headers.get("Content-Range"))
        if response.status == 206 and offset:
            if span is None or span[0] != offset:
                part.unlink(missing_ok=True)
                got = response.headers.get("Content-Range")
                raise _Retry(f"server resumed at {got!r}, not at byte {offset}; starting over")
            start, total = span
        else:  # 200 (or file://): the whole body, whatever we asked for
            start, total = 0, length
        bar.reset(total=total)
        bar.update(start)
        received = 0
        with open(part, "ab" if start else "wb") as handle:
            while True:
                try:
                    chunk = response.read(chunk_size)
                except (OSError, http.client.HTTPException) as err:  # reset, timeout, IncompleteRead
                    raise _Retry(f"{type(err).__name__} after {start + received} bytes: {err}") from err
                if not chunk:
                    break
                handle.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    # http.client's read(n) returns b"" when the connection closes early, so count bytes ourselves.
    if length is not None and received < length:
        raise _Retry(f"connection closed after {start + received} of {start + length} bytes")
    size = _size(part)
    if total is not None and size != total:  # e.g. a part file left from another version of the file
        if size > total:
            part.unlink()
        raise _Retry(f"{part} held {size} bytes, but the server says the file has {total}")


def download(
    url: str,
    dest: Path | str,
    sha256: str = "",
    md5: str = "",
    *,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 1.0,
    chunk_size: int = 1 << 20,
    progress: bool = True,
) -> str:
    """Download url to dest; return the file's SHA-256 hex digest.

    Args:
        url: ``http(s)://`` or ``file://`` address of the file.
        dest: where the verified file ends up; parent folders are created. While downloading, bytes go
            to ``<dest>.part``, which a later call resumes from.
        sha256, md5: pinned hex digests (any case); empty means "not pinned". With ``sha256`` empty the
            file is accepted and its digest printed to stderr so it can be pinned (trust on first use).
        retries: how many times a failed attempt (network error, timeout, early close, HTTP 5xx / 429)
            is retried, each resuming from the partial file. An attempt that enlarged the partial file
            does not use up a retry: a long download over a flaky link keeps going while it progresses.
        timeout: seconds without data (connect or read) before an attempt counts as failed.
        backoff: the n-th consecutive retry waits ``backoff * 2**n`` seconds (n = 0, 1, ...).
        chunk_size: bytes read and written per step.
        progress: show a tqdm progress bar on stderr.

    Returns:
        The lower-case SHA-256 hex digest of ``dest``.

    Raises:
        DownloadError: the url is unusable, the server refused (HTTP 4xx) or stayed unreachable, the
            result does not match ``sha256``/``md5``, or ``dest`` already exists with other content.
            Nothing unverified is ever left at ``dest``.
    """
    dest = Path(dest)
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in _SCHEMES:
        raise DownloadError(f"cannot download {url!r}: the url must start with http://, https:// or file://")
    wanted = {name: _expected(name, value, url) for name, value in (("sha256", sha256), ("md5", md5))}
    wanted = {name: value for name, value in wanted.items() if value}
    algorithms = ("sha256", "md5") if "md5" in wanted else ("sha256",)

    if dest.exists():  # already downloaded (or placed there by the user): check it, never overwrite it
        actual = _digests(dest, algorithms)
        if bad := _mismatches(actual, wanted):
            raise DownloadError(
                f"{dest} already exists but does not match {url} ({'; '.join(bad)}); "
                f"delete it to re-download, or fix the checksum in params.yaml"
            )
        if not wanted:
            _warn_unpinned(url, dest, actual["sha256"])
        return actual["sha256"]

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _part_path(dest)
    attempts, failures, best = 0, 0, _size(part)
    with tqdm(
        desc=dest.name, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, disable=not progress
    ) as bar:
        while True:
            attempts += 1
            try:
                _fetch(url, part, timeout=timeout, chunk_size=chunk_size, bar=bar)
                break
            except _Retry as err:
                last_error = err
            if _size(part) > best:  # progress: this retry is free and the failure streak starts over
                best, failures = _size(part), 0
            elif failures < retries:
                failures += 1
            else:
                got = _size(part)
                if not got:
                    part.unlink(missing_ok=True)
                kept = (
                    f"the {got} bytes received are kept in {part}, so rerunning resumes from there"
                    if got
                    else "no bytes were received; check the url and the network connection"
                )
                raise DownloadError(
                    f"could not download {url} after {attempts} attempts (last error: {last_error}); {kept}"
                )
            time.sleep(backoff * 2 ** max(failures - 1, 0))

    actual = _digests(part, algorithms)
    if bad := _mismatches(actual, wanted):
        part.unlink()  # a corrupt part must not be resumed by the next run
        raise DownloadError(
            f"the file downloaded from {url} to {dest} does not match its pinned checksum "
            f"({'; '.join(bad)}); it was deleted. Check the url, or if the file legitimately changed, "
            f"update the sha256 in params.yaml"
        )
    if not wanted:
        _warn_unpinned(url, dest, actual["sha256"])
    os.replace(part, dest)
    return actual["sha256"]
