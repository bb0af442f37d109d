"""`-H` and `-A` as curl reads them, checked against the header lines a loopback server received."""

from __future__ import annotations

import io
import itertools
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from fetchpool.cli import Environment, ExitCode, main

from conftest import run_cli

_ids = itertools.count()


def sent(server, *args: str, path: str = "/headers?id={id}") -> list[tuple[str, str]]:
    """Run the command on one URL of `server` with ARGS; the header lines the last hop received."""
    key = str(next(_ids))
    url = server.url(path.format(id=key, quoted_id=quote(f"/headers?id={key}", safe="")))
    environment = Environment(stdin=io.BytesIO(url.encode() + b"\n"), stdout_isatty=False, stderr_isatty=False)
    result = CliRunner().invoke(main, ["--retries", "0", *args], obj=environment, catch_exceptions=False)
    assert result.exit_code == ExitCode.OK, result.output
    return server.header_lines[key]


def values(lines: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in lines if k.lower() == name.lower()]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_repeated_header_is_sent_once_per_value_in_order(server, method: str) -> None:
    lines = sent(server, "-X", method, "-H", "X-A: 1", "-H", "X-B: b", "-H", "x-a: 2")
    assert values(lines, "X-A") == ["1", "2"] and values(lines, "X-B") == ["b"]


def test_a_name_and_a_colon_removes_a_header_sent_by_default(server) -> None:
    default = sent(server)
    assert values(default, "Accept") == ["*/*"] and values(default, "User-Agent")
    removed = sent(server, "-H", "Accept:", "-H", "User-Agent:", "-H", "Accept-Encoding:", "-H", "X-Never:")
    names = {k.lower() for k, _ in removed}
    assert not names & {"accept", "user-agent", "accept-encoding", "x-never"}, removed
    assert values(removed, "Host") == values(default, "Host")


def test_host_can_be_removed_too(server) -> None:
    assert values(sent(server, "-H", "Host:"), "Host") == []


def test_a_name_and_a_semicolon_sends_an_empty_header(server) -> None:
    assert values(sent(server, "-H", "X-Empty;"), "X-Empty") == [""]


def test_a_header_replaces_the_default_of_its_name(server) -> None:
    lines = sent(server, "-A", "ignored/1", "-H", "User-Agent: mine/2", "-H", "Accept: text/html")
    assert values(lines, "User-Agent") == ["mine/2"] and values(lines, "Accept") == ["text/html"]


def test_an_empty_user_agent_sends_none(server) -> None:
    assert values(sent(server, "-A", ""), "User-Agent") == []


def test_values_beyond_ascii_go_out_as_utf8(server) -> None:
    lines = sent(server, "-H", "X-U: café 😀", "-A", "naïve/1")
    assert [v.encode("latin-1") for v in values(lines, "X-U")] == ["café 😀".encode()]
    assert [v.encode("latin-1") for v in values(lines, "User-Agent")] == ["naïve/1".encode()]


def test_argument_bytes_that_are_not_utf8_go_out_as_given(server) -> None:
    """As curl: the bytes typed (here a Latin-1 é) are the bytes sent."""
    url = server.url("/headers?id=raw-bytes")
    proc = run_cli("-H", b"X-Raw: caf\xe9", input=url.encode())  # type: ignore[arg-type]
    assert proc.returncode == ExitCode.OK, proc.stderr
    assert [v.encode("latin-1") for v in values(server.header_lines["raw-bytes"], "X-Raw")] == [b"caf\xe9"]


def test_repeated_headers_survive_a_redirect(server) -> None:
    lines = sent(server, "-H", "X-A: 1", "-H", "X-A: 2", "-H", "Accept:", path="/to?url={quoted_id}")
    assert values(lines, "X-A") == ["1", "2"] and values(lines, "Accept") == []


def test_a_redirect_to_another_host_keeps_repeats_and_drops_credentials(server) -> None:
    other = server.url("").replace("127.0.0.1", "localhost")
    path = "/to?url=" + quote(other, safe="") + "{quoted_id}"
    lines = sent(server, "-H", "X-A: 1", "-H", "X-A: 2", "-H", "Authorization: Bearer t0ken", path=path)
    assert values(lines, "X-A") == ["1", "2"] and values(lines, "Authorization") == []
    assert values(lines, "Host") == [other.removeprefix("http://")]
