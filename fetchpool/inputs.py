"""Input lines -> numbered targets, or a ready `invalid_url`/`unsupported_scheme` record.

Nothing here raises on bad text: undecodable bytes, giant lines and junk all become
records, so one bad line never stops a run of ten million.
"""

from __future__ import annotations

import codecs
import operator
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import unquote

from requests.exceptions import RequestException
from requests.models import PreparedRequest

from .checks import Checks
from .jsoninput import parse_object
from .result import ErrorKind, Result, clip, redact_text, redact_url

MAX_LINE_BYTES = 64 * 1024
SHOWN_CHARS = 200  # of a line too long to parse, the part its record shows
FETCHABLE = ("http", "https")
ARGS = "args"  # the `input` of URLs given as arguments
# Longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CHUNK = 64 * 1024
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
# `user:password@host[:port]` with no scheme: RFC 3986 user info, then a plain host.
_BARE_CREDENTIALS = re.compile(
    r"[A-Za-z0-9\-._~!$&'()*+,;=:%@]*@(?:[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?(?:[/?#]|\Z)"
)
# Schemes whose URLs are `name:someone@host` themselves: never read as user:password.
_OPAQUE = frozenset(("mailto", "news", "xmpp", "sip", "sips", "acct", "im", "pres", "mid", "cid", "javascript", "data"))
_PORT_ZERO = re.compile(r"[^:]*://[^/?#]*:0+(?:[/?#]|\Z)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# In the text of a bad JSON line shown in its record: the value of a credential header.
_SECRET_VALUE = re.compile(r'("(?:authorization|cookie|proxy-authorization)"\s*:\s*)"(?:[^"\\]|\\.)*"', re.I)
# URLs that requests' prepare_url would return unchanged (but for a "/" path): lower-case
# ASCII host, no user info, no percent signs or fragment, only characters it never quotes.
# Most input lines look like this, and matching is ten times cheaper than preparing.
_PLAIN = re.compile(
    r"https?://[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::([1-9][0-9]{0,4}))?"
    r"(/[A-Za-z0-9\-._~!$&'()*+,;=:@/?]*)?\Z"
)


@dataclass(frozen=True, slots=True)
class Target:
    """A URL worth fetching, normalised, with where it came from and the request to make.

    A bare URL line leaves the request fields at their defaults (the run's options
    apply); a JSON line can set them per target. A worker is handed the Target whole.
    """

    url: str
    line: int
    input: str = "-"
    method: str | None = None  # None: the run's method
    headers: tuple[tuple[str, str | None], ...] = ()  # over the run's headers; None removes one
    body: bytes | None = None  # None: the run's -d, if any
    id: Any = None  # the caller's, echoed in the record (and the key of state and resume)
    meta: Any = None  # the caller's, echoed in the record unchanged
    checks: Checks | None = None  # a JSON line's own checks, in place of the run's

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as a plain tuple: a slotted dataclass's default state costs twice the time,
        and every URL crosses to a worker process this way."""
        return Target, _target_fields(self)


_target_fields = operator.attrgetter(*Target.__dataclass_fields__)  # in the constructor's order, as one tuple


@dataclass(frozen=True, slots=True)
class UrlArgument:
    """A URL given on the command line instead of a FILE; `position` counts such arguments."""

    url: str
    position: int = 1


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that cannot be a URL whatever it says (too long, undecodable), and what to show."""

    shown: str
    message: str


Item = Target | Result
Line = bytes | str | BadLine | None  # None: a line too long, of which nothing is kept


def read_lines(stream: BinaryIO, limit: int = MAX_LINE_BYTES) -> Iterator[bytes | str | BadLine]:
    """Yield the lines of one input lazily, decoded as its byte-order mark says.

    UTF-8 (with or without a mark) stays bytes, split by `readline(limit)`, which keeps
    memory bounded even for a file with no newline; UTF-16 and UTF-32 are decoded as they
    stream. A line longer than `limit` becomes a `BadLine` showing its beginning.
    """
    encoding, head = _sniff(stream)
    if encoding not in (None, "utf-8"):
        yield from _decoded_lines(stream, encoding, head, limit)
        return
    while True:
        chunk = head if head.endswith(b"\n") else head + stream.readline(limit + 1 - len(head))
        head = b""
        if not chunk:
            return
        if len(chunk) > limit and not chunk.endswith(b"\n"):
            shown = chunk[: SHOWN_CHARS * 20].decode("utf-8", "backslashreplace")
            while chunk and not chunk.endswith(b"\n"):
                chunk = stream.readline(limit + 1)
            yield _too_long(shown)
        else:
            yield chunk


def _sniff(stream: BinaryIO) -> tuple[str | None, bytes]:
    """The encoding a byte-order mark names, and the bytes read after it.

    Reads one byte at a time, and only while what it read could still begin a mark: a
    line typed on a terminal is never held back waiting for more.
    """
    head = b""
    while len(head) < 4 and any(len(bom) > len(head) and bom.startswith(head) for bom, _ in _BOMS):
        byte = stream.read(1)
        if not byte:
            break
        head += byte
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding, head[len(bom) :]
    return None, head


def _decoded_lines(stream: BinaryIO, encoding: str, head: bytes, limit: int) -> Iterator[str | BadLine]:
    """Lines of a UTF-16 or UTF-32 stream, decoded chunk by chunk; memory stays bounded."""
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    read = getattr(stream, "read1", stream.read)
    pending, dropped, data = decoder.decode(head), "", b"x"
    while data:
        data = read(_CHUNK)
        pending += decoder.decode(data, final=not data)
        *lines, pending = pending.split("\n")
        for line in lines:
            if dropped:
                yield _too_long(dropped)
                dropped = ""
            else:
                yield _checked(line, encoding)
        if len(pending) > limit:  # characters: at least as many bytes in UTF-8
            dropped, pending = dropped or pending[: SHOWN_CHARS * 20], ""
    if dropped:
        yield _too_long(dropped)
    elif pending:
        yield _checked(pending, encoding)


def _checked(line: str, encoding: str) -> str | BadLine:
    """A decoded line, or why not: the decoder put U+FFFD where the bytes were not valid."""
    if "\ufffd" not in line:
        return line
    return BadLine(redact_text(redact_url(line.strip())), f"line is not valid {encoding[:6].upper()}")


def _too_long(start: str) -> BadLine:
    return BadLine(
        clip(redact_text(redact_url(start.strip())), SHOWN_CHARS), f"line longer than {MAX_LINE_BYTES} bytes"
    )


def split_scheme(text: str) -> tuple[str | None, str]:
    """Find a URL's scheme, telling `mailto:x` (a scheme) from `host:8080/x` (a port) and
    from `user:password@host/x` (user info, with the scheme left out)."""
    m = _SCHEME.match(text)
    if not m:
        return None, text
    name, rest = m.group(1).lower(), text[m.end() :]
    if rest.startswith("//") or name in _OPAQUE:
        return name, text
    if rest[:1].isdigit():
        return None, text
    if name not in FETCHABLE and _BARE_CREDENTIALS.match(rest):
        return None, text
    return name, text


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
    userinfo, _, host = url.split("://", 1)[1].split("/", 1)[0].rpartition("@")
    if not usable_host(host):
        return None, _bad(original, ErrorKind.INVALID_URL, "not a valid URL: no usable host")
    if userinfo and not _latin1(unquote(userinfo)):  # requests sends Basic auth in Latin-1 only
        return None, _bad(original, ErrorKind.INVALID_URL, "user name or password is not Latin-1: cannot be sent")
    return url, None


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


_HOST = re.compile(r"(?:[a-z0-9_-]+\.?)+|\[[0-9a-f:.]+(?:%25[0-9a-z._~-]+)?\]", re.IGNORECASE)
_IDN_HOST = re.compile(r"(?:[\w-]+\.?)+|\[[0-9a-f:.]+(?:%25[0-9a-z._~-]+)?\]", re.IGNORECASE)  # before IDNA


def usable_host(authority: str, idn: bool = False) -> bool:
    """A host (with its port) that can be looked up or connected to as it is.

    requests percent-encodes what a host cannot hold (`x.invalid<` becomes `x.invalid%3C`):
    such a name would only go to the resolver, and a name under `.invalid` would no longer
    be seen to be one. Only letters, digits, `-`, `_` and dots, or a bracketed IPv6 address;
    with `idn`, for a redirect's Location not yet IDNA-encoded, letters of any script too.
    """
    host, _, port = authority.rpartition(":") if not authority.endswith("]") else (authority, "", "")
    if not host or (port and not port.isdigit()):
        host = authority
    return bool((_IDN_HOST if idn else _HOST).fullmatch(host))


def _bad(text: str, kind: ErrorKind, message: str) -> Result:
    """The record of a line that cannot be fetched; `failed()` redacts its texts."""
    scheme = split_scheme(text)[0]
    if scheme is None and not text.startswith("//"):
        text = redact_url("//" + text)[2:]  # `user:password@host` has its password too
    elif scheme not in _OPAQUE:
        text = redact_text(text)  # whatever `name:x@host` looks like user info
    return Result.failed(text, 0, kind, message)


def parse(
    lines: Iterable[Line], source: str = "-", default_scheme: str = "https", input_format: str = "auto"
) -> Iterator[Item]:
    """Number lines from 1, skip blanks and `#` comments, classify the rest."""
    for number, raw in enumerate(lines, start=1):
        item = parse_line(raw, number, source, default_scheme, input_format)
        if item is not None:
            yield item


def parse_line(
    raw: Line, number: int, source: str = "-", default_scheme: str = "https", input_format: str = "auto"
) -> Item | None:
    """One line -> a target, a failure record, or None for blank and comment lines.

    A byte-order mark at the start of any line is ignored: `cat a.txt b.txt` keeps b's.
    `input_format` says which lines are JSON objects: `auto` those starting with `{`,
    `jsonl` all, `lines` none.
    """
    if raw is None:
        raw = BadLine("", f"line longer than {MAX_LINE_BYTES} bytes")
    elif isinstance(raw, bytes):
        data = raw
        try:
            raw = data.decode("utf-8")
        except UnicodeDecodeError:
            raw = BadLine(redact_text(data.strip().decode("utf-8", "backslashreplace")), "line is not valid UTF-8")
    elif isinstance(raw, str) and len(raw) > MAX_LINE_BYTES // 4:
        if len(raw.encode("utf-8", "surrogatepass")) > MAX_LINE_BYTES:
            raw = _too_long(raw[: SHOWN_CHARS * 20])
    if isinstance(raw, BadLine):
        return Result.failed(raw.shown, number, ErrorKind.INVALID_URL, raw.message, source)
    text = raw.lstrip("\ufeff").strip()
    if not text or text.startswith("#"):
        return None
    if input_format != "lines" and (input_format == "jsonl" or text.startswith("{")):
        return json_target(text, number, source, default_scheme)
    url, failure = normalise(text, default_scheme)
    if failure is not None:
        failure.line, failure.input = number, source
        return failure
    assert url is not None
    return Target(url, number, source)


_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_SECRET_NAME = re.compile(r"authorization|cookie", re.I)


def _hide_secrets(text: str) -> str:
    """A bad JSON line as shown in its record: nothing after a secret header's name.

    The line may be torn, or hold the value as a list or with escapes (`Auth\\u006frization`),
    so masking the value in place cannot be relied on: everything after the name goes.
    """
    loose = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    found = _SECRET_NAME.search(loose)
    return _SECRET_VALUE.sub(r'\1"***"', text) if found is None else loose[: found.end()] + '": "***"'


def json_target(text: str, number: int, source: str, default_scheme: str) -> Item:
    """A JSON line -> its Target, or an `invalid_url` record saying what is wrong with it.

    Its URL is normalised exactly as a bare line's; a record for a bad URL still echoes
    the object's id and meta, so it can be joined back.
    """
    request = parse_object(text)
    if isinstance(request, str):
        shown = clip(redact_text(redact_url(_hide_secrets(text))), SHOWN_CHARS)
        return Result.failed(shown, number, ErrorKind.INVALID_URL, f"JSON line {number}: {request}", source)
    url, failure = normalise(request.url, default_scheme)
    if failure is not None:
        failure.line, failure.input = number, source
        extra = {
            k: v for k, v in (("method", request.method), ("id", request.id), ("meta", request.meta)) if v is not None
        }
        failure.extra = extra or None
        return failure
    assert url is not None
    headers = request.headers
    if request.json_body and not any(name.lower() == "content-type" for name, _ in headers):
        headers += (("Content-Type", "application/json"),)
    return Target(url, number, source, request.method, headers, request.body, request.id, request.meta, request.checks)


def open_inputs(
    paths: Iterable[str | UrlArgument], stdin: BinaryIO, default_scheme: str = "https", input_format: str = "auto"
) -> Iterator[Item]:
    """Chain every input in order, opening each file only when its turn comes.

    A URL argument is always a URL, never JSON.
    """
    for path in paths:
        if isinstance(path, UrlArgument):
            item = parse_line(path.url, path.position, ARGS, default_scheme, "lines")
            if item is not None:
                yield item
        elif path == "-":
            yield from parse(read_lines(stdin), "-", default_scheme, input_format)
        else:
            with open(path, "rb") as f:
                yield from parse(read_lines(f), path, default_scheme, input_format)
