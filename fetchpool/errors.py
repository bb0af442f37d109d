"""Exceptions from requests, urllib3, http.client, ssl and socket -> one error kind and message.

requests wraps urllib3 which wraps http.client and the socket, so the meaningful cause
sits somewhere down a chain. We walk the whole chain and let the most specific cause win.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator

import requests.exceptions as rex
import urllib3.exceptions as uex

from .result import ErrorKind


class FetchError(Exception):
    """Raised inside a fetch for an outcome we decided ourselves (redirect loop, scheme...)."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """Every exception reachable from `exc`: causes, contexts, wrapped reasons and args."""
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


# Most specific first: the first rule any exception in the chain matches wins.
_RULES: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], ErrorKind, str], ...] = (
    (FetchError, ErrorKind.INTERNAL, ""),  # kind taken from the exception itself
    (uex.NameResolutionError, ErrorKind.DNS, "could not resolve host"),
    (socket.gaierror, ErrorKind.DNS, "could not resolve host"),
    (rex.TooManyRedirects, ErrorKind.TOO_MANY_REDIRECTS, "too many redirects"),
    (rex.InvalidSchema, ErrorKind.UNSUPPORTED_SCHEME, "unsupported scheme"),
    ((rex.InvalidURL, rex.MissingSchema, uex.LocationParseError), ErrorKind.INVALID_URL, "invalid URL"),
    # urllib3 makes NewConnectionError a ConnectTimeoutError subclass: test it first.
    (ConnectionRefusedError, ErrorKind.CONNECT, "connection refused"),
    (uex.NewConnectionError, ErrorKind.CONNECT, "could not connect"),
    ((uex.ConnectTimeoutError, rex.ConnectTimeout), ErrorKind.TIMEOUT, "connect timed out"),
    ((uex.ReadTimeoutError, rex.ReadTimeout, socket.timeout), ErrorKind.TIMEOUT, "timed out waiting for the server"),
    ((ssl.SSLError, ssl.CertificateError, uex.SSLError, rex.SSLError), ErrorKind.TLS, "TLS error"),
    (uex.ProxyError, ErrorKind.CONNECT, "proxy error"),
    (
        (http.client.RemoteDisconnected, http.client.BadStatusLine, http.client.LineTooLong),
        ErrorKind.PROTOCOL,
        "bad HTTP response",
    ),
    ((uex.InvalidHeader, uex.HeaderParsingError, rex.InvalidHeader), ErrorKind.PROTOCOL, "bad HTTP header"),
    (
        (http.client.IncompleteRead, uex.IncompleteRead, ConnectionResetError, rex.ChunkedEncodingError),
        ErrorKind.READ,
        "connection broken while reading",
    ),
    ((uex.ProtocolError, http.client.HTTPException), ErrorKind.PROTOCOL, "HTTP protocol error"),
    ((OSError, rex.ConnectionError), ErrorKind.CONNECT, "connection failed"),
)


def classify(exc: BaseException, deadline_passed: bool, timeout: float) -> tuple[ErrorKind, str]:
    """The error kind and a one-line message for whatever a fetch raised."""
    if deadline_passed:
        return ErrorKind.TIMEOUT, f"no complete response within the {timeout:g} s total deadline"
    chain = list(_chain(exc))
    for types, kind, label in _RULES:
        for e in chain:
            if isinstance(e, types):
                if isinstance(e, FetchError):
                    return e.kind, str(e)
                return kind, _message(label, e)
    return ErrorKind.INTERNAL, f"unexpected {type(exc).__name__}: {exc}"


def _message(label: str, exc: BaseException) -> str:
    detail = str(exc).strip()
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        detail = exc.verify_message
    elif isinstance(exc, uex.NameResolutionError):
        detail = f"{exc.conn.host if exc.conn else ''}".strip()
    return f"{label}: {detail}" if detail else label
