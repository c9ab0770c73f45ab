"""Tests for affsr.data.download and affsr.data.mirrors against real HTTP servers on 127.0.0.1: resume, retries,
checksums, atomicity, and mirrors tried in order (dead mirrors, HTML pages, wrong sizes, Google Drive's
confirm and quota pages imitated locally).

Each server (``http.server`` in a background thread) supports ``Range`` and follows a per-request script,
so a test can make it drop connections mid-body, ignore ``Range``, fail with 5xx, answer 404 or send an
HTML page, and then check what the client really asked for (the ``Range`` headers) and what was sent.
"""

from __future__ import annotations

import hashlib
import io
import random
import re
import socket
import threading
import time
import urllib.parse
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from affsr.cli import main
from affsr.errors import DataError
from affsr.data.download import DownloadError, download, file_digest

CHUNK = 4096
FAST = dict(backoff=0.0, timeout=5.0, chunk_size=CHUNK, progress=False)


@pytest.fixture(scope="module")
def payload() -> bytes:
    """A zip archive of ~300 KB of random bytes (stored, so ~75 chunks of 4 KiB)."""
    rng = random.Random(0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("grass/a.bin", rng.randbytes(200_000))
        zf.writestr("grass/b.bin", rng.randbytes(100_000))
    return buf.getvalue()


ERROR_PAGE = b"<!DOCTYPE html><html><head><title>Page moved</title></head><body>gone</body></html>"
QUOTA_PAGE = (b"<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head><body>"
              b"<p class=\"uc-error-subcaption\">Too many users have viewed or downloaded this file recently. "
              b"Please try accessing the file again later.</p></body></html>")


@dataclass
class Script:
    """What a server does. ``actions`` are consumed one per request, then ``default`` applies.

    An action is ``"ok"``; an HTTP status to fail with (e.g. 500); ``("drop", n)``: send the full headers,
    then only ``n`` body bytes, then close the connection; ``("html", page)``: a ``200 text/html`` page;
    ``("html_as_zip", page)``: the page with an archive's Content-Type (caught by its first bytes);
    ``("html_status", code, page)``: an HTTP error whose body is the HTML page; ``"no_length"``: the
    file without Content-Length (its end is the closed connection).

    ``drive``: answer like Google Drive's download endpoint: a request without ``confirm`` gets the
    warning page ``drive`` names ("form": the download-form with hidden inputs, "cookie": a
    download_warning cookie and no form, "direct": the file itself, "nolink": a page without a link).
    """

    payload: bytes
    actions: list = field(default_factory=list)
    default: object = "ok"
    ignore_range: bool = False
    drive: str = ""
    ranges: list = field(default_factory=list)  # the Range header of every request (None if absent)
    sent: list = field(default_factory=list)  # body bytes sent per request
    paths: list = field(default_factory=list)  # the path and query of every request
    cookies: list = field(default_factory=list)  # the Cookie header of every request


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _page(self, status: int, page: bytes, content_type: str = "text/html; charset=utf-8") -> None:
        self.server.script.sent.append(0)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def do_GET(self) -> None:
        s: Script = self.server.script
        s.ranges.append(self.headers.get("Range"))
        s.paths.append(self.path)
        s.cookies.append(self.headers.get("Cookie"))
        if s.drive and self._drive_page(s):
            return
        action = s.actions.pop(0) if s.actions else s.default
        if isinstance(action, int):
            s.sent.append(0)
            self.send_error(action)
        elif isinstance(action, tuple) and action[0] == "html":
            self._page(200, action[1])
        elif isinstance(action, tuple) and action[0] == "html_as_zip":
            self._page(200, action[1], "application/zip")
        elif isinstance(action, tuple) and action[0] == "html_status":
            self._page(action[1], action[2])
        else:
            self._send_file(s, action)

    def _drive_page(self, s: Script) -> bool:
        """Drive's first answer (True if sent); the confirmed request falls through to the file."""
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if "confirm" in query or s.drive == "direct":
            return False
        form = (f'<form id="download-form" action="http://{self.headers["Host"]}/download" method="get">'
                '<input type="submit" id="uc-download-link" value="Download anyway"/>'
                f'<input type="hidden" name="id" value="{query["id"][0]}">'
                '<input type="hidden" name="export" value="download">'
                '<input type="hidden" name="confirm" value="t">'
                '<input type="hidden" name="uuid" value="0a1b-2c3d"></form>')
        head = "<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>"
        body = {"form": form, "cookie": "", "nolink": "", "quota": None}[s.drive]
        page = QUOTA_PAGE if body is None else (head + "Google Drive can't scan this file for viruses."
                                                + body + "</body></html>").encode()
        s.sent.append(0)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        if s.drive == "cookie":
            self.send_header("Set-Cookie", "download_warning_13058876669334088843_x=Zq7T; Path=/")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)
        return True

    def _send_file(self, s: Script, action: object) -> None:
        rng = s.ranges[-1]
        size, start = len(s.payload), 0
        match = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if match and not s.ignore_range:
            start = int(match[1])
            if start >= size:
                s.sent.append(0)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        else:
            self.send_response(200)
        body = s.payload[start:]
        self.send_header("Content-Type", "application/zip")
        if action != "no_length":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if isinstance(action, tuple):  # ("drop", n): HTTP/1.0, so returning closes the socket mid-body
            body = body[: action[1]]
        s.sent.append(len(body))  # recorded before writing: the client may finish before this thread resumes
        try:
            self.wfile.write(body)
        except OSError:  # the client refused the body (a wrong size) and closed the connection
            pass


@pytest.fixture
def serve(payload):
    """``serve(**script)`` starts one more live server and returns ``(url, script)``."""
    servers = []

    def start(name: str = "grass.zip", **script) -> tuple[str, Script]:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        httpd.script = Script(**{"payload": payload, **script})
        thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
        thread.start()
        servers.append((httpd, thread))
        return f"http://127.0.0.1:{httpd.server_address[1]}/{name}", httpd.script

    yield start
    for httpd, thread in servers:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def server(serve):
    """One live server: ``(url, script)``; the script may be changed before downloading."""
    return serve()


def _dead_url() -> str:
    """An url whose port nobody listens on: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/grass.zip"


def _notes(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("affsr: note:")]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _part(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


# ---- success and resume ---------------------------------------------------------------------------------


def test_success(server, payload, tmp_path):
    url, script = server
    dest = tmp_path / "deep" / "folder" / "grass.zip"  # parents are created
    md5 = hashlib.md5(payload).hexdigest()
    digest = download(url, dest, _sha(payload).upper(), md5, **{**FAST, "progress": True})  # case-insensitive
    assert dest.read_bytes() == payload
    assert digest == _sha(payload) == file_digest(dest)
    assert file_digest(dest, "md5") == hashlib.md5(payload).hexdigest()
    assert not _part(dest).exists()
    assert script.ranges == [None]
    assert zipfile.ZipFile(dest).namelist() == ["grass/a.bin", "grass/b.bin"]


def test_resume_after_dropped_connection(server, payload, tmp_path):
    url, script = server
    script.actions = [("drop", 100_000)]
    dest = tmp_path / "grass.zip"
    assert download(url, dest, _sha(payload), retries=2, **FAST) == _sha(payload)
    assert script.ranges == [None, "bytes=100000-"]
    assert script.sent == [100_000, len(payload) - 100_000]
    assert dest.read_bytes() == payload and not _part(dest).exists()


def test_resume_across_runs(server, payload, tmp_path):
    url, script = server
    dest = tmp_path / "grass.zip"
    half = len(payload) // 2
    _part(dest).write_bytes(payload[:half])  # left behind by a killed run
    download(url, dest, _sha(payload), **FAST)
    assert script.ranges == [f"bytes={half}-"]
    assert script.sent == [len(payload) - half]  # only the remainder travelled
    assert dest.read_bytes() == payload and not _part(dest).exists()


def test_server_ignoring_range_restarts(server, payload, tmp_path):
    url, script = server
    script.ignore_range = True
    dest = tmp_path / "grass.zip"
    _part(dest).write_bytes(payload[:1000])
    download(url, dest, _sha(payload), **FAST)
    assert script.ranges == ["bytes=1000-"] and script.sent == [len(payload)]  # 200: the whole body
    assert dest.read_bytes() == payload  # truncated and restarted, not appended


def test_complete_part_and_416_goes_to_verification(server, payload, tmp_path):
    url, script = server
    dest = tmp_path / "grass.zip"
    _part(dest).write_bytes(payload)  # killed after the last byte, before the rename
    assert download(url, dest, _sha(payload), **FAST) == _sha(payload)
    assert script.ranges == [f"bytes={len(payload)}-"] and script.sent == [0]
    assert dest.read_bytes() == payload and not _part(dest).exists()


def test_progressing_attempts_do_not_use_up_retries(server, payload, tmp_path):
    url, script = server
    script.actions = [("drop", 30_000)] * 6  # six drops, but each one brings new bytes
    dest = tmp_path / "grass.zip"
    download(url, dest, _sha(payload), retries=1, **FAST)
    assert dest.read_bytes() == payload
    assert script.ranges[1:] == [f"bytes={30_000 * k}-" for k in range(1, 7)]


# ---- checksums --------------------------------------------------------------------------------------------


def test_sha256_mismatch_leaves_nothing(server, payload, tmp_path):
    url, _ = server
    dest = tmp_path / "grass.zip"
    wrong = "0" * 64
    with pytest.raises(DownloadError) as info:
        download(url, dest, wrong, **FAST)
    msg = str(info.value)
    assert wrong in msg and _sha(payload) in msg and url in msg and str(dest) in msg and "params.yaml" in msg
    assert not dest.exists() and not _part(dest).exists()
    assert isinstance(info.value, DataError) and isinstance(info.value, ValueError)  # CLI's one-line error


def test_md5_checked_too(server, payload, tmp_path):
    url, _ = server
    dest = tmp_path / "grass.zip"
    with pytest.raises(DownloadError, match="md5 expected f{32}, got " + hashlib.md5(payload).hexdigest()):
        download(url, dest, _sha(payload), "F" * 32, **FAST)
    assert not dest.exists() and not _part(dest).exists()


def test_malformed_checksum_rejected_before_downloading(server, tmp_path):
    url, script = server
    with pytest.raises(DownloadError, match="not 64 hex digits"):
        download(url, tmp_path / "grass.zip", "abc123", **FAST)
    assert script.ranges == []


def test_unpinned_sha256_warns_with_digest(server, payload, tmp_path, capsys):
    url, _ = server
    dest = tmp_path / "grass.zip"
    assert download(url, dest, **FAST) == _sha(payload)
    err = capsys.readouterr().err
    assert _sha(payload) in err and "params.yaml" in err and "warning" in err
    assert dest.read_bytes() == payload


# ---- failures ---------------------------------------------------------------------------------------------


def test_unreachable_server(tmp_path):
    url = _dead_url()
    dest = tmp_path / "grass.zip"
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as info:
        download(url, dest, retries=2, backoff=0.0, timeout=1.0, progress=False)
    assert time.monotonic() - t0 < 5
    msg = str(info.value)
    assert url in msg and "3 attempts" in msg and "refused" in msg.lower()
    assert not dest.exists() and not _part(dest).exists()


def test_partial_bytes_kept_when_retries_run_out(server, payload, tmp_path):
    url, script = server
    script.actions, script.default = [("drop", 50_000)], 503
    dest = tmp_path / "grass.zip"
    with pytest.raises(DownloadError, match=r"after 4 attempts .*503.*50000 bytes .* kept in .*\.part"):
        download(url, dest, _sha(payload), retries=2, **FAST)
    assert _part(dest).read_bytes() == payload[:50_000] and not dest.exists()
    script.default = "ok"  # the rerun resumes
    download(url, dest, _sha(payload), **FAST)
    assert script.ranges[-1] == "bytes=50000-" and dest.read_bytes() == payload


def test_404_is_not_retried(server, tmp_path):
    url, script = server
    script.default = 404
    dest = tmp_path / "grass.zip"
    with pytest.raises(DownloadError, match=r"HTTP 404") as info:
        download(url, dest, retries=3, **FAST)
    assert url in str(info.value)
    assert len(script.ranges) == 1
    assert not dest.exists() and not _part(dest).exists()


def test_500_twice_then_ok(server, payload, tmp_path):
    url, script = server
    script.actions = [500, 500]
    dest = tmp_path / "grass.zip"
    assert download(url, dest, _sha(payload), retries=2, **FAST) == _sha(payload)
    assert len(script.ranges) == 3 and dest.read_bytes() == payload


# ---- an existing destination ------------------------------------------------------------------------------


def test_existing_dest_matching_is_not_downloaded(server, payload, tmp_path):
    url, script = server
    dest = tmp_path / "grass.zip"
    dest.write_bytes(payload)
    assert download(url, dest, _sha(payload), hashlib.md5(payload).hexdigest(), **FAST) == _sha(payload)
    assert script.ranges == []


def test_existing_dest_not_matching_is_left_alone(server, payload, tmp_path):
    url, script = server
    dest = tmp_path / "grass.zip"
    dest.write_bytes(b"the user's own file")
    with pytest.raises(DownloadError, match="already exists.*delete it") as info:
        download(url, dest, _sha(payload), **FAST)
    assert str(dest) in str(info.value) and _sha(b"the user's own file") in str(info.value)
    assert dest.read_bytes() == b"the user's own file"
    assert script.ranges == []


# ---- file:// urls -----------------------------------------------------------------------------------------


def test_file_url(payload, tmp_path):
    src = tmp_path / "prefetched.zip"
    src.write_bytes(payload)
    dest = tmp_path / "data" / "grass.zip"
    _part(dest).parent.mkdir()
    _part(dest).write_bytes(b"stale")  # no Range for file://: copied again from the start
    assert download(src.as_uri(), dest, _sha(payload), **FAST) == _sha(payload)
    assert dest.read_bytes() == payload and not _part(dest).exists()
    with pytest.raises(DownloadError, match="could not read"):  # a missing local file is not retried
        download((tmp_path / "no.zip").as_uri(), tmp_path / "x.zip", retries=3, backoff=9.0, progress=False)


# ---- mirrors, tried in order ------------------------------------------------------------------------------


@pytest.mark.parametrize("first", ["refused", "404"])
def test_dead_first_mirror_then_second(serve, payload, tmp_path, capsys, first):
    """A refused connection (after its retries) or a 404 (at once) moves on to the next mirror, with one note."""
    if first == "refused":
        dead, dead_script = _dead_url(), None
    else:
        dead, dead_script = serve(default=404)
    good, script = serve()
    dest = tmp_path / "grass.zip"
    assert download([dead, good], dest, _sha(payload), retries=1, **FAST) == _sha(payload)
    assert dest.read_bytes() == payload and script.ranges == [None]
    notes = _notes(capsys.readouterr().err)
    assert len(notes) == 1 and dead in notes[0] and good in notes[0] and "mirror 1 of 2" in notes[0]
    assert re.search("refused" if first == "refused" else "HTTP 404", notes[0], re.IGNORECASE), notes[0]
    if dead_script is not None:
        assert len(dead_script.ranges) == 1  # a 404 is not retried


@pytest.mark.parametrize("kind", ["html", "html_as_zip", "html_status"])
def test_html_page_instead_of_the_archive(serve, payload, tmp_path, capsys, kind):
    """An HTML page (by Content-Type, or by its first bytes) is never written as the archive; the partial
    file from before survives it and is resumed by the next mirror."""
    action = (kind, 403, ERROR_PAGE) if kind == "html_status" else (kind, ERROR_PAGE)
    html, _ = serve(default=action)
    good, script = serve()
    dest = tmp_path / "grass.zip"
    _part(dest).write_bytes(payload[:1000])
    download([html, good], dest, _sha(payload), **FAST)
    assert dest.read_bytes() == payload and script.ranges == ["bytes=1000-"]
    [note] = _notes(capsys.readouterr().err)
    reason = "HTTP 403" if kind == "html_status" else "HTML page ('Page moved') instead of the file"
    assert reason in note


def test_wrong_size_is_refused_before_the_body(serve, payload, tmp_path, capsys):
    other, other_script = serve(payload=payload + b"another version")
    good, _ = serve()
    dest = tmp_path / "grass.zip"
    download([other, good], dest, size=len(payload), **FAST)
    assert dest.read_bytes() == payload
    [note] = _notes(capsys.readouterr().err)
    assert f"has {len(payload) + 15} bytes, but download.size is {len(payload)}" in note
    assert len(other_script.ranges) == 1  # not retried


def test_wrong_size_of_the_only_mirror_and_of_a_file_in_place(server, payload, tmp_path):
    url, _ = server
    dest = tmp_path / "grass.zip"
    with pytest.raises(DownloadError, match="download.size is 7"):
        download(url, dest, size=7, **FAST)
    assert not dest.exists() and not _part(dest).exists()
    dest.write_bytes(payload)  # put there by hand: the size is checked before any hashing
    with pytest.raises(DownloadError, match=f"already exists.*size expected 7 bytes, got {len(payload)}"):
        download(url, dest, size=7, **FAST)


def test_final_size_checked_without_content_length(serve, payload, tmp_path, capsys):
    """A server that announces no size is checked after the body: too long fails that mirror at once."""
    longer, s1 = serve(payload=payload + b"trailing junk", default="no_length")
    good, _ = serve(default="no_length")
    dest = tmp_path / "grass.zip"
    download([longer, good], dest, size=len(payload), **FAST)
    assert dest.read_bytes() == payload and len(s1.ranges) == 1
    [note] = _notes(capsys.readouterr().err)
    assert f"sent {len(payload) + 13} bytes, but download.size is {len(payload)}" in note


def test_resume_across_mirrors(serve, payload, tmp_path, capsys):
    """Mirror 1 drops mid-body and then stays down; mirror 2 sends only the rest (Range), and the result is
    verified by the final checksum."""
    first, s1 = serve(actions=[("drop", 100_000)], default=503)
    second, s2 = serve()
    dest = tmp_path / "grass.zip"
    digest = download([first, second], dest, _sha(payload), hashlib.md5(payload).hexdigest(),
                      size=len(payload), retries=1, **FAST)
    assert digest == _sha(payload) and dest.read_bytes() == payload and not _part(dest).exists()
    assert s1.sent[0] == 100_000 and s2.ranges == ["bytes=100000-"] and s2.sent == [len(payload) - 100_000]
    [note] = _notes(capsys.readouterr().err)
    assert "after 3 attempts" in note and "503" in note


def test_corrupt_part_from_one_mirror_is_deleted(serve, payload, tmp_path, capsys):
    """Mirror 1 serves a corrupt copy (same size) and drops; mirror 2 completes it, the checksum fails, the
    part is deleted, and mirror 3 downloads the file from the start."""
    corrupt = bytes(b ^ 0xFF for b in payload[:50_000]) + payload[50_000:]
    bad, _ = serve(payload=corrupt, actions=[("drop", 100_000)], default=404)
    good, s2 = serve()
    dest = tmp_path / "grass.zip"
    download([bad, good, good], dest, _sha(payload), **FAST)
    assert dest.read_bytes() == payload
    assert s2.ranges == ["bytes=100000-", None]  # resumed, refused by the checksum, then from zero
    notes = _notes(capsys.readouterr().err)
    assert len(notes) == 2 and "does not match" in notes[1] and "deleted" in notes[1]


def test_all_mirrors_fail_in_one_error(serve, payload, tmp_path, capsys):
    dead = _dead_url()
    missing, _ = serve(default=404)
    html, _ = serve(default=("html", ERROR_PAGE))
    dest = tmp_path / "grass.zip"
    with pytest.raises(DownloadError) as info:
        download([dead, missing, html], dest, retries=0, **FAST)
    msg = str(info.value)
    assert "\n" not in msg and str(dest) in msg and "by hand" in msg and "file://" in msg
    for i, (url, reason) in enumerate([(dead, "refused"), (missing, "HTTP 404"), (html, "HTML page")], 1):
        assert re.search(f"mirror {i} {re.escape(url)}: [^;]*{reason}", msg, re.IGNORECASE), msg
    assert len(_notes(capsys.readouterr().err)) == 2  # the last failure is the error itself
    assert not dest.exists() and not _part(dest).exists()


# ---- Google Drive -----------------------------------------------------------------------------------------

DRIVE_ID = "0B7EVK8r0v71pZjFTYXZWM3FlRnM"


def _drive(serve, **script) -> tuple[str, Script]:
    """A local imitation of Drive's download endpoint: (the gdrive_url to pass, its script)."""
    url, s = serve(name="download", **script)
    return url, s


@pytest.mark.parametrize("page", ["form", "cookie"])
def test_drive_confirm_step(serve, payload, tmp_path, page):
    """Drive's virus-scan warning page, then the file: the confirm url from the page's form (hidden inputs
    id, export, confirm, uuid) or from its download_warning cookie, which is sent back; resumable."""
    base, s = _drive(serve, drive=page)
    dest = tmp_path / "img_align_celeba.zip"
    _part(dest).write_bytes(payload[:5000])
    download(f"gdrive:{DRIVE_ID}", dest, _sha(payload), size=len(payload), gdrive_url=base, **FAST)
    assert dest.read_bytes() == payload
    first, second = (urllib.parse.parse_qs(urllib.parse.urlsplit(p).query) for p in s.paths)
    assert first == {"id": [DRIVE_ID], "export": ["download"]} and s.ranges == [None, "bytes=5000-"]
    if page == "form":
        assert second == {"id": [DRIVE_ID], "export": ["download"], "confirm": ["t"], "uuid": ["0a1b-2c3d"]}
    else:
        assert second["confirm"] == ["Zq7T"] and "download_warning" in s.cookies[1]


def test_drive_small_file_sent_at_once(serve, payload, tmp_path):
    base, s = _drive(serve, drive="direct")
    dest = tmp_path / "x.zip"
    download(f"gdrive:{DRIVE_ID}", dest, _sha(payload), gdrive_url=base, **FAST)
    assert dest.read_bytes() == payload and len(s.paths) == 2  # asked, then fetched again


@pytest.mark.parametrize("where", ["page", "after_confirm", "status_403"])
def test_drive_quota_says_what_to_do(serve, payload, tmp_path, where):
    """Drive's quota page, wherever it comes (instead of the warning page, after the confirm step, or as an
    HTTP 403 body), skips the mirror; the error says to wait 24 h or use a browser and where to put the file."""
    script = {"page": dict(drive="quota"), "after_confirm": dict(drive="form", default=("html", QUOTA_PAGE)),
              "status_403": dict(drive="form", default=("html_status", 403, QUOTA_PAGE))}[where]
    base, _ = _drive(serve, **script)
    dest = tmp_path / "faces" / "img_align_celeba.zip"
    with pytest.raises(DownloadError) as info:
        download(f"gdrive:{DRIVE_ID}", dest, size=len(payload), gdrive_url=base, **FAST)
    msg = str(info.value)
    assert "download quota exceeded" in msg and "Too many users" in msg and "24 h" in msg and "browser" in msg
    assert f"https://drive.google.com/uc?id={DRIVE_ID}" in msg and str(dest) in msg and "\n" not in msg
    assert not dest.exists() and not _part(dest).exists()


def test_drive_quota_then_dropbox(serve, payload, tmp_path, capsys):
    base, _ = _drive(serve, drive="quota")
    mirror, _ = serve()
    dest = tmp_path / "img_align_celeba.zip"
    download([f"gdrive:{DRIVE_ID}", mirror], dest, _sha(payload), gdrive_url=base, **FAST)
    assert dest.read_bytes() == payload
    [note] = _notes(capsys.readouterr().err)
    assert f"gdrive:{DRIVE_ID}" in note and "quota" in note


def test_drive_page_without_a_link(serve, tmp_path):
    base, _ = _drive(serve, drive="nolink")
    with pytest.raises(DownloadError, match="'Google Drive - Virus scan warning'.*no download link.*shared publicly"):
        download(f"gdrive:{DRIVE_ID}", tmp_path / "x.zip", gdrive_url=base, **FAST)


# ---- settings: DownloadConfig and `affsr download` --------------------------------------------------------


def test_malformed_urls_rejected_before_downloading(tmp_path):
    for bad in ("ftp://x/y.zip", "gdrive:", "/data/y.zip"):
        with pytest.raises(DownloadError, match="not an http://, https:// or file:// url, nor gdrive:"):
            download([bad], tmp_path / "y.zip", **FAST)
    with pytest.raises(DownloadError, match="no url"):
        download([], tmp_path / "y.zip", **FAST)


def _faces(tiny_params: dict, download_block: dict) -> dict:
    tiny_params["datasets"]["faces"] = {"source": "celeba", "hr_size": 64, "crop": [60, 25, 128],
                                        "download": {"filename": "img_align_celeba.zip", **download_block}}
    return tiny_params


@pytest.mark.parametrize("block, fragments", [
    ({"url": "https://x/y.zip"}, ["params.datasets.faces.download.url: unknown key", "did you mean 'urls'"]),
    ({"urls": "https://x/y.zip"}, ["params.datasets.faces.download.urls: expected a list"]),
    ({"urls": ["ftp://x/y.zip"]}, ["params.datasets.faces.download.urls[0]: 'ftp://x/y.zip' is not"]),
    ({"urls": ["https://x/y.zip"], "size": -1}, ["params.datasets.faces.download.size: must be ≥ 0"]),
    ({"urls": ["file:///nowhere/img_align_celeba.zip"]}, ["could not read /nowhere/img_align_celeba.zip",
                                                           "by hand"]),
])
def test_cli_download_user_errors_are_one_line(tmp_path, tiny_params, capsys, block, fragments):
    """`affsr download` with a bad download block (the old single `url:` key included) or an unusable
    mirror: exit code 2 and one `affsr: error:` line naming the key or the mirror."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(_faces(tiny_params, block)))
    code = main(["download", "--params", str(params), "--dataset", "faces", "--quiet",
                 "--out", str(tmp_path / "img_align_celeba.zip")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    [line] = err.strip().splitlines()
    assert line.startswith("affsr: error: ")
    for fragment in fragments:
        assert fragment in line, (fragment, line)
