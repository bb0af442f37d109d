"""Input lines -> targets or records: every rule of the input format."""

from __future__ import annotations

import codecs
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fetchpool.inputs import MAX_LINE_BYTES, SHOWN_CHARS, Target, UrlArgument, open_inputs, parse, read_lines
from fetchpool.options import Options
from fetchpool.pool import fetch
from fetchpool.result import ErrorKind, Result


def items(data: bytes, scheme: str = "https") -> list[Target | Result]:
    return list(parse(read_lines(io.BytesIO(data)), "-", scheme))


def test_blank_lines_and_comments_are_skipped_but_counted() -> None:
    got = items(b"\n# a comment\n   \n  # indented comment\nhttp://a.test/\n")
    assert got == [Target("http://a.test/", 5, "-")]


def test_crlf_surrounding_whitespace_and_bom_are_ignored() -> None:
    got = items(b"\xef\xbb\xbf http://a.test/x \r\n\thttp://b.test/\t\r\n")
    assert got == [Target("http://a.test/x", 1), Target("http://b.test/", 2)]


def test_a_bom_at_the_start_of_any_line_is_skipped() -> None:
    """Files joined with `cat` keep each file's byte-order mark at the start of its first line."""
    got = items(b"http://a.test/\n\xef\xbb\xbfhttp://b.test/\n\xef\xbb\xbf\n\xef\xbb\xbf# c\n")
    assert got == [Target("http://a.test/", 1), Target("http://b.test/", 2)]


def test_non_utf8_bytes_become_invalid_url_and_the_run_goes_on() -> None:
    got = items(b"http://a.test/\nhttp://\xff\xfe.test/\nhttp://c.test/\n")
    assert [type(x) for x in got] == [Target, Result, Target]
    bad = got[1]
    assert isinstance(bad, Result)
    assert bad.error is ErrorKind.INVALID_URL and bad.line == 2
    assert bad.url == "http://\\xff\\xfe.test/"
    assert "UTF-8" in (bad.error_message or "")


@pytest.mark.parametrize(
    ("line", "scheme", "expected"),
    [
        ("example.com/x", "https", "https://example.com/x"),
        ("127.0.0.1:8080/ok", "https", "https://127.0.0.1:8080/ok"),
        ("localhost:8080", "http", "http://localhost:8080/"),
        ("//host.test/p", "http", "http://host.test/p"),
        ("HTTP://Example.TEST", "https", "http://example.test/"),
        ("http://a.test/a b", "https", "http://a.test/a%20b"),
        ("http://bücher.test/", "https", "http://xn--bcher-kva.test/"),
        ("http://[::1]:8080/x", "https", "http://[::1]:8080/x"),
        ("http://0/.", "https", "http://0/"),
        ("http://v.test/p?", "https", "http://v.test/p"),
        ("http://h.test/a/../b/./c", "https", "http://h.test/b/c"),
    ],
)
def test_normalisation(line: str, scheme: str, expected: str) -> None:
    assert items(line.encode(), scheme) == [Target(expected, 1)]


@pytest.mark.parametrize(
    "line",
    [
        "file:///etc/passwd",
        "ftp://x.test/",
        "javascript:alert(1)",
        "mailto:a@b.test",
        "data:text/plain,hi",
        "gopher://x.test",
    ],
)
def test_other_schemes_are_never_fetched(line: str) -> None:
    (got,) = items(line.encode())
    assert isinstance(got, Result)
    assert got.error is ErrorKind.UNSUPPORTED_SCHEME
    assert got.url == line


@pytest.mark.parametrize(
    "line",
    [
        "http://[::1",
        "http://127.0.0.1:0/ok",
        "http://",
        "http://exa mple.test/",
        "http://a.test:99999/",
        "http://a.test\x01/",
        "https:host",
        "http:/x",
    ],
)
def test_text_that_is_not_a_url(line: str) -> None:
    (got,) = items(line.encode())
    assert isinstance(got, Result) and got.error is ErrorKind.INVALID_URL
    assert got.url == line and got.error_message


def test_a_huge_line_is_one_invalid_record_in_bounded_memory() -> None:
    data = b"http://a.test/\n" + b"x" * (MAX_LINE_BYTES * 3) + b"\nhttp://b.test/\n"
    got = items(data)
    assert [getattr(x, "line", None) for x in got] == [1, 2, 3]
    assert isinstance(got[1], Result) and got[1].error is ErrorKind.INVALID_URL


def test_passwords_in_invalid_lines_are_masked() -> None:
    (got,) = items(b"ftp://user:secret@host.test/")
    assert isinstance(got, Result) and "secret" not in got.url and got.url == "ftp://user:***@host.test/"


def test_files_are_read_in_order_with_their_own_line_numbers(tmp_path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_bytes(b"http://a.test/1\nhttp://a.test/2\n")
    b.write_bytes(b"# b\nhttp://b.test/1\n")
    stdin = io.BytesIO(b"http://s.test/1\n")
    got = list(open_inputs([str(a), "-", str(b)], stdin))
    assert [(x.input, x.line) for x in got] == [(str(a), 1), (str(a), 2), ("-", 1), (str(b), 2)]


def test_str_lines_work_too() -> None:
    assert list(parse(["\ufeffhttp://a.test/", "", "b.test"])) == [
        Target("http://a.test/", 1),
        Target("https://b.test/", 3),
    ]


def test_a_huge_str_line_is_invalid_too() -> None:
    (got,) = list(parse(["http://a.test/" + "x" * (MAX_LINE_BYTES + 1)]))
    assert isinstance(got, Result) and got.error is ErrorKind.INVALID_URL and got.line == 1


@given(
    st.from_regex(r"\Ahttps?://[a-zA-Z0-9.\-]{1,20}(:[0-9]{1,6})?(/[ -~]{0,30})?\Z", fullmatch=True)
    | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=40)
)
@settings(max_examples=300, deadline=None)
def test_the_quick_path_agrees_with_requests(text: str) -> None:
    """Lines the quick path accepts are exactly what preparing them in requests gives."""
    from requests.models import PreparedRequest

    from fetchpool.inputs import _PLAIN, normalise

    plain = _PLAIN.match(text)
    if not plain or int(plain.group(1) or 1) > 65535 or "/." in text or text.endswith("?"):
        return
    url, failure = normalise(text)
    request = PreparedRequest()
    request.prepare_url(text, None)  # must not raise for a line the quick path accepts
    assert failure is None and url == request.url


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])
def test_utf16_and_utf32_files_are_read_by_their_bom(encoding: str) -> None:
    """What Windows Notepad saves as "Unicode": a BOM, then UTF-16 LE, CRLF line ends."""
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}
    bom |= {"utf-32-le": codecs.BOM_UTF32_LE, "utf-32-be": codecs.BOM_UTF32_BE}
    text = "http://a.test/x\r\n# comment\r\n\r\nbücher.test/ü\r\nhttp://c.test/"
    got = items(bom.get(encoding, b"") + text.encode(encoding))
    assert got == [
        Target("http://a.test/x", 1),
        Target("https://xn--bcher-kva.test/%C3%BC", 4),
        Target("http://c.test/", 5),
    ]


def test_invalid_utf16_is_an_invalid_line_and_the_run_goes_on() -> None:
    data = (
        codecs.BOM_UTF16_LE
        + "http://a.test/\n".encode("utf-16-le")
        + b"\x00\xd8a\x00\n\x00"
        + "b.test\n".encode("utf-16-le")
    )
    got = items(data)
    assert got[0] == Target("http://a.test/", 1) and got[2] == Target("https://b.test/", 3)
    assert isinstance(got[1], Result) and got[1].error_message == "line is not valid UTF-16"


def test_a_utf16_file_is_decoded_as_it_streams_with_lines_still_bounded() -> None:
    class Counting(io.BytesIO):
        biggest = 0

        def read1(self, size: int = -1) -> bytes:
            assert size > 0  # never "the rest of the file"
            data = super().read1(size)
            Counting.biggest = max(Counting.biggest, len(data))
            return data

    body = "http://a.test/\n" + "x" * (MAX_LINE_BYTES * 3) + "\nhttp://b.test/\n"
    got = list(parse(read_lines(Counting(body.encode("utf-16")))))
    assert Counting.biggest <= 64 * 1024
    assert [getattr(x, "line", None) for x in got] == [1, 2, 3] and got[2] == Target("http://b.test/", 3)
    assert isinstance(got[1], Result) and got[1].url == "x" * SHOWN_CHARS + "…"


def test_a_huge_line_keeps_the_start_of_its_text() -> None:
    (got,) = items(b"http://a.test/" + b"y" * (MAX_LINE_BYTES * 2))
    assert isinstance(got, Result) and got.error is ErrorKind.INVALID_URL
    assert got.url == ("http://a.test/" + "y" * MAX_LINE_BYTES)[:SHOWN_CHARS] + "…"
    assert got.error_message == f"line longer than {MAX_LINE_BYTES} bytes"


def test_a_typed_line_is_not_held_back_waiting_for_a_bom() -> None:
    """Sniffing the BOM reads one byte at a time, and stops at the first that cannot begin one."""

    class OneLineThenBlock(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            assert size == 1, "sniffing must not ask for more than it needs"
            return super().read(size)

    lines = read_lines(OneLineThenBlock(b"http://a.test/\n"))
    assert next(lines) == b"http://a.test/\n"


def test_url_arguments_mix_with_files_in_order(tmp_path) -> None:
    a = tmp_path / "a.txt"
    a.write_bytes(b"http://a.test/1\n")
    got = list(open_inputs([UrlArgument("http://x.test/", 1), str(a), UrlArgument("nope", 2)], io.BytesIO()))
    assert [(x.input, x.line) for x in got] == [("args", 1), (str(a), 1), ("args", 2)]
    assert got[0] == Target("http://x.test/", 1, "args")


@given(
    st.builds(
        lambda scheme, user, host, rest: scheme + user + host + rest,
        st.sampled_from(["http://", "https://", "HTTP://", ""]),
        st.from_regex(r"\A([a-z0-9:%@!$&'()*+,;=.~-]{0,12}@)?\Z", fullmatch=True),
        st.from_regex(r"\A[a-z0-9.-]{1,12}(:[0-9]{1,6})?\Z", fullmatch=True),
        st.from_regex(r"\A(/[A-Za-z0-9\-._~!$&'()*+,;=:@/?]{0,20})?\Z", fullmatch=True),
    )
)
@settings(max_examples=300, deadline=None)
def test_the_quick_path_and_requests_agree_on_user_info(text: str) -> None:
    """Lines with user info never take the quick path, and the scheme-less ones get a scheme."""
    from requests.models import PreparedRequest

    from fetchpool.inputs import _PLAIN, normalise

    url, failure = normalise(text, "http")
    if "@" in text.split("/", 3)[2 if "://" in text else 0]:
        assert not _PLAIN.match(text)
    if failure is None and url is not None:
        request = PreparedRequest()
        request.prepare_url(text if "://" in text else "http://" + text, None)
        assert url == request.url


@pytest.mark.parametrize(
    "line",
    [
        "https://u@x.invalid</\\",
        "http://:p@%FF/\\",
        "http://x.invalid%3C/",
        "http://a%3Bb.test/",
    ],
)
def test_a_host_no_resolver_could_take_is_invalid_without_a_lookup(monkeypatch: pytest.MonkeyPatch, line: str) -> None:
    """requests percent-encodes what a host cannot hold; such a name must not reach the resolver."""
    import socket

    asked: list[object] = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: asked.append(host) or [])
    (record,) = list(fetch([line], Options(retries=0, timeout=5)))
    assert (record.error, record.error_message) == (ErrorKind.INVALID_URL, "not a valid URL: no usable host")
    assert asked == []


def test_a_redirect_to_a_host_no_resolver_could_take_is_refused(server) -> None:
    from urllib.parse import quote

    (record,) = list(fetch([server.url("/to?url=" + quote("http://x.invalid<y/", safe=""))], Options(retries=0)))
    assert (record.error, record.redirects) == (ErrorKind.INVALID_URL, 0), record
