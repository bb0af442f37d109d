"""Checks beyond the status code: body content, headers, response time, certificate expiry.

A `200` error page or a certificate that expires tomorrow passes a status check; these
catch them. Body checks run in `body.BodyScan`, as the body streams past.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass


class CheckSpecError(ValueError):
    """A check that cannot work (bad regex, bad header spec)."""


@dataclass(frozen=True, slots=True)
class Checks:
    """What a response must satisfy to be ok, besides `--accept`. All off by default."""

    expect_body: tuple[str, ...] = ()
    expect_regex: tuple[str, ...] = ()
    reject_body: tuple[str, ...] = ()
    reject_regex: tuple[str, ...] = ()
    expect_header: tuple[tuple[str, str], ...] = ()
    max_response_ms: float | None = None
    cert_days: int | None = None

    def __post_init__(self) -> None:
        for pattern in (*self.expect_regex, *self.reject_regex, *(v for _, v in self.expect_header)):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise CheckSpecError(f"not a valid regular expression {pattern!r}: {exc}") from None
        for pattern in (*self.expect_regex, *self.reject_regex):
            try:
                re.compile(pattern.encode("utf-8", "surrogateescape"))  # bodies are searched as bytes
            except (UnicodeEncodeError, re.error) as exc:
                raise CheckSpecError(f"not a valid regular expression {pattern!r} for a body: {exc}") from None
        for text in (*self.expect_body, *self.reject_body):
            if not text:
                raise CheckSpecError("--expect-body and --reject-body need some text")
            try:
                text.encode("utf-8", "surrogateescape")  # what the body is searched for
            except UnicodeEncodeError:  # a lone surrogate from a JSON line's escape
                raise CheckSpecError(f"--expect-body and --reject-body need text, not {text!r}") from None
        if self.max_response_ms is not None and not self.max_response_ms > 0:
            raise CheckSpecError("--max-response-time must be a positive number of milliseconds")
        if self.cert_days is not None and self.cert_days < 0:
            raise CheckSpecError("--cert-days cannot be negative")

    @property
    def body(self) -> bool:
        """Whether the body must be scanned at all."""
        return bool(self.expect_body or self.expect_regex or self.reject_body or self.reject_regex)

    @property
    def active(self) -> bool:
        return self.body or bool(self.expect_header) or self.max_response_ms is not None or self.cert_days is not None


def parse_expect_header(text: str) -> tuple[str, str]:
    """`'Content-Type: ^text/html'` -> `('Content-Type', '^text/html')`."""
    name, sep, pattern = text.partition(":")
    if not sep or not name.strip() or any(c in name.strip() for c in " \t"):
        raise CheckSpecError(f"--expect-header takes 'Name: REGEX', got {text!r}")
    return name.strip(), pattern.strip()


def header_failure(checks: Checks, headers: Mapping[str, str]) -> str | None:
    """The first `--expect-header` that failed; a missing header fails."""
    for name, pattern in checks.expect_header:
        value = headers.get(name)
        if value is None:
            return f"header {name} is missing"
        if not re.search(pattern, value):
            return f"header {name}: {value[:80]!r} does not match {pattern!r}"
    return None


def cert_expiry(sock: object) -> dt.datetime | None:
    """When the certificate the server presented on this connection expires (UTC).

    `getpeercert()` only decodes a verified certificate; with `-k` the DER is parsed
    here instead, reading just far enough to find the validity's notAfter.
    """
    import ssl  # here, not at the top: `--version` and `--help` never need it

    if not isinstance(sock, ssl.SSLSocket):
        return None
    try:
        decoded = sock.getpeercert()
        if decoded and "notAfter" in decoded:
            stamp = ssl.cert_time_to_seconds(str(decoded["notAfter"]))
            return dt.datetime.fromtimestamp(stamp, dt.timezone.utc)
        der = sock.getpeercert(binary_form=True)
    except (ValueError, OSError):
        return None
    return _der_not_after(der) if der else None


def _der_item(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER item at `at`."""
    tag, length = data[at], data[at + 1]
    at += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[at : at + count], "big")
        at += count
    return tag, at, at + length


def _der_not_after(der: bytes) -> dt.datetime | None:
    try:
        _, cert, _ = _der_item(der, 0)  # Certificate
        _, tbs, _ = _der_item(der, cert)  # TBSCertificate
        at = tbs
        tag, _, end = _der_item(der, at)
        if tag == 0xA0:  # [0] explicit version
            at = end
        for _ in range(3):  # serialNumber, signature, issuer
            at = _der_item(der, at)[2]
        _, validity, _ = _der_item(der, at)
        _, _, end = _der_item(der, validity)  # notBefore
        tag, start, stop = _der_item(der, end)  # notAfter
        text = der[start:stop].decode("ascii")
        fmt = "%y%m%d%H%M%SZ" if tag == 0x17 else "%Y%m%d%H%M%SZ"
        return dt.datetime.strptime(text, fmt).replace(tzinfo=dt.timezone.utc)
    except (IndexError, ValueError, UnicodeDecodeError):
        return None
