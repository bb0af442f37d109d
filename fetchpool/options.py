"""Every fetch setting in one frozen, validated value.

The CLI turns flags into one `Options` at its boundary; the core never sees Click.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from . import __version__
from .checks import Checks

DEFAULT_USER_AGENT = f"fetchpool/{__version__}"
MAX_CONCURRENCY = 1024
LIMITED_WINDOW = 2048
ENGINES = ("threads", "processes", "ray")
DEFAULT_RETRY_ON = frozenset({"429", "502", "503", "504", "connect", "timeout", "read", "protocol"})
RETRYABLE_KINDS = frozenset({"connect", "timeout", "read", "protocol", "dns", "tls"})
# One day: longer than any wait worth asking for, and far inside what sockets, locks and
# time_t accept (a socket timeout of 1e10 s is an OverflowError on Linux).
MAX_SECONDS = 86400.0
MAX_RETRIES = 100  # the backoff doubles per attempt: 2**1024 no longer fits in a float
MAX_BYTES = 2**50  # 1 PiB; still an exact number for any JSON reader
TCHARS = "!#$%&'*+-.^_`|~"
_TOKEN = re.compile(r"[A-Za-z0-9" + re.escape(TCHARS) + r"]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # HTAB is the one control a field value may hold


class OptionsError(ValueError):
    """A setting that cannot work; the CLI reports it as a usage error naming the flag.

    `field` is the `Options` field at fault (None when no one field is), `reason` the
    message without it.
    """

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.reason, self.field = reason, field


def parse_retry_on(text: str) -> frozenset[str]:
    """`'429,5xx,timeout'` -> the set `--retry-on` matches against (status codes, error kinds)."""
    items: set[str] = set()
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        if len(part) == 3 and part[0] in "12345" and part[1:] == "xx":  # a class: 5xx
            items.update(str(code) for code in range(int(part[0]) * 100, int(part[0]) * 100 + 100))
        elif _retry_item(part):
            items.add(part)
        else:
            kinds = ", ".join(sorted(RETRYABLE_KINDS))
            raise OptionsError(f"takes status codes, classes (5xx) and {kinds}; got {part!r}", "retry_on")
    return frozenset(items)


def _retry_item(item: object) -> bool:
    if not isinstance(item, str):
        return False
    return (item.isascii() and item.isdigit() and 100 <= int(item) <= 599) or item in RETRYABLE_KINDS


def parse_header(text: str) -> tuple[str, str | None]:
    """One `-H` as curl reads it -> `(name, value)`; the value None removes the header.

    `Name: value` sends it; `Name:` (nothing after the colon) removes a header fetchpool
    would send by itself (User-Agent, Accept, ...); `Name;` sends it with an empty value.
    Whether the name and value can be sent is checked by `Options`.
    """
    name, sep, value = text.partition(":")
    if not sep:
        name, semi, rest = text.partition(";")
        if not semi or rest.strip(" \t"):
            raise OptionsError("must look like 'Name: value', 'Name:' or 'Name;'", "headers")  # may hold a secret
        return name.strip(" \t"), ""
    return name.strip(" \t"), value.strip(" \t") or None


def parse_resolve(text: str) -> tuple[str, int, str]:
    """`HOST:PORT:ADDR` (curl's --resolve) -> `(host, port, address)`; `[::1]` for IPv6."""
    host, sep, rest = text.partition(":")
    port, sep2, address = rest.partition(":")
    if not (sep and sep2) or not port.isdigit():
        raise OptionsError(f"must look like HOST:PORT:ADDRESS, got {text!r}", "resolve")
    return check_resolve((host, int(port), address))


def check_resolve(entry: object) -> tuple[str, int, str]:
    """One --resolve entry: a host name, a port, and an IP address (never a name to look up)."""
    if not (isinstance(entry, tuple) and len(entry) == 3):
        raise OptionsError("must be (host, port, address) triples", "resolve")
    host, port, address = entry
    if not isinstance(host, str) or not host or any(c in host for c in ":/@[] "):
        raise OptionsError(f"not a host name: {host!r}", "resolve")
    try:
        host = host.encode("idna").decode("ascii")  # as the URL's host is sent: `bücher.test` -> `xn--...`
    except UnicodeError:
        raise OptionsError(f"not a host name: {host!r}", "resolve") from None
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise OptionsError(f"the port must be 1 to 65535, got {port!r}", "resolve")
    try:
        ip = ipaddress.ip_address(address.strip("[]") if isinstance(address, str) else "")
    except ValueError:
        raise OptionsError(f"the address must be an IP address, got {address!r}", "resolve") from None
    return host.rstrip(".").lower(), port, str(ip)


def check_header(name: object, value: object, field: str = "headers") -> None:
    """Refuse a header HTTP cannot carry: a name that is not a token, a control character.

    Values are sent as UTF-8 bytes, as curl sends what was typed; a text argument that
    was not UTF-8 (surrogate escapes) goes out as the bytes it came from. Messages name
    the character at fault, never the text: a mistyped header may hold a token.
    """
    if not isinstance(name, str) or not name:
        raise OptionsError("a header needs a name before its colon", field)
    if not _TOKEN.fullmatch(name):
        bad = next(c for c in name if not _TOKEN.fullmatch(c))
        raise OptionsError(f"a header name cannot hold {bad!r} (only letters, digits and {TCHARS})", field)
    if value is None:
        return
    if not isinstance(value, str):
        raise OptionsError(f"the value of {name} must be text", field)
    check_text(value, field, f"the value of {name}")


def check_text(value: str, field: str, what: str) -> None:
    """A header value must be text without control characters that UTF-8 can carry."""
    bad = _CONTROL.search(value)
    if bad:
        raise OptionsError(
            f"{what} holds a control character (U+{ord(bad.group()):04X}), which HTTP cannot send", field
        )
    try:
        value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise OptionsError(f"{what} is not valid Unicode text (a lone surrogate)", field) from None


def _number(
    field: str, value: object, low: float, high: float, integer: bool = False, unit: str = "", above: bool = False
) -> None:
    """One numeric setting: the right type, finite, within `low..high` (`low` itself excluded if `above`)."""
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise OptionsError(f"must be {'a whole number' if integer else 'a number'}, got {value!r}", field)
    if isinstance(value, float) and not math.isfinite(value):  # math.isfinite(10**400) would overflow
        raise OptionsError(f"must be a finite number, got {value!r}", field)
    if value < low or (above and value == low) or value > high:
        bounds = f"{'above' if above else 'at least'} {low:g} and at most {high:g}{' ' + unit if unit else ''}"
        raise OptionsError(f"must be {bounds}, got {value!r}", field)


def _pairs(headers: object) -> tuple[tuple[str, str | None], ...]:
    """`Options.headers` as a tuple of pairs; a mapping is taken as its items."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise OptionsError("must be (name, value) pairs", "headers")
    pairs = tuple(items)
    if not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in pairs):
        raise OptionsError("must be (name, value) pairs", "headers")
    return tuple((name, value) for name, value in pairs)


def _check_folder(folder: object) -> None:
    """`--save-dir` must name a folder that exists and can be written: a typo fails now, once,
    not as a failed save per URL. It is not created (a misspelt name would be)."""
    if not isinstance(folder, str) or not folder:
        raise OptionsError("must be the path of a folder", "save_dir")
    if not os.path.isdir(folder):
        raise OptionsError(f"{folder!r} is not an existing folder", "save_dir")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OptionsError(f"{folder!r} is not writable", "save_dir")


@dataclass(frozen=True, slots=True)
class Options:
    """How to fetch. Defaults are the CLI's defaults."""

    concurrency: int = 16
    method: str = "GET"
    headers: tuple[tuple[str, str | None], ...] = ()  # in order; a None value removes that header
    user_agent: str = DEFAULT_USER_AGENT
    timeout: float = 10.0
    connect_timeout: float = 5.0
    follow_redirects: bool = True
    max_redirects: int = 10
    verify: bool = True
    max_bytes: int = 10 * 1024 * 1024
    default_scheme: str = "https"
    ordered: bool = False
    retries: int = 2
    backoff: float = 0.5
    retry_on: frozenset[str] = DEFAULT_RETRY_ON
    max_retry_wait: float = 30.0
    per_host: int | None = None
    rate: float | None = None
    rate_per_host: bool = False
    read_ahead: int = field(default=0)
    # Requests and pipelines. Each is off by default: the default record and path stay as they are.
    input_format: str = "auto"  # auto | lines | jsonl (auto: a line starting with `{` is JSON)
    data: bytes | None = None  # -d: a body for every request that has none of its own (method as given)
    user: str | None = None  # -u USER:PASS: Basic auth for every request, masked everywhere
    retry_all_methods: bool = False  # retry POST and other non-idempotent methods too
    compressed: bool = False  # ask for gzip/deflate (br if available); the cap applies decoded
    resolve: tuple[tuple[str, int, str], ...] = ()  # --resolve HOST:PORT:ADDR, as curl's
    include_headers: tuple[str, ...] = ()  # response headers copied into the record's `headers`
    title: bool = False  # the record's `title`: the HTML <title>, within max_bytes
    hash_body: bool = False  # the record's `sha256` of the body as read
    save_dir: str | None = None  # each ok body saved under this folder; the record's `saved_to`
    checks: Checks = field(default_factory=Checks)  # body, header, time and certificate checks
    engine: str = "threads"
    processes: int = 0  # worker processes for the processes and ray engines; 0: one per (free, when joined) CPU
    ray_address: str | None = None  # None: a local Ray started for the run; "auto" or HOST:PORT: join it

    def __post_init__(self) -> None:
        """Check every setting once, so nothing a user typed can fail later, URL by URL."""
        self._check_numbers()
        self._check_request()
        self._check_request_extras()
        if self.input_format not in ("auto", "lines", "jsonl"):
            raise OptionsError("must be auto, lines or jsonl", "input_format")
        if self.rate_per_host and self.rate is None:
            raise OptionsError("needs a rate", "rate_per_host")
        if self.default_scheme not in ("http", "https"):
            raise OptionsError("must be http or https", "default_scheme")
        if not isinstance(self.retry_on, (set, frozenset)) or not all(_retry_item(i) for i in self.retry_on):
            raise OptionsError("must be a set of status codes and error kinds (see parse_retry_on)", "retry_on")
        object.__setattr__(self, "retry_on", frozenset(self.retry_on))
        self._check_response()
        _number("read_ahead", self.read_ahead, -math.inf, math.inf, integer=True)
        if self.read_ahead <= 0:
            object.__setattr__(self, "read_ahead", 2 * self.concurrency)
        if self.engine not in ENGINES:
            raise OptionsError(f"must be one of {', '.join(ENGINES)}; got {self.engine!r}", "engine")
        _number("processes", self.processes, 0, MAX_CONCURRENCY, integer=True)
        if self.processes == 0 and not (self.engine == "ray" and self.ray_address):
            object.__setattr__(self, "processes", _cpu_count())  # a joined cluster's free CPUs: known once joined

    def _check_numbers(self) -> None:
        _number("concurrency", self.concurrency, 1, MAX_CONCURRENCY, integer=True)
        for name in ("timeout", "connect_timeout", "backoff", "max_retry_wait"):
            _number(name, getattr(self, name), 0, MAX_SECONDS, unit="seconds", above=name.endswith("timeout"))
        _number("max_redirects", self.max_redirects, 0, math.inf, integer=True)
        _number("max_bytes", self.max_bytes, 0, MAX_BYTES, integer=True, unit="bytes")
        _number("retries", self.retries, 0, MAX_RETRIES, integer=True)
        if self.per_host is not None:
            _number("per_host", self.per_host, 1, math.inf, integer=True)
        if self.rate is not None:
            _number("rate", self.rate, 0, math.inf)
            if self.rate < 1 / MAX_SECONDS:  # the wait between two requests must fit MAX_SECONDS
                raise OptionsError(f"must be at least one request a day, got {self.rate!r} per second", "rate")

    def _check_request(self) -> None:
        """Method, headers and user agent: what the request line and header block carry."""
        if not isinstance(self.method, str) or not _TOKEN.fullmatch(self.method):
            raise OptionsError(f"not an HTTP method (letters, digits and {TCHARS}): {self.method!r}", "method")
        object.__setattr__(self, "method", self.method.upper())
        if not isinstance(self.user_agent, str):
            raise OptionsError("must be text", "user_agent")
        check_text(self.user_agent, "user_agent", "the user agent")
        headers = _pairs(self.headers)
        for name, value in headers:
            check_header(name, value)
        object.__setattr__(self, "headers", headers)

    def _check_response(self) -> None:
        """What is taken from each response: header names, flags, the save folder, the checks."""
        names = self.include_headers
        if isinstance(names, str) or not all(isinstance(n, str) and _TOKEN.fullmatch(n) for n in names):
            raise OptionsError(f"must be header names (letters, digits and {TCHARS})", "include_headers")
        first: dict[str, str] = {}
        for name in names:  # names are case-insensitive: a repeat adds nothing, the first spelling stays
            first.setdefault(name.lower(), name)
        object.__setattr__(self, "include_headers", tuple(first.values()))
        for name in ("title", "hash_body"):
            if not isinstance(getattr(self, name), bool):
                raise OptionsError("must be True or False", name)
        if self.save_dir is not None:
            _check_folder(self.save_dir)
        if not isinstance(self.checks, Checks):
            raise OptionsError("must be a checks.Checks", "checks")

    def _check_request_extras(self) -> None:
        """-d, -u and --resolve: a body as bytes, credentials with a colon, addresses as IPs."""
        if self.data is not None and not isinstance(self.data, bytes):
            raise OptionsError("must be bytes", "data")
        if self.user is not None:
            if not isinstance(self.user, str) or ":" not in self.user:
                raise OptionsError("must look like USER:PASSWORD", "user")  # never echo it: a password
            if _CONTROL.search(self.user) or "\t" in self.user:
                raise OptionsError("cannot hold control characters", "user")
        object.__setattr__(self, "resolve", tuple(check_resolve(entry) for entry in self.resolve))

    @property
    def limited(self) -> bool:
        """Whether per-host or rate limits apply."""
        return self.per_host is not None or self.rate is not None

    @property
    def window(self) -> int:
        """URLs read but not yet written, at most: bounds memory.

        With limits, URLs of a busy host wait while others go ahead, so the window is
        wider (a few hundred KB of parked URLs at most) to let other hosts through.
        """
        base = max(self.read_ahead, self.concurrency)
        return max(base, LIMITED_WINDOW) if self.limited else base


def _cpu_count() -> int:
    """CPUs this process may run on (a container's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
