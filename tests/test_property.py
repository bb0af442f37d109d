"""Property: whatever bytes the input holds, every non-blank, non-comment line gives exactly one
record, numbered as its line, and nothing crashes.

Lines without a scheme are fetched as `http://<text>` (`--default-scheme http`), so arbitrary
text could name a real host. `socket.getaddrinfo` is replaced for the whole test by one that
resolves only loopback addresses (and no name through DNS), so no fetch can leave the machine.
"""

from __future__ import annotations

import socket
from io import BytesIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fetchpool.inputs import read_lines
from fetchpool.pool import fetch
from fetchpool.result import ErrorKind

from faultserver import BOUND, T, loopback_getaddrinfo, options

BOM = b"\xef\xbb\xbf"
NEVER = {ErrorKind.INTERNAL}


def counts(raw: bytes, first: bool) -> bool:
    """The README's rule: blank lines and `#` comments are skipped; every other line is a record.

    A byte-order mark at the start of a line is ignored, on any line (files joined with `cat`).
    """
    while raw.startswith(BOM):
        raw = raw[len(BOM) :]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return True  # not UTF-8: an invalid_url record
    text = text.strip()
    return bool(text) and not text.startswith("#")


no_newline = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))
texty = st.text(max_size=40).map(lambda t: t.replace("\n", "").encode("utf-8"))
urlish = st.builds(
    lambda scheme, host, rest: (scheme + host + rest).encode("utf-8", "surrogatepass"),
    st.sampled_from(["", "http://", "https://", "//", "ftp://", "file:", "HTTP://", "javascript:"]),
    st.sampled_from(
        ["", "localhost", "127.0.0.1", "[::1]", "[::1", "bücher.invalid", "a b", "x.invalid", "127.0.0.1:1"]
    ),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n"), max_size=15),
)
padding = st.sampled_from([b"", b" ", b"\t", b"\r", b"  \r", b"\x0b\x0c"])


@st.composite
def inputs(draw: st.DrawFn, good: list[bytes]) -> list[bytes]:
    line = st.one_of(
        no_newline,
        texty,
        urlish,
        st.sampled_from(good),
        st.sampled_from([b"", b"   ", b"# comment", b"  # indented", b"#", BOM, BOM + b"# bom comment", b"\r"]),
    )
    lines = draw(st.lists(st.tuples(padding, line, padding).map(lambda t: b"".join(t)), min_size=1, max_size=25))
    return lines


@pytest.fixture(scope="module")
def good_urls(server) -> list[bytes]:
    return [
        server.url("/ok").encode(),
        server.url("/status/404").encode(),
        server.url("/redirect/2").encode(),
        server.url("/to?url=file:///etc/passwd").encode(),
        server.url("/bytes/5000").encode(),
        server.url("/loop").encode(),
    ]


def test_one_record_per_counted_line(good_urls: list[bytes]) -> None:
    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(lines=inputs(good_urls), bom=st.booleans(), trailing_newline=st.booleans())
    def check(lines: list[bytes], bom: bool, trailing_newline: bool) -> None:
        if bom:
            lines = [BOM + lines[0], *lines[1:]]
        data = b"\n".join(lines) + (b"\n" if trailing_newline else b"")
        expected = [n for n, raw in enumerate(lines, 1) if counts(raw, n == 1)]
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(socket, "getaddrinfo", loopback_getaddrinfo)
            results = list(
                fetch(
                    read_lines(BytesIO(data)),
                    options(concurrency=8, timeout=0.5, connect_timeout=0.5, default_scheme="http"),
                )
            )
        assert sorted(r.line for r in results) == expected
        for r in results:
            assert r.error not in NEVER, r
            assert r.ok == (r.error is None and r.status is not None and 200 <= r.status < 400)
            assert r.error is None or (r.error_message and "\n" not in r.error_message), r
            assert r.elapsed_ms < (0.5 + BOUND - T) * 1000, r  # the deadline, plus what a busy machine adds

    check()
