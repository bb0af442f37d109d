"""Requests that lines carry: JSON-line input, -d, -u, --compressed, --resolve, POST retries.

End to end against loopback servers; `server.requests[id]` shows what the server received.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click.testing
import pytest
import trustme
from click.testing import CliRunner

from fetchpool.app import Environment
from fetchpool.cli import main

import faultserver
from conftest import cli_env, run_cli
from faultserver import loopback_getaddrinfo, serving
from servers import TestServer

PASSWORD = "s3cret-Pa55word"


def records(stdout: bytes | str) -> list[dict]:
    text = stdout.decode() if isinstance(stdout, bytes) else stdout
    return [json.loads(line) for line in text.splitlines()]


def invoke(args: list[str], input: str = "") -> click.testing.Result:
    environment = Environment(stdin=io.BytesIO(input.encode()))
    return CliRunner().invoke(main, ["--no-progress", *args], obj=environment, catch_exceptions=False)


def seen(server: TestServer, key: str) -> dict:
    got = server.requests[key]
    return {"method": got["method"], "headers": dict(got["headers"]), "body": got["body"]}  # type: ignore[call-overload]


BAD_OBJECTS = [
    ("{not json", "not a JSON object"),
    ("[1, 2]", "not a JSON object: a JSON list"),
    ('{"method": "GET"}', "missing 'url'"),
    ('{"url": 7}', "missing 'url'"),
    ('{"url": ""}', "missing 'url'"),
    ('{"url": "http://127.0.0.1:1/", "method": 5}', "'method' must be an HTTP method"),
    ('{"url": "http://127.0.0.1:1/", "method": "GE T"}', "'method' must be an HTTP method"),
    ('{"url": "http://127.0.0.1:1/", "headers": ["X: 1"]}', "'headers' must be an object"),
    ('{"url": "http://127.0.0.1:1/", "headers": {"X": 1}}', "'headers' must be an object"),
    ('{"url": "http://127.0.0.1:1/", "headers": {"Bad Name": "1"}}', "a header name cannot hold ' '"),
    ('{"url": "http://127.0.0.1:1/", "headers": {"X": "a\\nb"}}', "'headers'"),
    ('{"url": "http://127.0.0.1:1/", "data": {"a": 1}}', "'data' must be a string"),
    ('{"url": "http://127.0.0.1:1/", "data": "x", "json": 1}', "not both"),
    ('{"url": "http://127.0.0.1:1/", "bogus": 1}', "unknown key 'bogus'"),
]


def test_every_kind_of_bad_object_is_an_invalid_url_record_with_its_line() -> None:
    lines = [text for text, _ in BAD_OBJECTS] + ['{"url": "ftp://x.invalid/", "id": 9}', '{"url": "http://[::1/"}']
    proc = run_cli("--input-format", "jsonl", "--no-progress", input="\n".join(lines).encode())
    assert proc.returncode == 1, proc.stderr
    got = sorted(records(proc.stdout), key=lambda r: r["line"])
    assert [r["line"] for r in got] == list(range(1, len(lines) + 1))
    for record, (_, fragment) in zip(got, BAD_OBJECTS, strict=False):
        assert record["error"] == "invalid_url" and record["ok"] is False
        assert record["error_message"].startswith(f"JSON line {record['line']}: ")
        assert fragment in record["error_message"], record
    scheme, bracket = got[-2:]
    assert scheme["error"] == "unsupported_scheme" and scheme["id"] == 9  # normalised like a line; id echoed
    assert bracket["error"] == "invalid_url"
    assert b"Traceback" not in proc.stderr


def test_a_bad_object_never_shows_its_credentials() -> None:
    line = json.dumps({"url": 5, "headers": {"Authorization": f"Bearer {PASSWORD}", "Cookie": PASSWORD}})
    result = invoke([], line + "\n")
    [record] = records(result.stdout)
    assert record["error"] == "invalid_url" and '"Authorization": "***"' in record["url"]
    assert PASSWORD not in result.output


def test_mixed_methods_and_bodies_in_one_run(server: TestServer) -> None:
    url = server.url("/request?id=")
    lines = [
        url + "bare",
        json.dumps({"url": url + "put", "method": "put", "data": "a=1"}),
        json.dumps({"url": url + "json", "json": {"k": [1, "é"]}, "id": 7, "meta": {"row": 3}}),
        json.dumps({"url": url + "typed", "json": [], "headers": {"Content-Type": "application/x-ndjson"}}),
        json.dumps({"url": url + "hdr", "headers": {"X-Trace": "abc", "User-Agent": None}, "id": "h"}),
    ]
    result = invoke(["-H", "X-Run: 1"], "\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    by_url = {r["url"].rsplit("=", 1)[1]: r for r in records(result.stdout)}
    assert "method" not in by_url["bare"] and "id" not in by_url["bare"] and "meta" not in by_url["bare"]
    assert by_url["put"]["method"] == "PUT"
    assert (by_url["json"]["id"], by_url["json"]["meta"]) == (7, {"row": 3})
    assert "method" not in by_url["json"]  # the object gave none: nothing to echo
    assert by_url["hdr"]["id"] == "h"
    bare, put, body, typed, hdr = (seen(server, k) for k in ("bare", "put", "json", "typed", "hdr"))
    assert (bare["method"], bare["body"], bare["headers"]["X-Run"]) == ("GET", b"", "1")
    assert (put["method"], put["body"]) == ("PUT", b"a=1")
    assert put["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert (body["method"], json.loads(body["body"])) == ("POST", {"k": [1, "é"]})
    assert body["headers"]["Content-Type"] == "application/json"
    assert typed["headers"]["Content-Type"] == "application/x-ndjson" and typed["body"] == b"[]"
    assert hdr["method"] == "GET" and hdr["headers"]["X-Trace"] == "abc" and hdr["headers"]["X-Run"] == "1"
    assert "User-Agent" not in hdr["headers"] and "User-Agent" in bare["headers"]


def test_auto_reads_json_only_on_lines_starting_with_a_brace_and_lines_reads_none(server: TestServer) -> None:
    text = server.url("/request?id=auto1") + "\n" + json.dumps({"url": server.url("/request?id=auto2")}) + "\n"
    assert invoke([], text).exit_code == 0
    assert seen(server, "auto1")["method"] == seen(server, "auto2")["method"] == "GET"
    result = invoke(["--input-format", "lines"], text)
    assert [r["error"] for r in records(result.stdout) if not r["ok"]] == ["invalid_url"]


def test_data_text_and_file_imply_post_and_x_overrides(server: TestServer, tmp_path: Path) -> None:
    body = tmp_path / "body.txt"
    body.write_bytes(b"a=1&\r\nb=2\n")
    url = server.url("/request?id=")
    assert invoke(["-d", "x=é", url + "d1"]).exit_code == 0
    assert invoke(["-d", f"@{body}", url + "d2"]).exit_code == 0
    assert invoke(["-X", "PUT", "-d", "y", url + "d3"]).exit_code == 0
    line = json.dumps({"url": url + "d4", "data": "own"}) + "\n" + url + "d5\n"
    assert invoke(["-d", "run"], line).exit_code == 0
    d1, d2, d3, d4, d5 = (seen(server, f"d{i}") for i in range(1, 6))
    assert (d1["method"], d1["body"]) == ("POST", "x=é".encode())
    assert d1["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert (d2["method"], d2["body"]) == ("POST", b"a=1&b=2")  # curl -d drops CR and LF of a file
    assert (d3["method"], d3["body"]) == ("PUT", b"y")
    assert (d4["body"], d5["body"]) == (b"own", b"run")


def test_data_from_stdin_when_the_urls_come_from_elsewhere(server: TestServer) -> None:
    assert invoke(["-d", "@-", server.url("/request?id=stdin")], "from\nstdin\n").exit_code == 0
    assert seen(server, "stdin")["body"] == b"fromstdin"


def test_data_from_stdin_is_refused_when_stdin_carries_the_urls(tmp_path: Path) -> None:
    result = invoke(["-d", "@-"], "http://127.0.0.1:1/\n")
    assert result.exit_code == 2 and "@- reads stdin" in result.output
    result = invoke(["-d", f"@{tmp_path / 'missing'}", "http://127.0.0.1:1/"])
    assert result.exit_code == 2 and "cannot read" in result.output


def test_user_sends_basic_auth_and_the_password_is_masked_everywhere(server: TestServer) -> None:
    closed = faultserver.FaultServer.refused_port()
    elsewhere = f"http://localhost:{server.server_address[1]}/request?id=auth2"
    lines = f"{server.url('/request?id=auth')}\nhttp://127.0.0.1:{closed}/\n{server.url('/to?url=' + elsewhere)}\n"
    proc = run_cli("-u", f"me:{PASSWORD}", "--retries", "0", input=lines.encode())
    expected = "Basic " + base64.b64encode(f"me:{PASSWORD}".encode()).decode()
    assert seen(server, "auth")["headers"]["Authorization"] == expected
    assert "Authorization" not in seen(server, "auth2")["headers"]  # not sent on to another host
    out = proc.stdout.decode() + proc.stderr.decode()
    assert len(records(proc.stdout)) == 3 and "connect" in out
    assert PASSWORD not in out and expected.split()[1] not in out
    bad = invoke(["-u", f"no-colon-{PASSWORD}", "http://127.0.0.1:1/"])
    assert bad.exit_code == 2 and PASSWORD not in bad.output


def test_post_is_not_retried_unless_asked(server: TestServer) -> None:
    fast = ["--backoff", "0", "--retries", "2"]
    once = invoke([*fast, "-X", "POST", server.url("/flaky?key=post1&fail=1")])
    assert [(r["status"], r["attempts"]) for r in records(once.stdout)] == [(503, 1)]
    again = invoke([*fast, "-X", "POST", "--retry-all-methods", server.url("/flaky?key=post2&fail=1")])
    assert [(r["status"], r["attempts"]) for r in records(again.stdout)] == [(200, 2)]
    line = json.dumps({"url": server.url("/flaky?key=post3&fail=1"), "json": {}})
    assert [r["attempts"] for r in records(invoke(fast, line).stdout)] == [1]  # a JSON body: POST too


def test_compressed_caps_the_decoded_size_of_a_gzip_bomb(server: TestServer) -> None:
    with serving() as faults:
        bomb = faults.url("/gzip-bomb")
        plain = records(invoke(["--max-bytes", "1000000", bomb]).stdout)[0]
        decoded = records(invoke(["--compressed", "--max-bytes", "1000000", bomb]).stdout)[0]
    assert plain["truncated"] is False and plain["bytes"] < 100_000  # the wire bytes, not decoded
    assert decoded["truncated"] is True and decoded["ok"] is True
    assert 0 < decoded["bytes"] < 100_000  # what crossed the wire, not the 1 MB decoded
    assert invoke(["--compressed", server.url("/request?id=gz")]).exit_code == 0
    assert seen(server, "gz")["headers"]["Accept-Encoding"].startswith("gzip, deflate")


@pytest.fixture
def api_server() -> Iterator[tuple[faultserver.FaultServer, Path]]:
    """HTTPS on 127.0.0.1 with a certificate for `api.example.test` only."""
    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("api.example.test").configure_cert(ctx)
    with serving(tls=ctx) as srv, trustme.Blob(ca.cert_pem.bytes()).tempfile() as ca_path:
        yield srv, Path(ca_path)


def test_resolve_connects_to_the_address_with_tls_for_the_name(
    api_server: tuple[faultserver.FaultServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    srv, ca_path = api_server
    monkeypatch.setattr(socket, "getaddrinfo", loopback_getaddrinfo)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_path))
    faultserver.LOOKUPS.clear()
    url = f"https://api.example.test:{srv.port}/ok"
    result = invoke(["--resolve", f"api.example.test:{srv.port}:127.0.0.1", "--retries", "0", url])
    [record] = records(result.stdout)
    assert record["ok"] is True and record["status"] == 200, record
    assert "api.example.test" not in faultserver.LOOKUPS
    direct = records(invoke(["--retries", "0", f"https://127.0.0.1:{srv.port}/ok"]).stdout)[0]
    assert direct["error"] == "tls"  # the certificate names api.example.test only: SNI/verification used it
    other_port = records(invoke(["--resolve", "api.example.test:1:127.0.0.1", "--retries", "0", url]).stdout)
    assert other_port[0]["error"] == "dns"  # the mapping is for HOST:PORT only; no lookup escaped
    assert "api.example.test" in faultserver.LOOKUPS


def test_resolve_keeps_the_host_header(server: TestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", loopback_getaddrinfo)
    port = server.server_address[1]
    url = f"http://api.example.test:{port}/request?id=resolve"
    assert invoke(["--resolve", f"API.example.test:{port}:127.0.0.1", url]).exit_code == 0
    assert seen(server, "resolve")["headers"]["Host"] == f"api.example.test:{port}"


@pytest.mark.parametrize("value", ["nohost", "h:0:127.0.0.1", "h:80:not-an-ip", "h:x:127.0.0.1"])
def test_bad_resolve_is_a_usage_error(value: str) -> None:
    result = invoke(["--resolve", value, "http://127.0.0.1:1/"])
    assert result.exit_code == 2 and "--resolve" in result.output


README = Path(__file__).parent.parent / "README.md"


def _recipes() -> list[str]:
    """The `jq` command lines of the README's JSON-line input section, in order."""
    text = README.read_text()
    section = text[text.index("### JSON-line input") :]
    block = section[section.index("```sh") : section.index("```\n", section.index("```sh") + 5)]
    return [line for line in block.splitlines() if line.startswith("jq ")]


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_the_readme_jq_recipes_make_input_fetchpool_reads(server: TestServer, tmp_path: Path) -> None:
    csv_recipe, api_recipe, join_recipe = _recipes()
    (tmp_path / "sites.csv").write_text(
        f"id,url,owner\nshop,{server.url('/request?id=csv1')},ann\nblog,{server.url('/status/500')},bob\n"
    )
    items = [{"id": i, "name": f"n{i}", "links": {"self": server.url(f"/request?id=api{i}")}} for i in (1, 2)]
    (tmp_path / "answer.json").write_text(json.dumps({"items": items}))
    fetchpool = f"{sys.executable} -m fetchpool --retries 0"
    for recipe in (csv_recipe, api_recipe):
        command = recipe.replace("| fetchpool", f"| {fetchpool}")
        proc = subprocess.run(command, shell=True, cwd=tmp_path, env=cli_env(), capture_output=True, timeout=60)
        assert proc.returncode in (0, 1), proc.stderr
    sites = {r["id"]: r for r in records((tmp_path / "sites.jsonl").read_bytes())}
    assert sites["shop"]["ok"] is True and sites["shop"]["meta"] == {"owner": "ann"}
    assert sites["blog"]["status"] == 500
    checks = records((tmp_path / "checks.jsonl").read_bytes())
    assert sorted(r["id"] for r in checks) == [1, 2] and {r["method"] for r in checks} == {"POST"}
    assert json.loads(seen(server, "api2")["body"]) == {"check": "n2"}
    joined = subprocess.run(join_recipe, shell=True, cwd=tmp_path, capture_output=True, timeout=60, check=True)
    assert joined.stdout.decode() == "bob blog 500\n"


def test_a_target_carries_its_request_through_the_library(server: TestServer) -> None:
    from fetchpool import Options, run
    from fetchpool.client import Client, fetch_one
    from fetchpool.inputs import Target

    own = Target(server.url("/request?id=lib1"), 4, "x", "DELETE", (("X-Own", "1"),), b"gone", id=[1], meta=None)
    result = fetch_one(own, Client(Options(method="HEAD", headers={"X-Own": "run", "X-Run": "r"})))
    got = seen(server, "lib1")
    assert (got["method"], got["body"], got["headers"]["X-Own"], got["headers"]["X-Run"]) == (
        "DELETE",
        b"gone",
        "1",
        "r",
    )
    assert result.line == 4 and result.to_dict()["method"] == "DELETE" and result.to_dict()["id"] == [1]
    [plain] = run([Target(server.url("/request?id=lib2"), 1)], Options(method="HEAD"))
    assert seen(server, "lib2")["method"] == "HEAD" and "method" not in plain.to_dict()


def test_json_lines_bring_their_own_checks_in_place_of_the_runs(server: TestServer) -> None:
    """Issue 11's checks per line: a line's `checks` replace the run's for that line only."""
    ok = server.url("/ok")
    lines = [
        json.dumps(
            {"url": ok, "id": "own-pass", "checks": {"expect_body": "ok", "expect_header": {"Content-Type": "."}}}
        ),
        json.dumps({"url": ok, "id": "own-fail", "checks": {"expect_body": ["ok", "Welcome"]}}),
        json.dumps({"url": ok, "id": "run-checks"}),
        json.dumps({"url": ok, "id": "header-missing", "checks": {"expect_header": {"X-Absent": ".*"}}}),
        json.dumps({"url": ok, "id": "bad", "checks": {"expect_regex": "("}}),
        json.dumps({"url": ok, "id": "unknown", "checks": {"expect_bodyy": "x"}}),
    ]
    result = invoke(["--reject-body", "ok", "--retries", "0"], "\n".join(lines) + "\n")
    got = {r.get("id", r["line"]): r for r in records(result.output)}  # a bad object echoes no id
    assert got["own-pass"]["ok"] is True and got["own-pass"]["error"] is None
    assert (got["own-fail"]["error"], got["own-fail"]["error_message"]) == (
        "check",
        "--expect-body: body does not contain 'Welcome'",
    )
    assert got["run-checks"]["error"] == "check" and "(rejected)" in got["run-checks"]["error_message"]
    assert got["header-missing"]["error_message"] == "--expect-header: header X-Absent is missing"
    for name, text in ((5, "not a valid regular expression"), (6, "unknown check 'expect_bodyy'")):
        assert got[name]["error"] == "invalid_url" and text in got[name]["error_message"], got[name]
    assert result.exit_code == 1


@pytest.mark.parametrize(
    "line",
    [
        '{"url":"http://127.0.0.1:9/","headers":{"Authorization":"Bearer SECRET-TORN',
        '{"url":"http://127.0.0.1:9/","headers":{"Auth\\u006frization":"Bearer SECRET-ESC","X":5}}',
        '{"url":"http://127.0.0.1:9/","headers":{"Authorization":["SECRET-LIST"]}}',
        '{"url":"http://127.0.0.1:9/","headers":{"Cookie":{"a":"SECRET-OBJ"}}}',
    ],
)
def test_a_torn_or_odd_bad_object_never_shows_its_credentials(line: str) -> None:
    result = invoke([], line + "\n")
    [record] = records(result.stdout)
    assert record["error"] == "invalid_url" and "SECRET" not in result.output
