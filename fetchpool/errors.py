"""Exceptions from requests, urllib3, http.client, ssl and socket -> one error kind and message.

requests wraps urllib3 which wraps http.client and the socket, so the meaningful cause
sits somewhere down a chain. We walk the whole chain, let the most specific rule win, and
describe the deepest matching exception, in words, on one line, without the connection
objects, URLs and addresses that the wrappers' own messages are full of.

Whether a broken connection is `protocol` or `read` depends on *when* it broke: before the
status line and headers arrived (the server closed or reset instead of answering: not valid
HTTP) or while the body was being read. urllib3 tells the two apart for us: a failure while
sending the request or waiting for the answer comes back as `ProtocolError("Connection
aborted.", cause)` inside a `requests.ConnectionError`; one while reading the body as
`ProtocolError("Connection broken: ...")` or `IncompleteRead`.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import ssl
import urllib.parse
from collections.abc import Callable, Iterator

import requests.auth
import requests.exceptions as rex
import urllib3.exceptions as uex

from .result import ErrorKind, redact_text


class FetchError(Exception):
    """Raised inside a fetch for an outcome we decided ourselves (redirect loop, scheme...)."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """Every exception reachable from `exc`, outermost first: causes, contexts, reasons and args."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        linked = [getattr(e, "reason", None), e.__cause__, e.__context__, *e.args]
        todo.extend(x for x in linked if isinstance(x, BaseException))


# urljoin/urlsplit raise a bare ValueError for text like `http://[::1`: an invalid URL, not a bug.
_URL_PARSER = os.path.normcase(urllib.parse.__file__)
# requests encodes Basic auth from a URL's user info in Latin-1 only: a Location can carry more.
_BASIC_AUTH = os.path.normcase(requests.auth.__file__)
_RESETS = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# urllib3's wrappers embed these; they say nothing a person needs and can be long.
_NOISE = (
    re.compile(r"\w+\(host='[^']*', port=\d+\): "),  # "HTTPConnectionPool(host=..., port=...): "
    re.compile(r"Max retries exceeded with url: \S+ \(Caused by .*"),
    re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>(: )?"),
    re.compile(r"<\w+\(host='[^']*', port=\d+\) at 0x[0-9a-f]+>(: )?"),
    re.compile(r"\(_ssl\.c:\d+\)"),
)


def _raised_in(e: BaseException, module_file: str) -> bool:
    """True when `e` was raised by code in `module_file` (its innermost traceback frame)."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and os.path.normcase(tb.tb_frame.f_code.co_filename) == module_file


def _before_answer(chain: list[BaseException]) -> bool:
    """True when the connection failed before the response's headers arrived."""
    for e in chain:
        if isinstance(e, uex.ProtocolError) and e.args and e.args[0] == "Connection aborted.":
            return True
    top = chain[0]
    return type(top) is rex.ConnectionError


def _strerror(e: BaseException) -> str:
    """`[Errno 104] Connection reset by peer` -> `connection reset by peer`."""
    if isinstance(e, OSError) and e.strerror:
        text = e.strerror
        return text[:1].lower() + text[1:]
    return _detail(e)


def _detail(e: BaseException) -> str:
    """An exception's own message, without wrapper noise and control characters."""
    text = str(e)
    if isinstance(e, uex.ProtocolError) and len(e.args) == 2 and isinstance(e.args[1], BaseException):
        text = _detail(e.args[1])
    for noise in _NOISE:
        text = noise.sub("", text)
    text = _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return " ".join(text.split()).strip(" :")


def _where(chain: list[BaseException], connection_only: bool = False) -> str:
    """` host:port` of the connection being made, when urllib3 says which.

    The connection an error names (to the proxy, when there is one) beats the pool (whose
    host, through a proxy, is the origin); `connection_only` ignores pools altogether.
    """
    holders: list[object] = [e.conn for e in chain if isinstance(e, uex.NewConnectionError)]
    holders += [e.args[0] for e in chain if isinstance(e, uex.ConnectTimeoutError) and e.args]
    if not connection_only:
        holders += [e.pool for e in chain if isinstance(e, uex.PoolError)]  # NewConnectionError.pool is deprecated
    for holder in holders:
        host, port = getattr(holder, "host", None), getattr(holder, "port", None)
        if host:
            return f" {host}:{port}" if port else f" {host}"
    return ""


def _with(label: str, detail: str) -> str:
    return f"{label}: {detail}" if detail else label


# -- one describer per outcome: (deepest matching exception, whole chain) -> message ---------

Describe = Callable[[BaseException, list[BaseException]], str]


def _dns(e: BaseException, chain: list[BaseException]) -> str:
    host = ""
    for x in chain:
        if isinstance(x, uex.NameResolutionError) and x.conn is not None:
            host = f" {x.conn.host}"
            break
    what = "proxy host" if any(isinstance(x, uex.ProxyError) for x in chain) else "host"
    gai = next((x for x in chain if isinstance(x, socket.gaierror)), None)
    return _with(f"could not resolve {what}{host}", _strerror(gai) if gai is not None else "")


def _refused(e: BaseException, chain: list[BaseException]) -> str:
    return f"connection refused by{_where(chain)}" if _where(chain) else "connection refused"


def _no_connection(e: BaseException, chain: list[BaseException]) -> str:
    cause = next((x for x in reversed(chain) if isinstance(x, OSError) and x.strerror), None)
    where = _where(chain)
    label = f"could not connect to{where}" if where else "could not connect"
    return _with(label, _strerror(cause) if cause is not None else _detail(e))


def _connect_timeout(e: BaseException, chain: list[BaseException]) -> str:
    seconds = next((m.group(1) for x in chain if (m := re.search(r"connect timeout=([\d.]+)", str(x)))), None)
    after = f" after {float(seconds):g} s" if seconds else ""
    return f"timed out connecting to{_where(chain)}{after}" if _where(chain) else f"timed out connecting{after}"


def _read_timeout(e: BaseException, chain: list[BaseException]) -> str:
    return "timed out waiting for the server"


def _tls(e: BaseException, chain: list[BaseException]) -> str:
    for x in chain:
        if isinstance(x, ssl.SSLCertVerificationError):
            return _with("TLS certificate verification failed", (x.verify_message or _detail(x)).rstrip("."))
        if isinstance(x, ssl.CertificateError):
            return _with("TLS certificate verification failed", _detail(x))
    inner = next((x for x in reversed(chain) if isinstance(x, ssl.SSLError)), e)
    reason = getattr(inner, "reason", None)
    detail = reason.lower().replace("_", " ") if isinstance(reason, str) else _detail(inner)
    return _with("TLS handshake failed", detail)


def _proxy(e: BaseException, chain: list[BaseException]) -> str:
    inner = [x for x in chain if isinstance(x, OSError) and not isinstance(x, rex.RequestException)]
    cause = next((x for x in reversed(inner) if x.strerror), inner[-1] if inner else None)
    label = f"could not use the proxy{_where(chain, connection_only=True)}"
    return _with(label, _strerror(cause) if cause is not None else _detail(e))


def _closed_before_answer(e: BaseException, chain: list[BaseException]) -> str:
    if getattr(e, "nothing", True) is False:  # the head had begun: see connection._Response
        return str(e)
    return "server closed the connection without answering"


def _reset_before_answer(e: BaseException, chain: list[BaseException]) -> str:
    return "connection reset by the server before it answered"


def _bad_answer(e: BaseException, chain: list[BaseException]) -> str:
    if type(e) is http.client.BadStatusLine and e.args:
        line = e.args[0] if isinstance(e.args[0], str) else str(e.args[0])
        shown = repr(line.strip().encode("latin-1", "replace"))[2:-1]
        shown = shown if len(shown) <= 80 else shown[:79] + "…"
        return f'not an HTTP response: status line "{shown}"'
    return _with("bad HTTP response", _detail(e))


def _bad_header(e: BaseException, chain: list[BaseException]) -> str:
    return _with("bad HTTP header", _detail(e))


def _incomplete(e: BaseException, chain: list[BaseException]) -> str:
    inner = next((x for x in reversed(chain) if isinstance(x, http.client.IncompleteRead)), None)
    if isinstance(inner, uex.InvalidChunkLength):
        return "bad chunked encoding: invalid chunk length"
    if inner is not None and inner.expected is None:  # http.client's chunked reader says no more
        return "bad chunked encoding, or the body ended inside a chunk"
    if inner is not None:
        got = inner.partial if isinstance(inner.partial, int) else len(inner.partial)
        return f"body ended early: {got} bytes read, {inner.expected} more expected"
    return _with("body ended early", _detail(e))


def _reset_in_body(e: BaseException, chain: list[BaseException]) -> str:
    return _with("connection broken while reading the body", _strerror(e))


def _protocol(e: BaseException, chain: list[BaseException]) -> str:
    return _with("HTTP protocol error", _detail(e))


def _connect(e: BaseException, chain: list[BaseException]) -> str:
    return _with("connection failed", _strerror(e))


def _connect_timeout_only(e: BaseException) -> bool:
    """urllib3 makes NewConnectionError (refused, unreachable...) a ConnectTimeoutError subclass."""
    return isinstance(e, (uex.ConnectTimeoutError, rex.ConnectTimeout)) and not isinstance(e, uex.NewConnectionError)


Match = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
Rule = tuple[Match, ErrorKind, Describe, bool | None]


def _matches(match: Match, e: BaseException) -> bool:
    if isinstance(match, (type, tuple)):
        return isinstance(e, match)
    return match(e)


# Most specific first: the first rule any exception in the chain matches wins. The last field
# limits a rule to failures before the answer (True), while reading the body (False), or neither.
_RULES: tuple[Rule, ...] = (
    ((uex.NameResolutionError, socket.gaierror), ErrorKind.DNS, _dns, None),
    (rex.TooManyRedirects, ErrorKind.TOO_MANY_REDIRECTS, lambda e, c: _with("too many redirects", _detail(e)), None),
    (rex.InvalidSchema, ErrorKind.UNSUPPORTED_SCHEME, lambda e, c: _with("unsupported scheme", _detail(e)), None),
    (
        (rex.InvalidURL, rex.MissingSchema, uex.LocationParseError, uex.LocationValueError),
        ErrorKind.INVALID_URL,
        lambda e, c: _with("invalid URL", _detail(e)),
        None,
    ),
    (_connect_timeout_only, ErrorKind.TIMEOUT, _connect_timeout, None),
    ((uex.ReadTimeoutError, rex.ReadTimeout, socket.timeout), ErrorKind.TIMEOUT, _read_timeout, None),
    (uex.ProxyError, ErrorKind.CONNECT, _proxy, None),  # before the refusals: it is the proxy that refused
    (ConnectionRefusedError, ErrorKind.CONNECT, _refused, None),
    (uex.NewConnectionError, ErrorKind.CONNECT, _no_connection, None),
    ((ssl.SSLError, ssl.CertificateError, uex.SSLError, rex.SSLError), ErrorKind.TLS, _tls, None),
    # RemoteDisconnected is also a ConnectionResetError: it must come before the resets.
    (http.client.RemoteDisconnected, ErrorKind.PROTOCOL, _closed_before_answer, None),
    ((http.client.BadStatusLine, http.client.LineTooLong), ErrorKind.PROTOCOL, _bad_answer, None),
    ((uex.InvalidHeader, uex.HeaderParsingError, rex.InvalidHeader), ErrorKind.PROTOCOL, _bad_header, None),
    ((http.client.IncompleteRead, rex.ChunkedEncodingError), ErrorKind.READ, _incomplete, None),
    (_RESETS, ErrorKind.PROTOCOL, _reset_before_answer, True),
    (_RESETS, ErrorKind.READ, _reset_in_body, False),
    (http.client.HTTPException, ErrorKind.PROTOCOL, _bad_answer, True),
    (http.client.HTTPException, ErrorKind.READ, lambda e, c: _with("bad HTTP body", _detail(e)), False),
    (uex.ProtocolError, ErrorKind.PROTOCOL, _protocol, True),
    (
        uex.ProtocolError,
        ErrorKind.READ,
        lambda e, c: _with("connection broken while reading the body", _detail(e)),
        False,
    ),
    (
        (uex.DecodeError, rex.ContentDecodingError),
        ErrorKind.READ,
        lambda e, c: _with("bad body encoding", _detail(e)),
        None,
    ),
    ((OSError, rex.ConnectionError), ErrorKind.CONNECT, _connect, None),
)


def classify(exc: BaseException, deadline_passed: bool, timeout: float) -> tuple[ErrorKind, str]:
    """The error kind and a one-line message for whatever a fetch raised; never raises itself."""
    if deadline_passed:
        return ErrorKind.TIMEOUT, f"no complete response within the {timeout:g} s total deadline"
    try:
        return _classify(exc)
    except Exception as bug:  # noqa: BLE001 - a record must still be written
        return ErrorKind.INTERNAL, _one_line(
            f"unexpected {type(exc).__name__} (and {type(bug).__name__} describing it)"
        )


def _classify(exc: BaseException) -> tuple[ErrorKind, str]:
    chain = list(_chain(exc))
    for e in chain:
        if isinstance(e, FetchError):
            return e.kind, _one_line(str(e))
    before = _before_answer(chain)
    for match, kind, describe, stage in _RULES:
        if stage is not None and stage != before:
            continue
        matches = [e for e in chain if _matches(match, e)]
        if matches:
            return kind, _one_line(describe(matches[-1], chain))
    for e in chain:
        if isinstance(e, ValueError) and _raised_in(e, _URL_PARSER):
            return ErrorKind.INVALID_URL, _one_line(_with("invalid URL", _detail(e)))
        if isinstance(e, UnicodeEncodeError) and _raised_in(e, _BASIC_AUTH):
            return ErrorKind.INVALID_URL, "invalid URL: user name or password is not Latin-1: cannot be sent"
    return ErrorKind.INTERNAL, _one_line(f"unexpected {type(exc).__name__}: {_detail(exc)}")


def _one_line(text: str, limit: int = 300) -> str:
    """Every message ends here: redacted first (exception texts quote URLs), then cut short."""
    text = " ".join(_UNPRINTABLE.sub(" ", redact_text(text)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
