"""Credentials never reach any output: not in a URL, not in a header, not in a redirect.

The property test generates a user and a password, builds input lines and redirects that
carry them (good URLs, bad ports, refused ports, `.invalid` names, bad schemes, no scheme,
percent-encoded inside a query, a line too long), adds `-H` secrets, and runs the command
through every output: jsonl, json, csv and table on a pipe, `-o FILE`, `--summary-json`,
stderr with its progress view, and the live view on a terminal stdout. No form in which the
tool could print a secret (as typed, percent-decoded, percent-encoded, base64) may appear.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fetchpool.app import Environment
from fetchpool.cli import main
from fetchpool.errors import classify
from fetchpool.inputs import MAX_LINE_BYTES, SHOWN_CHARS, Target, parse, read_lines, split_scheme
from fetchpool.result import ErrorKind, Result, clip, redact_text, redact_url

from conftest import run_cli
from faultserver import FaultServer
from servers import Handler, TestServer, running


class LocationHandler(Handler):
    """Adds `/loc/K`: a 302 to the Location registered under K, which the request never carries."""

    def ep_loc(self, arg: str, query: dict[str, str]) -> None:
        self.reply(302, b"", {"Location": self.server.locations[arg]})  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def loc_server() -> Iterator[TestServer]:
    srv = TestServer()
    srv.RequestHandlerClass = LocationHandler
    srv.locations = {}  # type: ignore[attr-defined]
    with running(srv):
        yield srv


# -- the defects, one by one ---------------------------------------------------------------


def test_a_url_that_fails_to_parse_keeps_its_password_out_of_the_message() -> None:
    (got,) = parse([b"http://u:s3cr3tpw@127.0.0.1:99999/"])
    assert isinstance(got, Result) and got.error is ErrorKind.INVALID_URL
    assert got.url == "http://u:***@127.0.0.1:99999/"
    assert "s3cr3tpw" not in (got.error_message or "") and "u:***@" in (got.error_message or "")


def test_user_password_at_host_without_a_scheme_gets_the_default_scheme() -> None:
    assert split_scheme("u:secret@127.0.0.1:8080/x")[0] is None
    assert list(parse([b"u:secret@127.0.0.1:8080/x"], "-", "http")) == [Target("http://u:secret@127.0.0.1:8080/x", 1)]
    (bad,) = parse([b"u:s3cr3tpw@127.0.0.1:99999/x"])
    assert isinstance(bad, Result) and bad.error is ErrorKind.INVALID_URL
    assert bad.url == "u:***@127.0.0.1:99999/x" and "s3cr3tpw" not in (bad.error_message or "")


@pytest.mark.parametrize("line", ["mailto:a@b.test", "javascript:alert('a@b')", "data:text/plain,a@b", "news:1@h.test"])
def test_schemes_written_name_colon_someone_at_host_stay_schemes(line: str) -> None:
    (got,) = parse([line])
    assert isinstance(got, Result) and got.error is ErrorKind.UNSUPPORTED_SCHEME and got.url == line


def test_an_unknown_scheme_that_looks_like_user_info_is_masked_anyway() -> None:
    (got,) = parse([b"u:s3cr3tpw@h\x01/"])  # a control character: not a host, so `u:` stays a scheme
    assert isinstance(got, Result) and "s3cr3tpw" not in got.url


def test_an_undecodable_line_with_a_password_is_masked() -> None:
    (got,) = parse([b"u:s3cr3tpw@h.test/\xff"])
    assert isinstance(got, Result) and got.error is ErrorKind.INVALID_URL and "s3cr3tpw" not in got.url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://u:pw@h/", "http://u:***@h/"),
        ("//u:p@ss@h/x", "//u:***@h/x"),
        ("http://u@h/", "http://u@h/"),  # no password: nothing to hide
        ("http://h/@me", "http://h/@me"),  # an @ in the path is not user info
        ("http://h/?next=http://a:pw@b/", "http://h/?next=http://a:***@b/"),
        ("http://h/?n=http%3A%2F%2Fa%3Apw%40b&x=1", "http://h/?n=http%3A%2F%2Fa%3A***%40b&x=1"),
        ("http://h/?n=HTTP%3a%2f%2fa%3apw%40b", "http://h/?n=HTTP%3a%2f%2fa%3A***%40b"),
        ("mailto:a@b.test", "mailto:a@b.test"),
    ],
)
def test_redact_url(text: str, expected: str) -> None:
    assert redact_url(text) == expected
    assert redact_url(expected) == expected  # idempotent: redacting twice is harmless


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Failed to parse: http://u:p@ss@h:99999/", "Failed to parse: http://u:***@h:99999/"),
        ("Invalid URL 'u:pw@h:1': bad", "Invalid URL 'u:***@h:1': bad"),
        ("see https%3A%2F%2Fu%3Apw%40h", "see https%3A%2F%2Fu%3A***%40h"),
        ("no credentials: http://h:80/x", "no credentials: http://h:80/x"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_classify_redacts_what_exceptions_quote() -> None:
    from requests.exceptions import InvalidURL

    kind, message = classify(InvalidURL("Failed to parse: http://u:s3cr3tpw@h:99999/"), False, 10)
    assert kind is ErrorKind.INVALID_URL and "s3cr3tpw" not in message and "u:***@" in message


def test_a_cut_never_ends_inside_a_password() -> None:
    assert clip("http://u:" + "p" * 300) == "http://u:***…"
    assert clip("u:" + "p" * 300, 20) == "u:***…"
    assert clip("http://h:8080/" + "a" * 300, 20) == "http://h:8080/aaaaaa…"


@pytest.mark.parametrize("reader", [read_lines, lambda f: [x.decode() for x in f.readlines()]])
def test_an_overlong_line_shows_its_start_redacted(reader: Any) -> None:
    data = b"http://u:s3cr3tpw@h.test/" + b"a" * MAX_LINE_BYTES + b"\nhttp://b.test/\n"
    got, nxt = parse(reader(io.BytesIO(data)))
    assert isinstance(got, Result) and got.error is ErrorKind.INVALID_URL
    assert got.url == "http://u:***@h.test/" + "a" * (SHOWN_CHARS - 20) + "…"
    assert nxt == Target("http://b.test/", 2)


def test_internal_records_are_redacted_too() -> None:
    got = Result.failed("http://u:s3cr3tpw@h/", 1, ErrorKind.INTERNAL, "boom at http://u:s3cr3tpw@h/")
    assert "s3cr3tpw" not in got.url + (got.error_message or "")


def test_a_url_argument_that_is_refused_is_echoed_masked() -> None:
    proc = run_cli("ftp://u:s3cr3tpw@127.0.0.1/x")
    assert proc.returncode == 2 and b"u:***@" in proc.stderr and b"s3cr3tpw" not in proc.stderr


# -- the property, through every output ----------------------------------------------------

UNRESERVED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"
SUB_DELIMS = "!$&'()*+,;="
piece = st.sampled_from(list(UNRESERVED + SUB_DELIMS + ":")) | st.sampled_from(["%40", "%2F", "%3A", "%25", "%C3%A9"])
# A fixed start that appears nowhere else, then enough drawn characters that no accident matches.
passwords = st.lists(piece, min_size=12, max_size=24).map(lambda p: "Zq" + "".join(p))
users = st.text(alphabet=UNRESERVED, min_size=1, max_size=8)
tokens = st.text(alphabet=UNRESERVED, min_size=16, max_size=24).map(lambda t: "Tk" + t)


def forms(secret: str) -> set[str]:
    """Every way the tool might print `secret`: as given, decoded, encoded, inside Basic auth."""
    decoded = unquote(secret)
    # and the distinctive start alone: a message cut inside a password shows no more than that
    return {secret, decoded, quote(decoded, safe=""), quote(decoded), secret[:8], decoded[:8]}


def basic(user: str, password: str) -> set[str]:
    raw = f"{user}:{unquote(password)}".encode("latin-1")
    return {base64.b64encode(raw).decode(), base64.b64encode(f"{user}:{password}".encode()).decode()}


def lines_for(srv: TestServer, user: str, pw: str, refused: int) -> list[str]:
    cred = f"{user}:{pw}@"
    port = srv.server_address[1]
    srv.locations.update(  # type: ignore[attr-defined]
        {
            "refused": f"http://{cred}127.0.0.1:{refused}/x",
            "ftp": f"ftp://{cred}127.0.0.1/x",
            "badport": f"http://{cred}127.0.0.1:99999/x",
            "dns": f"http://{cred}nowhere.invalid/x",
            "ok": f"//{cred}127.0.0.1:{port}/ok",
            "other-host": f"http://localhost:{port}/ok",
        }
    )
    return [
        f"http://{cred}127.0.0.1:{port}/ok",
        f"http://{cred}127.0.0.1:{port}/status/401",
        f"http://{cred}127.0.0.1:99999/",
        f"http://{cred}127.0.0.1:{refused}/",
        f"http://{cred}nowhere.invalid/",
        f"{cred}127.0.0.1:{port}/ok",
        f"{cred}127.0.0.1:99999/x",
        f"ftp://{cred}127.0.0.1/",
        f"http://{cred}127.0.0.1:{port}/a\x01b",
        f"http://127.0.0.1:{port}/to?url={quote(f'http://{cred}127.0.0.1:{refused}/', safe='')}",
        *(f"http://127.0.0.1:{port}/loc/{key}" for key in ("refused", "ftp", "badport", "dns", "ok", "other-host")),
        f"http://{cred}127.0.0.1:{port}/" + "a" * (MAX_LINE_BYTES + 10),
    ]


RUNS: list[tuple[list[str], dict[str, bool]]] = [
    (["--summary-json", "{tmp}/s.json"], {"stderr_isatty": True}),  # jsonl on a pipe, progress on stderr
    (["-f", "json", "-o", "{tmp}/out.csv"], {"stderr_isatty": True}),  # -o wins: csv by its extension
    (["-f", "csv"], {}),
    (["-f", "table"], {}),
    (["-o", "{tmp}/out.jsonl", "--summary-json", "{tmp}/s.json"], {"stdout_isatty": True}),  # the live view
    (["-o", "{tmp}/out.json"], {"stdout_isatty": True, "no_color": True}),
]


@pytest.mark.slow
def test_no_output_ever_shows_a_credential(loc_server: TestServer, tmp_path: Path) -> None:
    refused = FaultServer.refused_port()

    @settings(
        max_examples=4,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # a failure names the secret and where: no shrinking
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(user=users, pw=passwords, token=tokens, cookie=tokens, proxy=tokens)
    def check(user: str, pw: str, token: str, cookie: str, proxy: str) -> None:
        lines = lines_for(loc_server, user, pw, refused)
        (tmp_path / "urls.txt").write_text("\n".join(lines) + "\n")
        headers = [
            *("-H", f"Authorization: Bearer {token}"),
            *("-H", f"Cookie: session={cookie}"),
            *("-H", f"Proxy-Authorization: Basic {proxy}"),
        ]
        common = [*headers, "--retries", "0", "-t", "5", "--default-scheme", "http", "-c", "4"]
        secrets = forms(pw) | basic(user, pw) | {token, cookie, proxy}
        arg_url = f"http://{user}:{pw}@127.0.0.1:{loc_server.server_address[1]}/ok"
        for flags, env in RUNS:
            flags = [f.replace("{tmp}", str(tmp_path)) for f in flags]
            environment = Environment(stdin=io.BytesIO(b""), **env)
            args = [*common, *flags, str(tmp_path / "urls.txt"), arg_url]
            result = CliRunner().invoke(main, args, obj=environment, catch_exceptions=False)
            assert result.exit_code == 1, result.output
            seen = {"stdout": result.stdout, "stderr": result.stderr}
            seen |= {p.name: p.read_text() for p in tmp_path.iterdir() if p.name != "urls.txt"}
            assert f"{user}:***@" in "".join(seen.values())  # the user name stays, to tell accounts apart
            for where, text in seen.items():
                for secret in secrets:
                    at = text.find(secret)
                    assert at < 0, (secret, where, flags, text[max(at - 200, 0) : at + 50])
            for p in tmp_path.iterdir():
                if p.name != "urls.txt":
                    p.unlink()
            with loc_server.lock:
                loc_server.seen.clear()

    check()


def test_the_live_writer_shows_no_credential() -> None:
    """Records as the writer gets them, drawn on a forced terminal: masked URLs stay masked."""
    from rich.console import Console

    from fetchpool.output.live import LiveWriter
    from fetchpool.output.stats import Stats

    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True)
    stats = Stats()
    writer = LiveWriter(console, stats, 3)
    lines = [b"http://u:s3cr3tpw@127.0.0.1:99999/", b"u:s3cr3tpw@127.0.0.1:99999/x", b"ftp://u:s3cr3tpw@h/"]
    for item in parse(lines):
        assert isinstance(item, Result)
        stats.add(item)
        writer.write(item)
    writer.close()
    assert "u:***@" in out.getvalue() and "s3cr3tpw" not in out.getvalue()


def test_messages_stay_masked_across_threads_of_a_real_run(loc_server: TestServer) -> None:
    """One subprocess run, real stderr: the same promise outside CliRunner."""
    port = loc_server.server_address[1]
    loc_server.locations["pw"] = f"http://al:s3cr3tpw@127.0.0.1:{FaultServer.refused_port()}/"  # type: ignore[attr-defined]
    urls = f"http://127.0.0.1:{port}/loc/pw\nhttp://al:s3cr3tpw@127.0.0.1:99999/\n"
    proc = run_cli("--retries", "0", input=urls.encode())
    records = [json.loads(x) for x in proc.stdout.splitlines()]
    assert {r["error"] for r in records} == {"connect", "invalid_url"}
    assert b"s3cr3tpw" not in proc.stdout + proc.stderr and b"al:***@" in proc.stdout


def test_a_line_without_a_scheme_sends_its_user_info_as_basic_auth(server) -> None:
    port = server.server_address[1]
    proc = run_cli("--default-scheme", "http", input=f"al:s3cr3tpw@127.0.0.1:{port}/echo?basic\n".encode())
    (record,) = [json.loads(x) for x in proc.stdout.splitlines()]
    assert record["status"] == 200 and record["url"] == f"http://al:***@127.0.0.1:{port}/echo?basic"
    sent = [h for _, path, h in server.seen if path == "/echo?basic"]
    assert sent[-1]["Authorization"] == "Basic " + base64.b64encode(b"al:s3cr3tpw").decode()


@pytest.mark.parametrize("pw", ["%E2%82%ACs3cr3tpw", "€s3cr3tpw"])
def test_a_password_that_cannot_be_sent_is_an_invalid_line_not_an_internal_error(pw: str) -> None:
    (got,) = parse([f"http://u:{pw}@127.0.0.1:9/"])
    assert isinstance(got, Result) and got.error is ErrorKind.INVALID_URL
    assert got.url == "http://u:***@127.0.0.1:9/" and "Latin-1" in (got.error_message or "")


def test_a_redirect_to_user_info_that_cannot_be_sent_is_invalid_url(loc_server: TestServer) -> None:
    from fetchpool.client import Client, fetch_one
    from fetchpool.options import Options

    loc_server.locations["euro"] = "http://u:%E2%82%ACs3cr3tpw@127.0.0.1:9/"  # type: ignore[attr-defined]
    client = Client(Options(retries=0))
    result = fetch_one(loc_server.url("/loc/euro"), client)
    assert result.error is ErrorKind.INVALID_URL and "Latin-1" in (result.error_message or "")
    assert "s3cr3tpw" not in f"{result.final_url} {result.error_message}"
