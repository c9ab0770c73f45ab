"""Tests for affsr.download against a real HTTP server on 127.0.0.1: resume, retries, checksums, atomicity.

The server (``http.server`` in a background thread) supports ``Range`` and follows a per-request script,
so each test can make it drop connections mid-body, ignore ``Range``, fail with 5xx or answer 404, and
then check what the client really asked for (the ``Range`` headers) and what was really sent.
"""

from __future__ import annotations

import hashlib
import io
import random
import re
import socket
import threading
import time
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from affsr.data import DataError
from affsr.download import DownloadError, download, file_digest

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


@dataclass
class Script:
    """What the server does. ``actions`` are consumed one per request, then ``default`` applies.

    An action is ``"ok"``, an HTTP status to fail with (e.g. 500), or ``("drop", n)``: send the full
    headers, then only ``n`` body bytes, then close the connection.
    """

    payload: bytes
    actions: list = field(default_factory=list)
    default: object = "ok"
    ignore_range: bool = False
    ranges: list = field(default_factory=list)  # the Range header of every request (None if absent)
    sent: list = field(default_factory=list)  # body bytes sent per request


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        s: Script = self.server.script
        rng = self.headers.get("Range")
        s.ranges.append(rng)
        action = s.actions.pop(0) if s.actions else s.default
        if isinstance(action, int):
            s.sent.append(0)
            self.send_error(action)
            return
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
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if isinstance(action, tuple):  # ("drop", n): HTTP/1.0, so returning closes the socket mid-body
            body = body[: action[1]]
        s.sent.append(len(body))  # recorded before writing: the client may finish before this thread resumes
        self.wfile.write(body)


@pytest.fixture
def server(payload):
    """A live server: yields ``(url, script)``; the script may be changed before downloading."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.script = Script(payload)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/grass.zip", httpd.script
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


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
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/grass.zip"
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
