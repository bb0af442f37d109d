"""The one record every input line becomes, and the closed vocabulary of error kinds.

A fetch never raises to its caller: whatever happens to a URL is a value here, so the
engine can promise exactly one record per input line.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any


class ErrorKind(str, Enum):
    """Why a record is not ok. Closed: the README documents each one."""

    INVALID_URL = "invalid_url"
    UNSUPPORTED_SCHEME = "unsupported_scheme"
    DNS = "dns"
    CONNECT = "connect"
    TIMEOUT = "timeout"
    TLS = "tls"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    PROTOCOL = "protocol"
    READ = "read"
    CHECK = "check"
    SAVE = "save"
    INTERNAL = "internal"


@dataclass(slots=True)
class Result:
    """What one input line gave. Field order is the JSON key order."""

    url: str
    line: int
    input: str = "-"
    status: int | None = None
    ok: bool = False
    final_url: str | None = None
    redirects: int = 0
    elapsed_ms: float = 0.0
    ttfb_ms: float | None = None
    bytes: int = 0
    truncated: bool = False
    content_type: str | None = None
    attempts: int = 0
    error: ErrorKind | None = None
    error_message: str | None = None
    extra: dict[str, Any] | None = None  # EXTRA_FIELDS present in this record; not a JSON key itself

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict; the error kind becomes its string; extra keys come last."""
        d = dict(zip(FIELDS, _shown(self), strict=True))  # asdict() deep-copies: 5x slower
        if self.error is not None:
            d["error"] = self.error.value
        if self.extra:
            d.update(self.extra)
        return d

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as a plain tuple: every record crosses back from a worker process."""
        return Result, _all(self)

    @classmethod
    def failed(cls, url: str, line: int, kind: ErrorKind, message: str, source: str = "-") -> Result:
        """A record for a line that was never fetched (or failed before any reply).

        Both texts are redacted here, whoever built them: a password never reaches a record.
        """
        return cls(url=redact_url(url), line=line, input=source, error=kind, error_message=redact_text(message))


_ALL_FIELDS: tuple[str, ...] = tuple(Result.__dataclass_fields__)
FIELDS: tuple[str, ...] = tuple(name for name in _ALL_FIELDS if name != "extra")
_all, _shown = operator.attrgetter(*_ALL_FIELDS), operator.attrgetter(*FIELDS)  # one C call for all fields
# Keys a record carries only when the feature that fills them is on, in this order.
EXTRA_FIELDS: tuple[str, ...] = (
    "method",  # JSON-line input that gave its own method
    "id",  # JSON-line input: the caller's id
    "meta",  # JSON-line input: the caller's meta
    "headers",  # --include-header
    "title",  # --title
    "sha256",  # --hash, --save-dir, --state
    "saved_to",  # --save-dir
    "cert_expires",  # --cert-days (https)
    "cert_days_left",  # --cert-days (https)
    "changed",  # --state
    "prev_status",  # --state
    "prev_ok",  # --state
    "fails_in_a_row",  # --state
)


# `scheme://user:password@`: the password runs to the last `@` before the path, as in urllib3.
_IN_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/?#:@]*):[^\s/?#]*@")
# The same percent-encoded, as in `?next=https%3A%2F%2Fuser%3Apassword%40host`.
_IN_URL_ENCODED = re.compile(
    r"([A-Za-z][A-Za-z0-9+.-]*%3A%2F%2F(?:(?!%3A|%40)[^\s/?#&])*)%3A(?:(?!%40)[^\s/?#&])*%40", re.IGNORECASE
)
# `user:password@host` without a scheme, as a message may quote a netloc.
_BARE = re.compile(r"(?<![\w+.-])([\w.~!$&'()*+,;=%-]+):[^\s/?#]*@(?=[\w\[])")
MASK = "***"


def redact_url(url: str) -> str:
    """Mask the password of `scheme://user:pass@host`, and of any URL inside it (a query).

    The user name stays, so a person can still tell which account a line uses.
    """
    head, sep, rest = url.partition("//")
    if not sep or (head and not head.endswith(":")):
        return _redact_inner(url) if "@" in url or "%4" in url else url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    userinfo, at, host = authority.rpartition("@")
    if at and ":" in userinfo:
        authority = f"{userinfo.split(':', 1)[0]}:{MASK}@{host}"
    if "@" in tail or "%4" in tail:
        tail = _redact_inner(tail)
    return head + sep + authority + tail


def _redact_inner(text: str) -> str:
    return _IN_URL_ENCODED.sub(rf"\1%3A{MASK}%40", _IN_URL.sub(rf"\1:{MASK}@", text))


def redact_text(text: str) -> str:
    """Mask every password inside free text, such as an exception message: URLs with and
    without a scheme, plain or percent-encoded. Run it before cutting a message short."""
    if "@" not in text and "%4" not in text:
        return text
    return _BARE.sub(rf"\1:{MASK}@", _redact_inner(text))


def clip(text: str, limit: int = 200) -> str:
    """The first `limit` characters of already redacted text, and `…` if there was more.

    A cut inside a URL's user info would leave the start of a password with no `@` left to
    find it by: such a tail is masked too.
    """
    if len(text) <= limit:
        return text
    cut = text[:limit]
    m = re.search(r"(?:^|//)[^\s/?#@:]*:([^\s/?#@]*)\Z", cut)
    if m and m.group(1):
        cut = cut[: m.start(1)] + MASK
    return cut + "…"


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace so an error message is always one short line."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
