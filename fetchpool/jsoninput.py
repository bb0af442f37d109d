"""One JSON object per input line: a request of its own, with the caller's id and meta.

`{"url": ..., "method": "POST", "headers": {...}, "json": {...}, "id": 7, "meta": {...}}`.
A line that is not such an object gives an error message (the caller turns it into an
`invalid_url` record with its line number), never an exception: a pipeline feeding
fetchpool may produce junk, and one bad object must not cost the rest of the run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .checks import Checks, CheckSpecError
from .options import TCHARS, OptionsError, check_header

_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" + TCHARS)

KNOWN = frozenset({"url", "method", "headers", "data", "json", "id", "meta", "checks"})
# The keys of a line's "checks" object: the run's check flags, without their dashes.
CHECK_KEYS = {
    "expect_body": "expect_body",
    "expect_regex": "expect_regex",
    "reject_body": "reject_body",
    "reject_regex": "reject_regex",
    "expect_header": "expect_header",
    "max_response_time": "max_response_ms",
    "cert_days": "cert_days",
}


@dataclass(frozen=True, slots=True)
class LineRequest:
    """What one JSON line asks for; None fields fall back to the run's options."""

    url: str
    method: str | None = None
    headers: tuple[tuple[str, str | None], ...] = ()  # a None value removes that header
    body: bytes | None = None
    json_body: bool = False
    id: Any = None
    meta: Any = None
    checks: Checks | None = None  # None: the run's checks


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON: echoed in `id` or `meta`, they would break every reader."""
    raise ValueError(f"{name} is not a JSON value")


def looks_like_json(text: str) -> bool:
    """`--input-format auto`: a line starting with `{` is a JSON object."""
    return text.startswith("{")


def parse_object(text: str) -> LineRequest | str:
    """A JSON line -> the request, or a message saying what is wrong with it."""
    try:
        obj = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        return f"not a JSON object: {exc}"
    if not isinstance(obj, dict):
        return f"not a JSON object: a JSON {type(obj).__name__}"
    unknown = sorted(set(obj) - KNOWN)
    if unknown:
        return f"unknown key {unknown[0]!r} (known: {', '.join(sorted(KNOWN))})"
    url = obj.get("url")
    if not isinstance(url, str) or not url.strip():
        return "missing 'url' (a non-empty string)"
    method = obj.get("method")
    if method is not None and (not isinstance(method, str) or not method or not set(method) <= _TOKEN_CHARS):
        return f"'method' must be an HTTP method (letters, digits and {TCHARS})"
    headers = obj.get("headers", {})
    if not isinstance(headers, dict) or not all(v is None or isinstance(v, str) for v in headers.values()):
        return "'headers' must be an object of strings (null removes a header)"
    for name, value in headers.items():
        try:
            check_header(name, value)
        except OptionsError as exc:
            return f"'headers': {exc.reason}"
    if "data" in obj and "json" in obj:
        return "give 'data' or 'json', not both"
    body, is_json = None, False
    if "data" in obj:
        if not isinstance(obj["data"], str):
            return "'data' must be a string (use 'json' for structured bodies)"
        body = obj["data"].encode("utf-8")
    elif "json" in obj:
        body, is_json = json.dumps(obj["json"], separators=(",", ":")).encode("utf-8"), True
    checks = _checks(obj["checks"]) if "checks" in obj else None
    if isinstance(checks, str):
        return checks
    method = method.upper() if method is not None else None
    return LineRequest(
        url.strip(), method, tuple(headers.items()), body, is_json, obj.get("id"), obj.get("meta"), checks
    )


def _checks(spec: Any) -> Checks | str:
    """A line's own checks (they replace the run's for that line), or what is wrong with them.

    `{"expect_body": "Welcome", "expect_header": {"Content-Type": "^text/html"},
    "max_response_time": 300, "cert_days": 14}`; text checks take a string or a list.
    """
    if not isinstance(spec, dict):
        return "'checks' must be an object"
    unknown = sorted(set(spec) - set(CHECK_KEYS))
    if unknown:
        return f"unknown check {unknown[0]!r} (known: {', '.join(CHECK_KEYS)})"
    fields: dict[str, Any] = {}
    for key in ("expect_body", "expect_regex", "reject_body", "reject_regex"):
        value = spec.get(key, [])
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"check {key!r} must be a string or a list of strings"
        fields[key] = tuple(value)
    headers = spec.get("expect_header", {})
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        return "check 'expect_header' must be an object of header names to regular expressions"
    fields["expect_header"] = tuple(headers.items())
    for key, kind in (("max_response_time", (int, float)), ("cert_days", int)):
        value = spec.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
            return f"check {key!r} must be a number"
        fields[CHECK_KEYS[key]] = value
    try:
        return Checks(**fields)
    except CheckSpecError as exc:
        return f"checks: {exc}"
