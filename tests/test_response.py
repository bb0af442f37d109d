"""What a worker takes from a response: headers, title, hash, saved body, and the checks.

End to end against loopback servers: the CLI as a subprocess, and `fetch_one` in process
where a test needs to see the files or break the disk.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme
from click.testing import CliRunner

from fetchpool.checks import Checks
from fetchpool.cli import main
from fetchpool.client import Client, fetch_one
from fetchpool.inputs import Target
from fetchpool.options import Options, OptionsError
from fetchpool.result import EXTRA_FIELDS, FIELDS, ErrorKind
from fetchpool.save import BodyFile

from conftest import run_cli
from servers import TestServer

PAGE = (
    "<html><head><title>\n  Caf\u00e9   du\n  Monde </title></head><body>" + "." * 5000 + "Welcome home</body></html>"
)


class Pages(BaseHTTPRequestHandler):
    """`/page` an ISO-8859-1 HTML page sent in 7-byte chunks; `/plain` a small text answer."""

    protocol_version = "HTTP/1.1"
    server: Site

    def log_message(self, format: str, *args: object) -> None:
        return None

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if self.path.startswith("/page"):
            return self._chunked(PAGE.encode("latin-1"), 7)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.send_header("X-Tag", "one")
        self.send_header("X-Tag", "two")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(b"ok")

    def _chunked(self, body: bytes, size: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=ISO-8859-1")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            self.wfile.write(b"0\r\n\r\n")
            return
        for i in range(0, len(body), size):
            piece = body[i : i + size]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


class Site(ThreadingHTTPServer):
    """Loopback server for `Pages`; given a TLS context, it speaks TLS to clients that start a
    handshake and plain HTTP to the others, on the same port. Counts connections."""

    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Pages)
        self.tls, self.connections = tls, 0
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def get_request(self) -> tuple[socket.socket, object]:
        sock, address = super().get_request()
        self.connections += 1
        if self.tls is not None and sock.recv(1, socket.MSG_PEEK) == b"\x16":  # a TLS ClientHello
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: object, client_address: object) -> None:
        return None  # a client that hangs up, or speaks plain HTTP to TLS, is part of the tests

    def url(self, path: str) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.server_address[1]}{path}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    srv = Site()
    yield srv
    srv.close()


def records(proc: object) -> list[dict[str, object]]:
    out = proc.stdout.decode()  # type: ignore[attr-defined]
    return [json.loads(line) for line in out.splitlines()]


def test_default_records_gain_no_key(site: Site) -> None:
    (rec,) = records(run_cli(site.url("/page")))
    assert tuple(rec) == FIELDS


def test_headers_title_and_hash_end_to_end(site: Site) -> None:
    proc = run_cli(
        site.url("/page"),
        site.url("/plain"),
        *("--include-header", "x-tag", "--include-header", "Content-Type", "--include-header", "X-Absent"),
        *("--title", "--hash", "--ordered"),
    )
    assert proc.returncode == 0, proc.stderr
    page, plain = records(proc)
    assert list(page)[len(FIELDS) :] == ["headers", "title", "sha256"]  # EXTRA_FIELDS order
    assert page["title"] == "Café du Monde"  # decoded as the declared ISO-8859-1, whitespace collapsed
    assert page["sha256"] == hashlib.sha256(PAGE.encode("latin-1")).hexdigest()
    assert page["headers"] == {"x-tag": None, "Content-Type": "text/html; charset=ISO-8859-1", "X-Absent": None}
    assert plain["headers"] == {"x-tag": "one, two", "Content-Type": "text/plain", "X-Absent": None}
    assert plain["title"] is None


def test_hash_of_a_truncated_body_is_of_what_was_read(site: Site) -> None:
    (rec,) = records(run_cli(site.url("/page"), "--hash", "--max-bytes", "100"))
    assert rec["truncated"] is True and rec["bytes"] == 100
    assert rec["sha256"] == hashlib.sha256(PAGE.encode("latin-1")[:100]).hexdigest()


def test_body_checks_match_across_small_chunks(site: Site) -> None:
    url = site.url("/page")
    ok = run_cli(url, "--expect-body", "Welcome home", "--expect-regex", r"W\w+ome\s+home</body>", "--retries", "2")
    assert ok.returncode == 0 and records(ok)[0]["ok"] is True, ok.stdout
    for flag, value, message in (
        ("--expect-body", "Goodbye", "--expect-body: body does not contain 'Goodbye'"),
        ("--reject-body", "Welcome home", "--reject-body: body contains 'Welcome home' (rejected)"),
        ("--reject-regex", r"Wel+come", "--reject-regex: body matches 'Wel+come' (rejected)"),
    ):
        proc = run_cli(url, flag, value, "--retries", "2")
        (rec,) = records(proc)
        assert proc.returncode == 1
        assert (rec["ok"], rec["status"], rec["error"], rec["error_message"]) == (False, 200, "check", message)
        assert rec["attempts"] == 1  # a check failure is never retried


def test_a_text_past_max_bytes_is_not_found_and_says_so(site: Site) -> None:
    (rec,) = records(run_cli(site.url("/page"), "--expect-body", "Welcome home", "--max-bytes", "1000"))
    assert rec["error"] == "check"
    assert rec["error_message"] == "--expect-body: body does not contain 'Welcome home' within --max-bytes"


def test_header_and_time_checks(site: Site, server: TestServer) -> None:
    url = site.url("/plain")
    assert records(run_cli(url, "--expect-header", "Content-Type: ^text/"))[0]["ok"] is True
    (missing,) = records(run_cli(url, "--expect-header", "X-Up: yes"))
    assert (missing["error"], missing["error_message"]) == ("check", "--expect-header: header X-Up is missing")
    (wrong,) = records(run_cli(url, "--expect-header", "content-type: json$"))
    assert wrong["error"] == "check" and "does not match 'json$'" in wrong["error_message"]
    (slow,) = records(run_cli(server.url("/delay/200"), "--max-response-time", "100"))
    assert slow["error"] == "check" and slow["elapsed_ms"] >= 200
    assert slow["error_message"].startswith("--max-response-time: ") and "more than 100 ms" in slow["error_message"]


def test_checks_apply_only_to_responses_that_are_otherwise_ok(server: TestServer) -> None:
    (rec,) = records(run_cli(server.url("/status/500"), "--expect-body", "never", "--retries", "0"))
    assert (rec["status"], rec["ok"], rec["error"]) == (500, False, None)


def test_bad_check_and_response_flags_are_usage_errors(tmp_path: Path) -> None:
    for args, said in (
        (("--expect-regex", "("), "not a valid regular expression"),
        (("--expect-header", "nocolon"), "--expect-header takes 'Name: REGEX'"),
        (("--max-response-time", "0"), "--max-response-time must be a positive"),
        (("--save-dir", str(tmp_path / "nowhere")), "is not an existing folder"),
        (("--include-header", "bad name"), "'--include-header': must be header names"),
    ):
        result = CliRunner().invoke(main, ["http://127.0.0.1:9/", *args])
        assert result.exit_code == 2 and said in result.output, (args, result.output)


def test_options_check_the_response_fields(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    for bad, field in (
        (dict(save_dir=str(a_file)), "save_dir"),
        (dict(save_dir=""), "save_dir"),
        (dict(include_headers=("Good", "not:ok")), "include_headers"),
        (dict(include_headers="Server"), "include_headers"),
        (dict(title=1), "title"),
        (dict(hash_body="yes"), "hash_body"),
        (dict(checks={"cert_days": 3}), "checks"),
    ):
        with pytest.raises(OptionsError) as caught:
            Options(**bad)  # type: ignore[arg-type]
        assert caught.value.field == field
    assert Options(include_headers=("Server", "server", "ETag")).include_headers == ("Server", "ETag")


# -- --save-dir -------------------------------------------------------------------------------


def saved(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_save_dir_end_to_end(tmp_path: Path, site: Site, server: TestServer) -> None:
    proc = run_cli(site.url("/page"), server.url("/status/500"), "--save-dir", str(tmp_path), "--ordered")
    page, failed = records(proc)
    assert list(page)[len(FIELDS) :] == ["sha256", "saved_to"]
    body = Path(str(page["saved_to"])).read_bytes()
    assert body == PAGE.encode("latin-1") and page["sha256"] == hashlib.sha256(body).hexdigest()
    assert Path(str(page["saved_to"])).parent == tmp_path.resolve() and str(page["saved_to"]).endswith(".html")
    assert failed["saved_to"] is None  # no file for a failed fetch, and no temporary one left behind
    assert saved(tmp_path) == [Path(str(page["saved_to"])).name]


def test_saves_never_collide(tmp_path: Path, site: Site) -> None:
    """GET and HEAD of one URL, two ids for one URL, http and https: each its own file."""
    get, head = Client(Options(save_dir=str(tmp_path))), Client(Options(save_dir=str(tmp_path), method="HEAD"))
    url = site.url("/plain")
    names = {fetch_one(url, get).extra["saved_to"], fetch_one(url, head).extra["saved_to"]}  # type: ignore[index]
    names |= {fetch_one(Target(url, 0, id=i), get).extra["saved_to"] for i in (1, "1", {"k": 1})}  # type: ignore[index]
    assert len(names) == 5 and len(saved(tmp_path)) == 5
    assert Path(str(fetch_one(url, head).extra["saved_to"])).read_bytes() == b""  # type: ignore[index]
    assert len(saved(tmp_path)) == 5  # the same request again replaces its own file, no other


def test_saves_under_http_and_https_do_not_collide(tmp_path: Path, tls_sites: tuple[Site, Site], trusted: Path) -> None:
    """One host and port that answers both schemes: the two URLs differ only in theirs."""
    folder = tmp_path / "saves"
    folder.mkdir()
    client = Client(Options(save_dir=str(folder)))
    https = tls_sites[1].url("/plain")
    http = https.replace("https:", "http:")
    names = {fetch_one(url, client).extra["saved_to"] for url in (https, http)}  # type: ignore[index]
    assert None not in names and len(names) == 2 and len(saved(folder)) == 2


@pytest.mark.parametrize(
    "path",
    [
        "/plain/../../../../../../tmp/escaped",
        "/plain/%2e%2e/%2e%2e/%2e%2e/escaped",
        "/plain?name=../../escaped&file=/etc/passwd",
        "/plain/..%2f..%2fescaped",
        "/plain/%00/escaped",
    ],
)
def test_urls_cannot_save_outside_the_folder(tmp_path: Path, site: Site, path: str) -> None:
    folder = tmp_path / "saves"
    folder.mkdir()
    proc = run_cli(site.url(path), "--save-dir", str(folder))
    (rec,) = records(proc)
    assert rec["ok"] is True, rec
    assert Path(str(rec["saved_to"])).parent == folder.resolve()
    assert saved(tmp_path) == ["saves"] and len(saved(folder)) == 1


def test_a_failed_save_is_a_save_error_and_leaves_no_file(
    tmp_path: Path, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(self: BodyFile, data: bytes) -> None:
        raise OSError(28, "No space left on device", str(self._tmp))  # type: ignore[attr-defined]

    monkeypatch.setattr(BodyFile, "write", disk_full)
    result = fetch_one(site.url("/page"), Client(Options(save_dir=str(tmp_path), retries=2)))
    assert (result.ok, result.error, result.attempts) == (False, ErrorKind.SAVE, 1)
    assert result.error_message and "No space left on device" in result.error_message
    assert result.error_message.startswith("--save-dir: cannot write ")
    assert result.extra == {"sha256": None, "saved_to": None} and saved(tmp_path) == []


def test_a_folder_that_went_away_is_a_save_error(tmp_path: Path, site: Site) -> None:
    folder = tmp_path / "gone"
    folder.mkdir()
    client = Client(Options(save_dir=str(folder)))
    folder.rmdir()
    result = fetch_one(site.url("/plain"), client)
    assert (result.ok, result.error) == (False, ErrorKind.SAVE)


# -- --cert-days --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_sites(ca: trustme.CA) -> Iterator[tuple[Site, Site]]:
    """Two HTTPS servers whose certificates expire in 3 and in 90 days."""
    sites = []
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    for days in (3, 90):
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert = ca.issue_cert("127.0.0.1", not_after=now + dt.timedelta(days=days, hours=1))
        cert.configure_cert(ctx)
        sites.append(Site(ctx))
    yield sites[0], sites[1]
    for site in sites:
        site.close()


@pytest.fixture
def trusted(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(path))
    return path


def test_cert_days_on_reused_connections_report_their_own_certificate(
    tls_sites: tuple[Site, Site], trusted: Path
) -> None:
    near, far = tls_sites
    client = Client(Options(checks=Checks(cert_days=14), concurrency=1))
    before = near.connections + far.connections
    seen = [fetch_one(site.url("/plain"), client) for site in (near, far, near, far, near)]
    assert near.connections + far.connections - before == 2  # one connection each, reused in turn
    for result, days in zip(seen, (3, 90, 3, 90, 3), strict=True):
        assert result.extra is not None and result.extra["cert_days_left"] == days
        expires = dt.datetime.strptime(str(result.extra["cert_expires"]), "%Y-%m-%dT%H:%M:%SZ")
        assert abs(
            expires.replace(tzinfo=dt.timezone.utc)
            - dt.datetime.now(dt.timezone.utc)
            - dt.timedelta(days=days, hours=1)
        ) < dt.timedelta(minutes=30)
    assert [r.error for r in seen] == [ErrorKind.CHECK, None, ErrorKind.CHECK, None, ErrorKind.CHECK]
    assert seen[0].error_message == (
        f"--cert-days: the certificate expires in 3 days ({seen[0].extra['cert_expires']}), fewer than 14"  # type: ignore[index]
    )


def test_cert_days_end_to_end_with_k_and_plain_http(tls_sites: tuple[Site, Site], site: Site) -> None:
    near, far = tls_sites
    proc = run_cli(near.url("/plain"), far.url("/plain"), site.url("/plain"), "-k", "--cert-days", "7", "--ordered")
    near_rec, far_rec, plain = records(proc)
    assert proc.returncode == 1
    assert list(near_rec)[len(FIELDS) :] == ["cert_expires", "cert_days_left"]
    assert (near_rec["cert_days_left"], near_rec["error"]) == (3, "check")
    assert (far_rec["cert_days_left"], far_rec["ok"]) == (90, True)
    assert (plain["cert_expires"], plain["cert_days_left"], plain["ok"]) == (None, None, True)  # no certificate


def test_readme_documents_the_new_keys_and_kinds() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for key in ("headers", "title", "sha256", "saved_to", "cert_expires", "cert_days_left"):
        assert key in EXTRA_FIELDS and f"| `{key}` |" in readme
    for kind in (ErrorKind.CHECK, ErrorKind.SAVE):
        assert f"| `{kind.value}` |" in readme
