"""The one record every input line becomes, and the closed vocabulary of error kinds.

A fetch never raises to its caller: whatever happens to a URL is a value here, so the
engine can promise exactly one record per input line.
"""

from __future__ import annotations

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

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict; the error kind becomes its string."""
        d = {name: getattr(self, name) for name in FIELDS}  # asdict() deep-copies: 5x slower
        if self.error is not None:
            d["error"] = self.error.value
        return d

    @classmethod
    def failed(cls, url: str, line: int, kind: ErrorKind, message: str, source: str = "-") -> Result:
        """A record for a line that was never fetched (or failed before any reply)."""
        return cls(url=url, line=line, input=source, error=kind, error_message=message)


FIELDS: tuple[str, ...] = tuple(Result.__dataclass_fields__)


def redact_url(url: str) -> str:
    """Mask the password of `scheme://user:pass@host` so it never reaches output."""
    head, sep, rest = url.partition("://")
    if not sep:
        return url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    userinfo, at, _host = rest[:end].rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{head}://{user}:***@{rest[len(userinfo) + 1 :]}"


_URL_USERINFO = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^/?#\s:@]*):[^/?#\s]*@")


def redact_text(text: str) -> str:
    """Mask every URL password inside free text, such as an exception message."""
    return _URL_USERINFO.sub(r"\1:***@", text)


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace so an error message is always one short line."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
