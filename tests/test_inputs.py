"""Input lines -> targets or records: every rule of the input format."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fetchpool.inputs import MAX_LINE_BYTES, Target, open_inputs, parse, read_lines
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
