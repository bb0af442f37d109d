"""What a worker learns from a response beyond its status: headers, title, hash, saved body, checks.

All of it is off by default, and then none of it runs: `Reader.active` is False and the
client counts the body as it always has. When some of it is on, the body is read once
through a `body.BodyScan`, and the record gains only the keys of the features asked for
(`result.EXTRA_FIELDS`). Checks are computed here, in the worker, so `ok` means the same
to library callers as to the CLI; a failed check is `ErrorKind.CHECK`, never retried.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from .body import BodyScan
from .checks import cert_expiry, header_failure
from .options import Options
from .result import ErrorKind, Result, one_line
from .save import BodyFile, file_name


class Reader:
    """Per client: which response features are on, worked out once from the options."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.checks = options.checks
        self.save_dir = options.save_dir
        self.hash = options.hash_body or options.save_dir is not None
        self.scan = self.hash or options.title or self.checks.body
        self.cert = self.checks.cert_days is not None
        self.active = self.scan or bool(options.include_headers) or self.checks.active

    def begin(self, result: Result) -> None:
        """Give a fetched record every key its features add, null until known."""
        extra = result.extra if result.extra is not None else {}
        if self.options.include_headers:
            extra["headers"] = {name: None for name in self.options.include_headers}
        if self.options.title:
            extra["title"] = None
        if self.hash:
            extra["sha256"] = None
        if self.save_dir is not None:
            extra["saved_to"] = None
        if self.cert:
            extra["cert_expires"] = extra["cert_days_left"] = None
        result.extra = extra

    def open(self, response: Any, sock: object, method: str, url: str, id: Any, result: Result) -> Reading:
        """The final response's headers are in: note what they say, and start reading its body."""
        extra = result.extra if result.extra is not None else {}
        headers = response.headers
        if self.options.include_headers:
            extra["headers"] = {name: headers.get(name) for name in self.options.include_headers}
        # A 304 answers a conditional request: no body, few headers, "as you have it". Body
        # and header checks were passed by the response it stands for, so they are not run.
        fresh = response.status_code != 304
        failure = header_failure(self.checks, headers) if self.checks.expect_header and fresh else None
        failure = f"--expect-header: {failure}" if failure else None
        if self.cert:
            failure = _cert(sock, extra, self.checks.cert_days) or failure
        save = None
        if self.save_dir is not None:
            try:
                save = BodyFile(self.save_dir, file_name(method, url, id, result.content_type))
            except OSError as exc:
                return Reading(self, None, None, _save_error(exc))
        checks = self.checks if fresh else None
        scan = BodyScan(checks, hash_body=self.hash, title=self.options.title, save=save) if self.scan else None
        return Reading(self, scan, failure)


class Reading:
    """One final response being read; `finish` settles the record once the read is over."""

    def __init__(self, reader: Reader, scan: BodyScan | None, failure: str | None, save_error: str | None = None):
        self.reader, self.scan, self.failure, self.save_error = reader, scan, failure, save_error
        self.cut = save_error is not None  # the save failed before the fetch did: the save is the error

    def feed(self, chunk: bytes) -> None:
        if self.scan is not None:
            try:
                self.scan.feed(chunk)
            except OSError as exc:  # the body file: disk full, quota
                self.save_error, self.cut = _save_error(exc), True
                if self.scan.save is not None:
                    self.scan.save.discard()  # no half file left behind
                self.scan = None
                raise _SaveFailed from None

    def finish(self, result: Result) -> None:
        """Checks, then the saved file: renamed into place only when the record stays ok."""
        scan, extra = self.scan, result.extra if result.extra is not None else {}
        if self.save_error is not None and (result.error is None or self.cut):
            result.ok, result.error, result.error_message = False, ErrorKind.SAVE, self.save_error
        read_whole = result.error is None
        if scan is not None and read_whole:
            if "sha256" in extra:
                extra["sha256"] = scan.sha256()
            if scan.title is not None:
                extra["title"] = scan.title.text(result.content_type)
        if result.ok:
            failure = self.failure or (scan.failure(result.truncated, named=True) if scan is not None else None)
            limit = self.reader.checks.max_response_ms
            if failure is None and limit is not None and result.elapsed_ms > limit:
                failure = f"--max-response-time: {result.elapsed_ms:g} ms, more than {limit:g} ms"
            if failure is not None:
                result.ok, result.error, result.error_message = False, ErrorKind.CHECK, one_line(failure)
        self._settle(result, extra)

    def _settle(self, result: Result, extra: dict[str, Any]) -> None:
        save = self.scan.save if self.scan is not None else None
        if save is None:
            return
        if not result.ok:
            save.discard()
            return
        try:
            extra["saved_to"] = save.commit()
        except OSError as exc:
            save.discard()
            result.ok, result.error, result.error_message = False, ErrorKind.SAVE, _save_error(exc)

    def abandon(self) -> None:
        """The fetch failed before `finish` could run: no file is left behind."""
        save = self.scan.save if self.scan is not None else None
        if save is not None:
            save.discard()


class _SaveFailed(Exception):
    """Writing the body file failed; the read stops, `Reading.finish` reports it."""


def _save_error(exc: OSError) -> str:
    where = f" {exc.filename!r}" if exc.filename else ""
    return one_line(f"--save-dir: cannot write{where}: {exc.strerror or exc}")


def _cert(sock: object, extra: dict[str, Any], days: int | None) -> str | None:
    """`cert_expires`/`cert_days_left` from the certificate of this very connection; a check
    failure when fewer than `days` are left. A plain-HTTP response has no certificate: null."""
    expires = cert_expiry(sock)
    if expires is None:
        return None
    left = math.floor((expires - dt.datetime.now(dt.timezone.utc)).total_seconds() / 86400)
    extra["cert_expires"] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    extra["cert_days_left"] = left
    if days is not None and left < days:
        return f"--cert-days: the certificate expires in {left} days ({extra['cert_expires']}), fewer than {days}"
    return None
