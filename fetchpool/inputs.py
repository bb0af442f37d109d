"""Input lines -> numbered targets, or a ready `invalid_url`/`unsupported_scheme` record.

Nothing here raises on bad text: undecodable bytes, giant lines and junk all become
records, so one bad line never stops a run of ten million.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from requests.exceptions import RequestException
from requests.models import PreparedRequest

from .result import ErrorKind, Result, redact_url

MAX_LINE_BYTES = 64 * 1024
FETCHABLE = ("http", "https")
_BOM = b"\xef\xbb\xbf"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_PORT_ZERO = re.compile(r"[^:]*://[^/?#]*:0+(?:[/?#]|\Z)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# URLs that requests' prepare_url would return unchanged (but for a "/" path): lower-case
# ASCII host, no user info, no percent signs or fragment, only characters it never quotes.
# Most input lines look like this, and matching is ten times cheaper than preparing.
_PLAIN = re.compile(
    r"https?://[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::([1-9][0-9]{0,4}))?"
    r"(/[A-Za-z0-9\-._~!$&'()*+,;=:@/?]*)?\Z"
)


@dataclass(frozen=True, slots=True)
class Target:
    """A URL worth fetching: normalised, with where it came from."""

    url: str
    line: int
    input: str = "-"


Item = Target | Result


def read_lines(stream: BinaryIO, limit: int = MAX_LINE_BYTES) -> Iterator[bytes | None]:
    """Yield raw lines lazily; `None` stands for a line longer than `limit` (skipped).

    `readline(limit)` keeps memory bounded even for a file with no newline at all.
    """
    while True:
        chunk = stream.readline(limit + 1)
        if not chunk:
            return
        if len(chunk) > limit and not chunk.endswith(b"\n"):
            while chunk and not chunk.endswith(b"\n"):
                chunk = stream.readline(limit + 1)
            yield None
        else:
            yield chunk


def split_scheme(text: str) -> tuple[str | None, str]:
    """Find a URL's scheme, telling `mailto:x` (a scheme) from `host:8080/x` (a port)."""
    m = _SCHEME.match(text)
    if not m:
        return None, text
    rest = text[m.end() :]
    if rest.startswith("//") or not rest[:1].isdigit():
        return m.group(1).lower(), text
    return None, text


def normalise(text: str, default_scheme: str = "https") -> tuple[str, None] | tuple[None, Result]:
    """Return the URL to fetch, or the record explaining why it cannot be fetched."""
    plain = _PLAIN.match(text)
    # requests resolves dot segments and drops an empty query: those take the long way
    if plain and int(plain.group(1) or 1) <= 65535 and "/." not in text and not text.endswith("?"):
        return (text if plain.group(2) else text + "/"), None
    original = text
    scheme, _ = split_scheme(text)
    if scheme is None:
        text = f"{default_scheme}:{text}" if text.startswith("//") else f"{default_scheme}://{text}"
    elif scheme not in FETCHABLE:
        return None, _bad(
            text, ErrorKind.UNSUPPORTED_SCHEME, f"scheme '{scheme}:' is not fetched (only http and https)"
        )
    if _CONTROL.search(text):
        return None, _bad(original, ErrorKind.INVALID_URL, "control character in URL")
    try:
        req = PreparedRequest()
        req.prepare_url(text, None)
    except (RequestException, ValueError, UnicodeError) as exc:
        return None, _bad(original, ErrorKind.INVALID_URL, f"not a valid URL: {exc}")
    url = req.url or text
    if _PORT_ZERO.match(text):  # requests drops ":0" and would fetch port 80 instead
        return None, _bad(original, ErrorKind.INVALID_URL, "not a valid URL: port 0")
    host = url.split("://", 1)[1].split("/", 1)[0].rpartition("@")[2]
    if not host or " " in host:
        return None, _bad(original, ErrorKind.INVALID_URL, "not a valid URL: no usable host")
    return url, None


def _bad(text: str, kind: ErrorKind, message: str) -> Result:
    return Result.failed(redact_url(text), 0, kind, message)


def parse(lines: Iterable[bytes | str | None], source: str = "-", default_scheme: str = "https") -> Iterator[Item]:
    """Number lines from 1, skip blanks and `#` comments, classify the rest."""
    for number, raw in enumerate(lines, start=1):
        item = parse_line(raw, number, source, default_scheme)
        if item is not None:
            yield item


def parse_line(raw: bytes | str | None, number: int, source: str = "-", default_scheme: str = "https") -> Item | None:
    """One line -> a target, a failure record, or None for blank and comment lines."""
    if raw is None:
        return Result.failed("", number, ErrorKind.INVALID_URL, f"line longer than {MAX_LINE_BYTES} bytes", source)
    if isinstance(raw, bytes):
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            shown = raw.strip().decode("utf-8", "backslashreplace")
            return Result.failed(shown, number, ErrorKind.INVALID_URL, "line is not valid UTF-8", source)
    elif len(raw) > MAX_LINE_BYTES // 4 and len(raw.encode("utf-8", "surrogatepass")) > MAX_LINE_BYTES:
        return Result.failed("", number, ErrorKind.INVALID_URL, f"line longer than {MAX_LINE_BYTES} bytes", source)
    else:
        text = raw.lstrip("\ufeff") if number == 1 else raw
    text = text.strip()
    if not text or text.startswith("#"):
        return None
    url, failure = normalise(text, default_scheme)
    if failure is not None:
        failure.line, failure.input = number, source
        return failure
    assert url is not None
    return Target(url, number, source)


def open_inputs(paths: Iterable[str], stdin: BinaryIO, default_scheme: str = "https") -> Iterator[Item]:
    """Chain every input in order, opening each file only when its turn comes."""
    for path in paths:
        if path == "-":
            yield from parse(read_lines(stdin), "-", default_scheme)
            continue
        with open(path, "rb") as f:
            yield from parse(read_lines(f), path, default_scheme)
