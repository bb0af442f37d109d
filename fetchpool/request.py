"""What a request carries beyond the run's header block: -u, -d, --compressed, and a target's own.

The run's request (method, headers, body) is built once per worker; a bare URL line uses
it as is, so the default path costs three attribute checks. A target from a JSON line
that sets its method, headers or body gets its own, merged over the run's the way `-H`
works: a name it gives replaces the run's values, a None value removes the header.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from urllib3 import HTTPHeaderDict
from urllib3.util import SKIP_HEADER, SKIPPABLE_HEADERS
from urllib3.util.request import ACCEPT_ENCODING

from .inputs import Target
from .options import Options

FORM = "application/x-www-form-urlencoded"  # what curl -d sends unless told otherwise
# What --compressed asks for: what curl asks for, as far as urllib3 here can decode it.
COMPRESSED = ", ".join(e for e in ("gzip", "deflate", "br") if e in ACCEPT_ENCODING.split(","))


@dataclass(frozen=True, slots=True)
class Request:
    """Method, header block and body of a request, before its URL is known."""

    method: str
    headers: HTTPHeaderDict
    body: bytes | None


def run_request(options: Options, headers: HTTPHeaderDict) -> Request:
    """The request every bare URL line makes: `headers` (from `-H`) plus -u, -d, --compressed.

    A header given with `-H` wins over the one a flag implies, as in curl.
    """
    given = {name.lower() for name, _ in options.headers}
    extra = HTTPHeaderDict()
    if options.user is not None and "authorization" not in given:
        extra.add("Authorization", basic_auth(options.user))
    if options.compressed and "accept-encoding" not in given:
        extra.add("Accept-Encoding", COMPRESSED)
    if options.data is not None and "content-type" not in given:
        extra.add("Content-Type", FORM)
    if extra:
        headers = headers.copy()
        headers.extend(extra)
    return Request(options.method, headers, options.data)


def basic_auth(user: str) -> str:
    """`USER:PASS` -> the Basic credentials, UTF-8 as RFC 7617 allows and curl sends."""
    return "Basic " + base64.b64encode(user.encode("utf-8")).decode("ascii")


def target_request(target: Target, run: Request) -> Request:
    """The request of a target that sets something of its own, over the run's.

    A body of its own and no method of its own is POSTed, as curl's -d does, unless the
    run's method is not GET (`-X PUT`).
    """
    body = run.body if target.body is None else target.body
    implied = "POST" if target.body is not None and run.method == "GET" else run.method
    method = target.method or implied
    if not target.headers and target.body is None:
        return Request(method, run.headers, body)
    headers = merge(run.headers, target.headers)
    if body is not None and "Content-Type" not in headers:
        headers.add("Content-Type", FORM)
    return Request(method, headers, body)


def merge(base: HTTPHeaderDict, over: tuple[tuple[str, str | None], ...]) -> HTTPHeaderDict:
    """`over` applied on `base`: each name it gives replaces all of base's values of that name."""
    merged = base.copy()
    for name in {name.lower() for name, _ in over}:
        merged.discard(name)
    for name, value in over:
        if value is not None:
            merged.add(name, _wire(value))
        elif name.lower() in SKIPPABLE_HEADERS:
            merged.add(name.title(), SKIP_HEADER)  # urllib3 would add its own otherwise
    return merged


def secret_values(headers: tuple[tuple[str, str | None], ...], names: tuple[str, ...]) -> list[str]:
    """Values worth masking in messages: those of secret headers, and their credentials alone."""
    found: list[str] = []
    for name, value in headers:
        if name.lower() in names and value and len(value) >= 4:
            found.append(value)
            scheme, _, credentials = value.partition(" ")
            if credentials and len(credentials) >= 4:
                found.append(credentials)
    return found


def _wire(value: str) -> str:
    """A value whose Latin-1 encoding, what http.client sends, is the UTF-8 of `value`."""
    return value if value.isascii() else value.encode("utf-8", "surrogateescape").decode("latin-1")
