"""fetch_one(url) -> Result: one URL, its redirects and its body, under one total deadline.

This is the one place where requests/urllib3 exceptions become error kinds. Requests are
sent through a per-thread `adapter.Adapter` rather than `Session.request`: environment
settings (proxies, CA bundle) are resolved once per host instead of once per request,
redirects are followed here so every hop's scheme is checked (no `file:` ever) and a
redirect's body is never read whole, and no cookie jar carries state between URLs.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.models import PreparedRequest, Response
from requests.structures import CaseInsensitiveDict
from requests.utils import get_environ_proxies
from urllib3 import HTTPHeaderDict
from urllib3.util import SKIP_HEADER, SKIPPABLE_HEADERS

from .adapter import POOL_CACHE, Adapter, origin
from .checks import Checks
from .connection import stale
from .deadline import WATCHDOG, Guard
from .errors import FetchError, classify
from .inputs import FETCHABLE, Target, usable_host
from .options import Options
from .request import Request, run_request, secret_values, target_request
from .response import Reader, Reading
from .result import ErrorKind, Result, one_line, redact_text, redact_url
from .retry import IDEMPOTENT, retry_delay

CHUNK = 64 * 1024
REDIRECT_DRAIN = 64 * 1024
REDIRECT_CODES = frozenset((301, 302, 303, 307, 308))
PROXY_CACHE = 4096
SECRET_HEADERS = ("authorization", "cookie", "proxy-authorization")
BODYLESS = frozenset(("GET", "HEAD", "OPTIONS", "TRACE"))  # no Content-Length: 0 for these


def request_headers(options: Options) -> HTTPHeaderDict:
    """The header block every request starts from, with `-H` read as curl reads it.

    Repeated names are all sent, one line each (urllib3 puts each value of an
    `HTTPHeaderDict` separately). A name given with no value removes what would be sent
    without it: fetchpool's User-Agent and Accept, or urllib3's own (User-Agent, Host,
    Accept-Encoding: urllib3 adds those unless told to skip them). `-A ''` sends no
    User-Agent, as in curl. Values go out as UTF-8, as curl sends what was typed.
    """
    given = {name.lower() for name, value in options.headers if value is not None}
    removed = {name.lower() for name, value in options.headers if value is None} - given
    headers = HTTPHeaderDict()
    for default, text in (("User-Agent", options.user_agent), ("Accept", "*/*")):
        if default.lower() not in given | removed and text:
            headers.add(default, _wire(text))
    if not options.user_agent and "user-agent" not in given:
        removed.add("user-agent")
    for skipped in sorted(removed & SKIPPABLE_HEADERS):
        headers.add(skipped.title(), SKIP_HEADER)
    for name, value in options.headers:
        if value is not None:
            headers.add(name, _wire(value))
    return headers


def _wire(value: str) -> str:
    """A value whose Latin-1 encoding, what http.client sends, is the UTF-8 of `value`."""
    return value if value.isascii() else value.encode("utf-8", "surrogateescape").decode("latin-1")


class Client:
    """What one worker thread keeps between URLs: its connections and resolved settings.

    Each worker owns one, so nothing here is shared between threads; one connection per
    host per worker is all a worker can use at a time, so the pool keeps two.
    """

    def __init__(self, options: Options) -> None:
        self.options = options
        self.adapter = Adapter(options.resolve, pool_connections=64, pool_maxsize=2, max_retries=0)
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        self.verify: bool | str = (ca_bundle or True) if options.verify else False
        self.headers = request_headers(options)
        self.reader = Reader(options)  # headers, title, hash, save, checks: all off by default
        self._line_readers: dict[Checks, Reader] = {}  # for JSON lines that bring their own checks
        self.request = run_request(options, self.headers)
        self._proxies: dict[str, dict[str, str]] = {}
        self._secrets = secret_values(tuple(self.request.headers.items()), SECRET_HEADERS)
        if options.user is not None:
            self._secrets += [s for s in (options.user, options.user.partition(":")[2]) if len(s) >= 4]

    def reader_for(self, target: Target) -> Reader:
        """The run's response reader, or one for a JSON line's own checks (kept for the next)."""
        if target.checks is None:
            return self.reader
        reader = self._line_readers.get(target.checks)
        if reader is None:
            if len(self._line_readers) >= POOL_CACHE:  # a few distinct check sets, not one per line
                self._line_readers.clear()
            options = dataclasses.replace(self.options, checks=target.checks)
            reader = self._line_readers[target.checks] = Reader(options)
        return reader

    def request_for(self, target: Target) -> Request:
        """The run's request for a bare URL line; a JSON line's own, merged over it."""
        if target.method is None and target.body is None and not target.headers:
            return self.request
        return target_request(target, self.request)

    def method_of(self, target: Target) -> str:
        """The method a target is fetched with (what retries depend on)."""
        if target.method is None and target.body is None:
            return self.request.method
        return target_request(target, self.request).method

    def redact(self, text: str, target: Target | None = None) -> str:
        """Take credentials out of a message: URL passwords, -u and secret header values."""
        text = redact_text(text)
        secrets = self._secrets
        if target is not None and target.headers:
            secrets = secrets + secret_values(target.headers, SECRET_HEADERS)
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    def proxies_for(self, url: str) -> dict[str, str]:
        """Proxies from the environment (and NO_PROXY), looked up once per origin."""
        key = origin(url)
        found = self._proxies.get(key)
        if found is None:
            if len(self._proxies) >= PROXY_CACHE:  # ten million distinct hosts must not grow memory
                self._proxies.clear()
            found = self._proxies[key] = get_environ_proxies(url)
        return found

    def close(self) -> None:
        self.adapter.close()


class _Attempt:
    """Mutable state of one attempt while it runs; becomes the Result at the end."""

    def __init__(self, result: Result, start: float, id: Any = None) -> None:
        self.result = result
        self.start = start
        self.retry_after: str | None = None
        self.id = id  # the input's id: part of a saved body's file name
        self.reading: Reading | None = None  # set for the final response when a feature reads it
        self.reader: Reader | None = None  # the run's, or a JSON line's own checks

    def ms(self) -> float:
        return round((time.monotonic() - self.start) * 1000, 3)


def fetch_one(target: Target | str, client: Client, line: int = 0, source: str = "-") -> Result:
    """Fetch a Target (or a URL already normalised), retrying as the options say; never raises.

    Waits between attempts in this thread: the simple path for library callers. The
    pool instead uses `fetch_attempt` and schedules retries without holding a worker.
    """
    if isinstance(target, str):
        target = Target(target, line, source)
    started, attempt = time.monotonic(), 1
    while True:
        result, retry_after = fetch_attempt(target, client, attempt, started)
        delay = retry_delay(result, retry_after, client.options, started, client.method_of(target))
        if delay is None:
            return result
        time.sleep(delay)
        attempt += 1


def fetch_attempt(
    target: Target, client: Client, attempt: int = 1, started: float | None = None
) -> tuple[Result, str | None]:
    """One attempt under the URL's deadline -> its record and any `Retry-After` header.

    The deadline is `started` (the first attempt's start) plus `-t`, so it bounds every
    attempt and every wait between them; `elapsed_ms` counts from `started` too. A record
    is ok only when its whole response was read before the deadline, and passed its checks.
    """
    options, url = client.options, target.url
    result = Result(url=redact_url(url), line=target.line, input=target.input, attempts=attempt)
    if target.method is not None or target.id is not None or target.meta is not None:
        result.extra = echoed(target)
    state = _Attempt(result, time.monotonic(), target.id)
    started = state.start if started is None else started
    deadline = started + options.timeout
    if attempt > 1 and state.start >= deadline:  # a retry started late (every worker was busy)
        return _too_late(result, options.timeout, state.start - started), None
    reader = state.reader = client.reader_for(target)
    if reader.active:
        reader.begin(result)
    with WATCHDOG.watch(deadline) as guard:
        try:
            _follow(target, client, state, guard)
            end = time.monotonic()
            if guard.expired or end >= deadline:  # the last read ended as the deadline passed
                raise FetchError(ErrorKind.TIMEOUT, "total deadline reached")
        except Exception as exc:  # every failure is a record, by design
            end = time.monotonic()
            kind, message = classify(exc, guard.expired or end >= deadline, options.timeout)
            result.error, result.error_message = kind, one_line(client.redact(message, target))
    result.elapsed_ms = round((end - started) * 1000, 3)
    result.ok = result.error is None and result.status is not None and 200 <= result.status < 400
    if state.reading is not None:
        try:
            state.reading.finish(result)
        except BaseException:  # a bug: the worker makes it an `internal` record; no stray file either
            state.reading.abandon()
            raise
    return result, state.retry_after


def echoed(target: Target) -> dict[str, Any]:
    """The record keys a JSON line asked for: its own method, and its id and meta unchanged."""
    extra: dict[str, Any] = {}
    if target.method is not None:
        extra["method"] = target.method
    if target.id is not None:
        extra["id"] = target.id
    if target.meta is not None:
        extra["meta"] = target.meta
    return extra


def _too_late(result: Result, timeout: float, elapsed: float) -> Result:
    """The record of a retry whose start came after the deadline: no request, no attempt."""
    result.attempts -= 1
    result.error = ErrorKind.TIMEOUT
    result.error_message = f"the {timeout:g} s deadline (-t) passed before retry {result.attempts} could start"
    result.elapsed_ms = round(elapsed * 1000, 3)
    return result


def _follow(target: Target, client: Client, state: _Attempt, guard: Guard) -> None:
    """Send, follow redirects while allowed, then count the final body."""
    options, result, url = client.options, state.result, target.url
    request = client.request_for(target)
    method, headers, body = request.method, request.headers, request.body
    asked, first_method = url, method
    result.final_url = redact_url(url)
    while True:
        response = _send(method, url, headers, body, client, guard, normalised=result.redirects == 0)
        if guard.passed():  # headers cut short by the deadline's shutdown are no answer
            response.close()
            guard.check()
        result.ttfb_ms = state.ms()
        result.status = response.status_code
        result.content_type = response.headers.get("Content-Type")
        state.retry_after = response.headers.get("Retry-After")
        location = response.headers.get("Location")
        if not (options.follow_redirects and response.status_code in REDIRECT_CODES and location):
            break
        _drain(response, guard)
        location_url = urljoin(url, location.encode("latin-1").decode("utf-8", "replace"))
        _check_hop(location_url, result.redirects, options.max_redirects, guard)
        result.redirects += 1
        method, headers, body = _rebuild(response, method, url, location_url, headers, body)
        url = location_url
        result.final_url = redact_url(url)
    response.raw.decode_content = options.compressed  # --compressed: count and cap decoded bytes
    reader = state.reader or client.reader
    if not reader.active:  # the default: count the body, nothing more
        _count_body(response, result, options.max_bytes, guard)
        return
    # guard.sock is the socket this response came on: its certificate is the one to report
    state.reading = reader.open(response, guard.sock, first_method, asked, state.id, result)
    _count_body(response, result, options.max_bytes, guard, state.reading)


def _check_hop(target: str, done: int, limit: int, guard: Guard) -> None:
    """Refuse a redirect before it counts: another scheme, one too many, or no time left."""
    parts = urlsplit(target)
    scheme = parts.scheme.lower()
    if scheme not in FETCHABLE:
        raise FetchError(ErrorKind.UNSUPPORTED_SCHEME, f"redirect to scheme '{scheme}:' refused (only http and https)")
    if not usable_host(parts.netloc.rpartition("@")[2], idn=True):
        raise FetchError(ErrorKind.INVALID_URL, "redirect to a URL with no usable host refused")
    if done >= limit:
        raise FetchError(ErrorKind.TOO_MANY_REDIRECTS, f"more than {limit} redirects")
    if guard.passed():
        raise FetchError(ErrorKind.TIMEOUT, "total deadline reached while following a redirect")


def _send(
    method: str, url: str, headers: HTTPHeaderDict, body: bytes | None, client: Client, guard: Guard, normalised: bool
) -> Response:
    parts = urlsplit(url)
    if parts.scheme.lower() not in FETCHABLE:
        raise FetchError(ErrorKind.UNSUPPORTED_SCHEME, f"scheme '{parts.scheme}:' is not fetched (only http and https)")
    if guard.passed():
        raise FetchError(ErrorKind.TIMEOUT, "total deadline reached before the request could start")
    host = (parts.hostname or "").rstrip(".").lower()
    if host == "invalid" or host.endswith(".invalid"):
        raise FetchError(ErrorKind.DNS, f"{host}: the .invalid top-level domain never resolves (RFC 6761)")
    request = _prepare(method, url, headers, normalised, body)
    try:
        return _transmit(request, url, client, guard)
    except RequestsConnectionError as exc:
        if (method not in IDEMPOTENT and not client.options.retry_all_methods) or not stale(exc) or guard.passed():
            raise
    guard.fresh = True  # a kept-alive connection closed while idle: once more, on a new one
    try:
        return _transmit(request, url, client, guard)
    finally:
        guard.fresh = False


def _transmit(request: PreparedRequest, url: str, client: Client, guard: Guard) -> Response:
    """One request through the adapter; opening a connection is bounded by --connect-timeout,
    and that and every other socket wait by what is left of -t."""
    remaining = max(guard.remaining(), 0.001)
    timeout = (min(client.options.connect_timeout, remaining), remaining)
    return client.adapter.send(
        request, stream=True, timeout=timeout, verify=client.verify, proxies=client.proxies_for(url)
    )


def _prepare(
    method: str, url: str, headers: HTTPHeaderDict, normalised: bool = True, body: bytes | None = None
) -> PreparedRequest:
    """A PreparedRequest for a URL `inputs` already normalised, without re-parsing it.

    `PreparedRequest.prepare` re-parses the URL and builds a cookie header per call: a
    third of the CPU a fetch costs. Without a body, the rest of it comes down to this.
    A Location header is not normalised: requests quotes and encodes it. Either way the
    headers requests adds (Content-Length, Basic auth) go on top of ours, kept apart
    because requests' own header handling keeps one value per name.
    """
    request = PreparedRequest()
    if normalised:
        request.method, request.url, request.body = method, url, body
        with_auth = "@" in origin(url)
        if method in BODYLESS and body is None and not with_auth:  # the usual case: our headers, shared, read-only
            request.headers = headers  # type: ignore[assignment]  # urllib3 takes any mapping; this keeps repeats
            return request
        request.headers = CaseInsensitiveDict()
        if body is not None or method not in BODYLESS:
            request.headers["Content-Length"] = str(len(body or b""))
        if with_auth:
            request.prepare_auth(None, url)  # user:password in the URL becomes Basic auth
    else:
        request.prepare(method=method, url=url, data=body)
    added, request.headers = request.headers, headers.copy()  # type: ignore[assignment]
    request.headers.update(added)
    return request


def _rebuild(
    response: Response, method: str, url: str, target: str, headers: HTTPHeaderDict, body: bytes | None
) -> tuple[str, HTTPHeaderDict, bytes | None]:
    """Method, headers and body for the next hop, as browsers and curl do it.

    A hop turned into a GET drops the body and the headers that described it; 307 and
    308 send both again.
    """
    code = response.status_code
    if (code == 303 and method != "HEAD") or (code in (301, 302) and method == "POST"):
        method = "GET"
        if body is not None:
            body, headers = None, _without(headers, ("content-type",))
    old, new = urlsplit(url), urlsplit(target)
    if (old.hostname, old.port, old.scheme) != (new.hostname, new.port, new.scheme):
        kept = HTTPHeaderDict()
        for name, value in headers.items():  # every value of a repeated name
            if name.lower() not in SECRET_HEADERS:
                kept.add(name, value)
        headers = kept
    return method, headers, body


def _without(headers: HTTPHeaderDict, names: tuple[str, ...]) -> HTTPHeaderDict:
    kept = HTTPHeaderDict()
    for name, value in headers.items():
        if name.lower() not in names:
            kept.add(name, value)
    return kept


def _drain(response: Response, guard: Guard) -> None:
    """Read a small redirect body so the connection can be reused; drop a big one.

    An end of file once the deadline has passed may be the watchdog's shutdown: that
    connection is closed, never returned to the pool, and the redirect is not followed.
    """
    raw, left, ended = response.raw, REDIRECT_DRAIN, False
    while left > 0 and not ended and not guard.passed():
        data = raw.read1(min(CHUNK, left))
        ended, left = not data, left - len(data)
    if guard.detach() or not ended:
        raw.close()
    raw.release_conn()
    guard.check()


def _count_body(response: Response, result: Result, cap: int, guard: Guard, reading: Reading | None = None) -> None:
    """Stream the body, counting bytes and keeping none, stopping at `cap`.

    Checked after every read: a body framed by the connection's close ends with an end of
    file, and so does a socket the watchdog shut. With `raw.decode_content` (--compressed) the cap
    counts decoded bytes, read at most a chunk at a time so a bomb never inflates past
    it, while `bytes` stays what crossed the wire. `reading`, when a feature needs the
    body, sees each chunk, cut at `cap`: what is hashed, matched or saved is what was read.
    """
    raw, seen, ended = response.raw, 0, False
    decode = raw.decode_content
    try:
        while True:
            guard.check()
            data = raw.read1(min(CHUNK, cap - seen + 1))
            if not data:
                ended = True
                break
            if reading is not None:
                reading.feed(data if seen + len(data) <= cap else data[: cap - seen])
            seen += len(data)
            if seen > cap:
                result.truncated = True
                break
    finally:
        result.bytes = raw.tell() if decode else min(seen, cap)
        if guard.detach() or not ended:  # cut, truncated or broken: this connection is not reused
            raw.close()
        raw.release_conn()
    guard.check()
