"""Body, header, response-time and certificate checks, streamed."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import ssl

import pytest
import trustme

from fetchpool.body import REGEX_WINDOW, BodyScan
from fetchpool.checks import (
    Checks,
    CheckSpecError,
    _der_not_after,
    header_failure,
    parse_expect_header,
)


def feed(scan: BodyScan, body: bytes, size: int) -> None:
    for i in range(0, len(body), size):
        scan.feed(body[i : i + size])


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64 * 1024])
def test_text_is_found_across_chunk_boundaries(size: int) -> None:
    body = b"x" * 1000 + b"Welcome home" + b"y" * 1000
    scan = BodyScan(Checks(expect_body=("Welcome home",), reject_body=("Maintenance",)), hash_body=True)
    feed(scan, body, size)
    assert scan.failure(truncated=False) is None
    assert scan.sha256() == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("size", [1, 5, 4096])
def test_regex_is_found_across_chunk_boundaries(size: int) -> None:
    body = b"." * 5000 + b"version: 12.3.4;" + b"." * 100
    scan = BodyScan(Checks(expect_regex=(r"version: \d+\.\d+\.\d+;",)), hash_body=False)
    feed(scan, body, size)
    assert scan.failure(truncated=False) is None


@pytest.mark.parametrize("offset", [-7, -3, 0, 5, REGEX_WINDOW - 4])
def test_a_regex_is_found_where_the_searched_windows_meet(offset: int) -> None:
    body = b"a" * (REGEX_WINDOW + offset) + b"<id=42>" + b"b" * (3 * REGEX_WINDOW)
    for size in (1000, 4096, REGEX_WINDOW + 1):
        scan = BodyScan(Checks(reject_regex=(r"<id=\d+>",), expect_regex=(r"b{100}$",)))
        feed(scan, body, size)
        assert scan.failure(truncated=False) == "body matches '<id=\\\\d+>' (rejected)"
        assert all(len(m.tail) <= REGEX_WINDOW and m.size < REGEX_WINDOW + size for m in scan.reject)  # type: ignore[union-attr]


def test_missing_and_rejected_text_are_named() -> None:
    scan = BodyScan(Checks(expect_body=("OK",), reject_regex=(r"[Ee]rror \d+",)), hash_body=False)
    feed(scan, b"Internal Error 500", 4)
    assert scan.failure(truncated=False) == "body matches '[Ee]rror \\\\d+' (rejected)"
    scan = BodyScan(Checks(expect_body=("OK",)), hash_body=False)
    feed(scan, b"nothing here", 4)
    assert scan.failure(truncated=True) == "body does not contain 'OK' within --max-bytes"


def test_memory_held_between_chunks_is_bounded() -> None:
    scan = BodyScan(Checks(expect_body=("needle",), expect_regex=("never",)), hash_body=False)
    for _ in range(200):
        scan.feed(b"z" * 65536)
    assert all(len(m.tail) <= REGEX_WINDOW for m in scan.expect)


def test_header_checks() -> None:
    checks = Checks(expect_header=(parse_expect_header("Content-Type: ^text/html"), ("X-Up", "yes")))
    assert header_failure(checks, {"Content-Type": "text/html; charset=utf-8", "X-Up": "yes"}) is None
    assert header_failure(checks, {"Content-Type": "application/json", "X-Up": "yes"}).startswith("header Content-Type")
    assert header_failure(checks, {"Content-Type": "text/html"}) == "header X-Up is missing"


def test_bad_check_specs_are_refused() -> None:
    for bad in (dict(expect_regex=("(",)), dict(expect_body=("",)), dict(max_response_ms=0), dict(cert_days=-1)):
        with pytest.raises(CheckSpecError):
            Checks(**bad)
    with pytest.raises(CheckSpecError):
        parse_expect_header("no colon")


@pytest.mark.parametrize("days", [3, 90, 20000])  # 20000 days: past 2049, a GeneralizedTime
def test_not_after_is_read_from_the_der_certificate(days: int) -> None:
    not_after = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days)).replace(microsecond=0)
    cert = trustme.CA().issue_cert("127.0.0.1", not_after=not_after)
    der = ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())
    assert _der_not_after(der) == not_after


@pytest.mark.parametrize("size", [1, 3, 64 * 1024])
def test_the_title_is_found_across_chunks_decoded_and_collapsed(size: int) -> None:
    body = "<html><head><TITLE lang=fr>\n  Caf\u00e9 &amp;   cr\u00e8me\n</title></head>".encode("latin-1")
    scan = BodyScan(title=True)
    feed(scan, b" " * 1000 + body, size)
    assert scan.title is not None and scan.title.text("text/html; charset=ISO-8859-1") == "Café & crème"


def test_no_title_and_an_endless_title_are_bounded() -> None:
    scan = BodyScan(title=True)
    feed(scan, b"<p>no title here</p>" * 1000, 100)
    assert scan.title is not None and scan.title.text("text/html") is None and len(scan.title.buffer) <= 256
    scan = BodyScan(title=True)
    feed(scan, b"<title>" + b"a" * 100_000, 4096)
    assert scan.title is not None and len(scan.title.text(None) or "") == 8 * 1024


def test_an_argument_not_in_utf8_is_looked_for_as_its_bytes_not_an_internal_error(server) -> None:
    """A shell passes bytes: one that is not UTF-8 reaches Python as a lone surrogate (PEP 383)."""
    import subprocess
    import sys

    from conftest import cli_env

    proc = subprocess.run(
        [sys.executable.encode(), b"-m", b"fetchpool", b"--expect-body=ok\x80", server.url("/ok").encode()],
        capture_output=True,
        env=cli_env(),
        timeout=60,
    )
    [record] = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert proc.returncode == 1 and record["error"] == "check", record  # b"ok\x80" is not in b"ok\n"


def test_a_json_lines_lone_surrogate_is_not_text_to_look_for() -> None:
    with pytest.raises(CheckSpecError, match="need text"):
        Checks(expect_body=("\ud800",))
    with pytest.raises(CheckSpecError, match="for a body"):
        Checks(reject_regex=("a\ud800",))


@pytest.mark.parametrize("flag", [b"--expect-regex", b"--reject-regex"])
def test_a_pattern_not_in_utf8_is_matched_as_its_bytes_not_an_internal_error(server, flag: bytes) -> None:
    import subprocess
    import sys

    from conftest import cli_env

    proc = subprocess.run(
        [sys.executable.encode(), b"-m", b"fetchpool", flag + b"=^ok\x80", server.url("/ok").encode()],
        capture_output=True,
        env=cli_env(),
        timeout=60,
    )
    [record] = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert record["error"] == ("check" if flag == b"--expect-regex" else None), record
    assert proc.returncode == (1 if flag == b"--expect-regex" else 0)
