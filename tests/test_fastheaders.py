"""The quick header parser gives what the standard one gives."""

from __future__ import annotations

import http.client
import io

import pytest

from fetchpool.fastheaders import _standard, parse_headers

BLOCKS = [
    b"Content-Type: text/html\r\nContent-Length: 12\r\n\r\n",
    b"A:b\r\nA:  c  \r\nSet-Cookie: x=1\r\nSet-Cookie: y=2\r\n\r\n",
    b"Folded: one\r\n  two\r\nNext: 3\r\n\r\n",
    b"no colon here\r\nX: 1\r\n\r\n",
    b" Leading: space\r\n\r\n",
    b"Empty:\r\nTabbed:\t v\r\n\n",
    b"Latin: caf\xe9\r\n\r\n",
    b"\r\n",
]


@pytest.mark.parametrize("block", BLOCKS)
def test_same_message_as_the_standard_parser(block: bytes) -> None:
    fast = parse_headers(io.BytesIO(block + b"BODY"))
    slow = _standard(io.BytesIO(block + b"BODY"))  # the original, even if a CLI test installed ours
    assert fast.items() == slow.items()
    assert fast.get_all("a") == slow.get_all("a") and fast.get("content-length") == slow.get("content-length")
    assert isinstance(fast, http.client.HTTPMessage)


def test_limits_still_apply() -> None:
    with pytest.raises(http.client.LineTooLong):
        parse_headers(io.BytesIO(b"X: " + b"a" * 70000 + b"\r\n\r\n"))
    with pytest.raises(http.client.HTTPException):
        parse_headers(io.BytesIO(b"X: 1\r\n" * 200 + b"\r\n"))


def test_the_body_is_left_unread() -> None:
    fp = io.BytesIO(b"A: 1\r\n\r\nBODY")
    parse_headers(fp)
    assert fp.read() == b"BODY"
