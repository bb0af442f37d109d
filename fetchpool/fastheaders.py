"""A quicker `http.client.parse_headers` for the command line's hot path.

The standard one hands every response's header block to the `email` package's feed
parser: about 20 µs a response, a twentieth of what a whole fetch costs here. Plain
`Name: value` lines, which is what servers send, are split directly into the same
`HTTPMessage`, with the same values (`compat32`: leading blanks stripped, line end
removed). Anything else — folded lines, a line without a colon — goes to the standard
parser, so its quirks and defects are kept exactly.

It replaces a module attribute of http.client, so only the CLI installs it, for its own
process; the library leaves the interpreter as it found it.
"""

from __future__ import annotations

import http.client
from typing import Any

_standard = http.client.parse_headers


def parse_headers(fp: Any, _class: type[http.client.HTTPMessage] = http.client.HTTPMessage) -> http.client.HTTPMessage:
    lines = http.client._read_headers(fp)  # type: ignore[attr-defined]  # keeps the line and count limits
    fields = []
    for raw in lines:
        if raw in (b"\r\n", b"\n", b""):
            break
        line = raw.decode("iso-8859-1")
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or line[0] in " \t":
            return _standard_from(lines, _class)
        fields.append((name, value.lstrip(" \t").rstrip("\r\n")))
    message = _class()
    message._headers = fields  # type: ignore[attr-defined]  # what the email parser fills, one per line
    return message


def _standard_from(lines: list[bytes], _class: type[http.client.HTTPMessage]) -> http.client.HTTPMessage:
    import email.parser

    return email.parser.Parser(_class=_class).parsestr(b"".join(lines).decode("iso-8859-1"))


def install() -> bool:
    """Use the quick parser in this process (when this Python has the hook it needs)."""
    if not hasattr(http.client, "_read_headers"):
        return False
    http.client.parse_headers = parse_headers  # type: ignore[assignment]
    return True
