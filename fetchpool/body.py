"""Read each body once: count it, hash it, match it, find its title, save it.

A body is never held whole. Checks look at it as it streams past: a text needle keeps
only `len(needle) - 1` bytes of overlap between chunks and a regex `REGEX_WINDOW` bytes
(plus up to `REGEX_WINDOW` bytes and one chunk not yet searched), so a match that spans
two chunks is still found; the title keeps at most `TITLE_MAX` bytes; a saved body goes
straight to its file. Memory stays bounded whatever the size.
"""

from __future__ import annotations

import codecs
import hashlib
import html
import re

from .checks import Checks
from .save import BodyFile

REGEX_WINDOW = 64 * 1024  # a regex match longer than this may be missed across chunks
TITLE_MAX = 8 * 1024  # bytes of a <title> kept; a longer one is cut
_TITLE_OPEN = re.compile(rb"<title\b[^>]*>", re.IGNORECASE)
_TITLE_CLOSE = re.compile(rb"</title\s*>", re.IGNORECASE)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)


class _Needle:
    """A fixed byte string looked for across chunk boundaries."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.needle = text.encode("utf-8", "surrogateescape")  # bytes of an argument not in UTF-8 as given
        self.tail = b""
        self.found = False

    def feed(self, chunk: bytes) -> None:
        if self.found:
            return
        window = self.tail + chunk
        if self.needle in window:
            self.found = True
            self.tail = b""
            return
        self.tail = window[-(len(self.needle) - 1) :] if len(self.needle) > 1 else b""


class _Pattern:
    """A regex over a sliding window of the body.

    Chunks are gathered until `REGEX_WINDOW` new bytes are in, then searched together with
    the last `REGEX_WINDOW` bytes before them: small chunks (a dripping server, TLS records)
    cost one search per window, not a 64 KiB copy and search per chunk. `done` searches
    what is left at the end of the body.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.regex = re.compile(text.encode("utf-8", "surrogateescape"))
        self.tail = b""
        self.pending: list[bytes] = []
        self.size = 0
        self.found = False

    def feed(self, chunk: bytes) -> None:
        if self.found:
            return
        self.pending.append(chunk)
        self.size += len(chunk)
        if self.size >= REGEX_WINDOW:
            self.done()

    def done(self) -> None:
        if self.found or not self.pending:
            return
        window = self.tail + b"".join(self.pending)
        self.pending, self.size = [], 0
        if self.regex.search(window):
            self.found, self.tail = True, b""
        else:
            self.tail = window[-REGEX_WINDOW:]


class _Title:
    """The first `<title>` of an HTML body, found across chunk boundaries, bounded."""

    def __init__(self) -> None:
        self.buffer = b""
        self.inside = False
        self.done = False

    def feed(self, chunk: bytes) -> None:
        if self.done:
            return
        self.buffer += chunk
        if not self.inside:
            found = _TITLE_OPEN.search(self.buffer)
            if found is None:
                self.buffer = self.buffer[-256:]  # room for a start tag with attributes
                return
            self.inside, self.buffer = True, self.buffer[found.end() :]
        end = _TITLE_CLOSE.search(self.buffer)
        if end is not None:
            self.buffer, self.done = self.buffer[: end.start()], True
        elif len(self.buffer) > TITLE_MAX:
            self.buffer, self.done = self.buffer[:TITLE_MAX], True

    def text(self, content_type: str | None) -> str | None:
        if not self.inside:
            return None
        charset = _charset(content_type)
        raw = self.buffer.decode(charset, "replace")
        return " ".join(html.unescape(raw).split())


def _charset(content_type: str | None) -> str:
    """The declared charset if Python knows it, else UTF-8."""
    found = _CHARSET.search(content_type or "")
    if found:
        try:
            return codecs.lookup(found.group(1)).name
        except LookupError:
            pass
    return "utf-8"


class BodyScan:
    """Fed every chunk of one body; what it found is read at the end. Holds no body."""

    def __init__(
        self, checks: Checks | None = None, hash_body: bool = False, title: bool = False, save: BodyFile | None = None
    ) -> None:
        self.hasher = hashlib.sha256() if hash_body else None
        checks = checks or Checks()
        self.expect: list[_Needle | _Pattern] = [*map(_Needle, checks.expect_body)]
        self.expect += map(_Pattern, checks.expect_regex)
        self.reject: list[_Needle | _Pattern] = [*map(_Needle, checks.reject_body)]
        self.reject += map(_Pattern, checks.reject_regex)
        self.title = _Title() if title else None
        self.save = save

    def feed(self, chunk: bytes) -> None:
        if self.hasher is not None:
            self.hasher.update(chunk)
        for matcher in self.expect:
            matcher.feed(chunk)
        for matcher in self.reject:
            matcher.feed(chunk)
        if self.title is not None:
            self.title.feed(chunk)
        if self.save is not None:
            self.save.write(chunk)

    def sha256(self) -> str | None:
        return self.hasher.hexdigest() if self.hasher is not None else None

    def failure(self, truncated: bool, named: bool = False) -> str | None:
        """The first body check that failed, in words; None when all passed (the body has ended).

        `named` puts the flag of the check first (`--expect-body: ...`), as records say it.
        """
        for matcher in (*self.expect, *self.reject):
            if isinstance(matcher, _Pattern):
                matcher.done()
        for matcher in self.reject:
            if matcher.found:
                pattern = isinstance(matcher, _Pattern)
                what = "matches" if pattern else "contains"
                flag = "--reject-regex: " if pattern else "--reject-body: "
                return f"{flag if named else ''}body {what} {matcher.text!r} (rejected)"
        for matcher in self.expect:
            if not matcher.found:
                pattern = isinstance(matcher, _Pattern)
                what = "does not match" if pattern else "does not contain"
                flag = "--expect-regex: " if pattern else "--expect-body: "
                within = " within --max-bytes" if truncated else ""
                return f"{flag if named else ''}body {what} {matcher.text!r}{within}"
        return None
