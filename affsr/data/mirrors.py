"""Fetch one file from one mirror into ``<dest>.part``: resumed, retried, and refused when it is not the file.

Why this module exists: the real mirrors of the study's archives fail in ways a plain HTTP client cannot
tell from success. Google Drive answers a large file with an HTML "can't scan for viruses" page that
needs a confirm step, and with a "quota exceeded" page once too many people downloaded it that day; a
moved university page answers 404 or an HTML error page with status 200; a connection drops mid-way
through 1.4 GB. So, for one mirror (:func:`fetch_mirror`):

* bytes stream into the part file; a retry asks for the rest with ``Range: bytes=<size>-`` and appends
  on ``206``; a ``200`` starts over. Network failures (refused, timeout, early close, HTTP 5xx / 429) are
  retried with exponential backoff; an attempt that brought new bytes does not use up a retry;
* an HTML page where an archive is expected (``Content-Type: text/html``, or a body starting with
  ``<!DOCTYPE html`` / ``<html``) is never written; the mirror fails with a one-line reason (Drive's
  quota page is recognised as such);
* a server that announces another total size than the pinned one (``Content-Length`` /
  ``Content-Range``) fails the mirror before its body is read, and the part file is kept for the next;
* ``gdrive:<id>`` mirrors first ask Drive for the file, follow its confirm form (or the older
  ``confirm=`` link / ``download_warning`` cookie) and then download like any other url.

A mirror that cannot deliver raises :class:`MirrorFailed`; :mod:`affsr.data.download` then tries the next one
and checks the checksums. Standard library only.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from tqdm import tqdm

__all__ = ["GDRIVE_URL", "Expected", "MirrorFailed", "fetch_mirror", "gdrive_id"]

#: Drive's download endpoint (``drive.google.com/uc?export=download`` redirects here). Tests pass a local one.
GDRIVE_URL = "https://drive.usercontent.google.com/download"
_USER_AGENT = "affsr-download/1 (+python urllib)"  # some hosts refuse urllib's default agent
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)
_HTML_START = (b"<!doctype html", b"<html")
_PAGE_LIMIT = 1 << 20  # an HTML page is read up to this many bytes to say what it is
_QUOTA_TEXT = "too many users have viewed or downloaded this file recently"


class MirrorFailed(Exception):
    """This mirror cannot deliver the file (HTTP 4xx, an HTML page, another size, unreachable after the
    retries, a checksum mismatch): try the next one. ``str()`` is a one-line reason; ``kind`` marks the
    failures whose remedy differs: ``"quota"`` (Google Drive's daily download quota: wait, or use a
    browser) and ``"checksum"`` (the file itself differs: check params.yaml)."""

    def __init__(self, reason: str, *, kind: str = "") -> None:
        super().__init__(reason)
        self.kind = kind

    @property
    def quota(self) -> bool:
        return self.kind == "quota"


class _Retry(Exception):
    """A failure worth another attempt at the same mirror (network trouble, server overload)."""


@dataclass
class Expected:
    """What the file must be, shared by all mirrors of one download: ``size`` pinned in params (0: not
    pinned) and ``total``, the size the first mirror announced, so a part file is resumed from another
    mirror only when both agree on the size."""

    size: int = 0
    total: int | None = None

    def __post_init__(self) -> None:
        self.total = self.size or self.total


def gdrive_id(url: str) -> str:
    """The file id of a ``gdrive:<id>`` mirror, "" for any other url."""
    return url[len("gdrive:"):] if url.startswith("gdrive:") else ""


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _looks_like_html(start: bytes) -> bool:
    return start.lstrip()[:16].lower().startswith(_HTML_START)


def _page_problem(page: bytes) -> MirrorFailed:
    """Why an HTML page came instead of the file, in one line (Drive's quota page recognised)."""
    text = page.decode("utf-8", "replace")
    if _QUOTA_TEXT in text.lower() or "quota exceeded" in text.lower():
        return MirrorFailed("Google Drive refused: download quota exceeded ('Too many users have viewed or "
                            "downloaded this file recently')", kind="quota")
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    title = " ".join(title[1].split())[:80] if title else ""
    return MirrorFailed(f"received an HTML page{f' ({title!r})' if title else ''} instead of the file")


class _ConfirmForm(HTMLParser):
    """Drive's virus-scan warning page: the ``download-form`` (action + hidden inputs) and any link with a
    ``confirm=`` parameter (the page's older form)."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.links: list[str] = []
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == "download-form":
            self._in_form, self.action = True, a.get("action", "")
        elif tag == "input" and self._in_form and a.get("type") == "hidden" and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "a" and "confirm=" in a.get("href", ""):
            self.links.append(a["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def _confirm_url(page: bytes, page_url: str, cookies: http.cookiejar.CookieJar) -> str | None:
    """The url that downloads the file past Drive's warning page, or None if the page has none."""
    form = _ConfirmForm()
    form.feed(page.decode("utf-8", "replace"))
    if form.action is not None and form.fields:
        action = urllib.parse.urljoin(page_url, form.action)
        return f"{action}{'&' if '?' in action else '?'}{urllib.parse.urlencode(form.fields)}"
    if form.links:
        return urllib.parse.urljoin(page_url, form.links[0])
    for cookie in cookies:  # the oldest form: the token in a download_warning_* cookie
        if cookie.name.startswith("download_warning"):
            return f"{page_url}&confirm={urllib.parse.quote(cookie.value or '')}"
    return None


def _http_error(err: urllib.error.HTTPError) -> Exception:
    """A failure worth retrying (5xx, 429) or the mirror's end (other 4xx; an HTML body explained)."""
    if err.code >= 500 or err.code == 429:
        return _Retry(f"HTTP {err.code} {err.reason}")
    body = b""
    if "html" in (err.headers.get("Content-Type") or "").lower():
        try:
            body = err.read(_PAGE_LIMIT)
        except (OSError, http.client.HTTPException):
            pass
    err.close()
    if body and (problem := _page_problem(body)).quota:
        return problem
    return MirrorFailed(f"HTTP {err.code} {err.reason}")


def _open(opener: urllib.request.OpenerDirector, url: str, headers: dict[str, str], timeout: float):
    """Open url; HTTP errors and network failures become :class:`_Retry` / :class:`MirrorFailed`."""
    try:
        return opener.open(urllib.request.Request(url, headers={"User-Agent": _USER_AGENT, **headers}),
                           timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416:  # Range not satisfiable: only the caller knows what it asked for
            raise
        raise _http_error(err) from err
    except (OSError, http.client.HTTPException) as err:  # URLError, refused, reset, timeout, bad status
        if urllib.parse.urlsplit(url).scheme == "file":
            raise MirrorFailed(f"could not read {urllib.parse.unquote(urllib.parse.urlsplit(url).path)}: "
                               f"{getattr(err, 'reason', err)}") from err
        raise _Retry(f"{type(err).__name__}: {getattr(err, 'reason', err)}") from err


def _drive_url(file_id: str, opener: urllib.request.OpenerDirector, jar: http.cookiejar.CookieJar, base: str,
               timeout: float) -> str:
    """The url that serves Drive file ``file_id``: Drive's own when it sends the file at once (small
    files), else the confirm url from its virus-scan warning page."""
    page_url = f"{base}?{urllib.parse.urlencode({'id': file_id, 'export': 'download'})}"
    with _open(opener, page_url, {}, timeout) as response:
        if "html" not in (response.headers.get("Content-Type") or "").lower():
            return page_url  # the file itself: fetched again below, with Range
        try:
            page = response.read(_PAGE_LIMIT)
        except (OSError, http.client.HTTPException) as err:
            raise _Retry(f"{type(err).__name__} reading Drive's page: {err}") from err
    problem = _page_problem(page)
    if problem.quota:
        raise problem
    url = _confirm_url(page, page_url, jar)
    if url is None:
        raise MirrorFailed(f"{problem}, with no download link: the file may not be shared publicly, or "
                           f"Drive changed its page")
    return url


def _content_range(value: str | None) -> tuple[int, int | None] | None:
    """``(start, total)`` from ``Content-Range: bytes start-end/total`` (total None if ``*``)."""
    match = _CONTENT_RANGE.fullmatch((value or "").strip())
    if match is None:
        return None
    return int(match[1]), None if match[3] == "*" else int(match[3])


def _check_total(total: int | None, expected: Expected, part: Path, *, resuming: bool) -> None:
    """Refuse a server whose file has another size than the pinned one (before its body is read); when
    ``resuming`` a part file and the size differs from what an earlier mirror announced, the part is not
    this server's file: start over."""
    if total is None:
        return
    if expected.size and total != expected.size:
        raise MirrorFailed(f"the server's file has {total} bytes, but download.size is {expected.size}")
    before, expected.total = expected.total, total
    if resuming and before is not None and total != before:
        part.unlink(missing_ok=True)
        raise _Retry(f"the server's file has {total} bytes, not {before} as before; starting over")


def _fetch(url: str, part: Path, expected: Expected, opener: urllib.request.OpenerDirector, *, timeout: float,
           chunk_size: int, bar: tqdm) -> None:
    """One attempt: bring ``part`` to the complete body, resuming from its current size where possible."""
    is_http = urllib.parse.urlsplit(url).scheme.lower() != "file"
    offset = _size(part) if is_http else 0  # file:// has no Range support: copying again is cheap
    try:
        response = _open(opener, url, {"Range": f"bytes={offset}-"} if offset else {}, timeout)
    except urllib.error.HTTPError as err:  # 416: we asked past the end of the server's file
        err.close()
        span = (err.headers.get("Content-Range") or "").rpartition("/")[2].strip()
        _check_total(int(span) if span.isdigit() else None, expected, part, resuming=False)
        if span.isdigit() and int(span) == offset:  # complete: the checksum decides
            return
        part.unlink(missing_ok=True)  # longer than the server's file: not this file
        raise _Retry(f"HTTP 416 for bytes={offset}- (server size {span or 'unknown'}); starting over") from err
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
        if "text/html" in (response.headers.get("Content-Type") or "").lower():
            raise _page_problem(_read(response, _PAGE_LIMIT, 0))
        first = _read(response, chunk_size, start)
        if not start and _looks_like_html(first):  # checked before the part file is truncated
            raise _page_problem(first + _read(response, _PAGE_LIMIT, len(first)))
        _check_total(total, expected, part, resuming=bool(start))  # an HTML page's size is no evidence
        bar.reset(total=total)
        bar.update(start)
        received = 0
        with open(part, "ab" if start else "wb") as handle:
            chunk = first
            while chunk:
                handle.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
                chunk = _read(response, chunk_size, start + received)
    # http.client's read(n) returns b"" when the connection closes early, so count bytes ourselves.
    if length is not None and received < length:
        raise _Retry(f"connection closed after {start + received} of {start + length} bytes")
    size, total = _size(part), total or expected.size or None
    if total is not None and size != total:  # e.g. a part file left from another version of the file
        if size > total:
            part.unlink()
            if expected.size:  # more bytes than the pinned size: this server sends another file
                raise MirrorFailed(f"the server sent {size} bytes, but download.size is {expected.size}")
        raise _Retry(f"{part} held {size} bytes, but the file has {total}")


def _read(response: http.client.HTTPResponse, n: int, at: int) -> bytes:
    try:
        return response.read(n)
    except (OSError, http.client.HTTPException) as err:  # reset, timeout, IncompleteRead
        raise _Retry(f"{type(err).__name__} after {at} bytes: {err}") from err


def fetch_mirror(url: str, part: Path, expected: Expected, *, retries: int, timeout: float, backoff: float,
                 chunk_size: int, bar: tqdm, gdrive_url: str = GDRIVE_URL) -> None:
    """Bring ``part`` to the complete file from one mirror, retrying network failures.

    Args:
        url: ``http(s)://``, ``file://`` or ``gdrive:<id>``.
        part: the partial file; resumed from when the server supports ``Range``, kept on failure.
        expected: the pinned size and the size announced so far (updated).
        retries: attempts after the first without new bytes before the mirror counts as unreachable.
        timeout: seconds without data (connect or read) before an attempt fails.
        backoff: the n-th consecutive retry waits ``backoff * 2**n`` seconds.
        chunk_size: bytes read and written per step.
        bar: the progress bar to update.
        gdrive_url: Drive's download endpoint (a local server in tests).

    Raises:
        MirrorFailed: this mirror cannot deliver the file; the reason is one line.
    """
    jar = http.cookiejar.CookieJar()  # carries Drive's cookies from its warning page to the confirm request
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    file_id = gdrive_id(url)
    attempts, failures, best = 0, 0, _size(part)
    while True:
        attempts += 1
        try:
            target = _drive_url(file_id, opener, jar, gdrive_url, timeout) if file_id else url
            _fetch(target, part, expected, opener, timeout=timeout, chunk_size=chunk_size, bar=bar)
            return
        except _Retry as err:
            last_error = err
        if _size(part) > best:  # progress: this retry is free and the failure streak starts over
            best, failures = _size(part), 0
        elif failures < retries:
            failures += 1
        else:
            raise MirrorFailed(f"still failing after {attempts} attempts (last error: {last_error})")
        time.sleep(backoff * 2 ** max(failures - 1, 0))
