"""What the last run saw, per URL, in one SQLite file: the memory a cron job needs.

A run reads the previous row of each URL before writing its record and stores the new
one after, so a record can say what changed since last time. Everything happens on the
caller's thread in batched transactions: a million-URL list costs a few thousand
statements, and nothing but the current batch is ever in memory.

Safety, in the order a cron user meets the problems:
- `kill -9` at any moment: SQLite's journal (WAL) makes every batch all or nothing.
- Two runs on one file (a job that overran its slot): an exclusive `flock` on a side
  file `FILE.lock`; the second run waits up to `wait` seconds, then `StateBusy`.
- A file that is not ours, or one written by a newer fetchpool: `StateError`, never a
  silent reset, so a typo in `--state` cannot wipe another program's database.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

APPLICATION_ID = 0x66706F6C  # "fpol": marks the file as a fetchpool state database
SCHEMA_VERSION = 1
BATCH = 500  # keys per SELECT; well under SQLite's 32,766 host-parameter limit

_SCHEMA = """
CREATE TABLE urls (
    key TEXT PRIMARY KEY,
    checked_at REAL NOT NULL,
    status INTEGER,
    ok INTEGER NOT NULL,
    error TEXT,
    etag TEXT,
    last_modified TEXT,
    sha256 TEXT,
    changed_at REAL NOT NULL,
    fails_in_a_row INTEGER NOT NULL
) WITHOUT ROWID;
"""
_COLUMNS = "key, checked_at, status, ok, error, etag, last_modified, sha256, changed_at, fails_in_a_row"


class StateError(Exception):
    """The state file cannot be used as it is: not ours, too new, or unreadable."""


class StateBusy(StateError):
    """Another run holds the state file for longer than we were willing to wait."""


@dataclass(frozen=True, slots=True)
class Seen:
    """One URL's row: what its latest run found."""

    key: str
    checked_at: float
    status: int | None
    ok: bool
    error: str | None
    etag: str | None = None
    last_modified: str | None = None
    sha256: str | None = None
    changed_at: float = 0.0
    fails_in_a_row: int = 0

    def outcome(self) -> tuple[int | None, bool, str | None, str | None]:
        """What a change is judged on: status, ok, error kind and body hash."""
        return self.status, self.ok, self.error, self.sha256


def observe(
    key: str,
    previous: Seen | None,
    *,
    status: int | None,
    ok: bool,
    error: str | None,
    etag: str | None = None,
    last_modified: str | None = None,
    sha256: str | None = None,
    not_modified: bool = False,
    now: float | None = None,
    same_run: bool = False,
) -> tuple[Seen, bool | None]:
    """The new row for `key` and whether it changed (None on the URL's first run).

    A `304 Not Modified` answer to a conditional request means "as last time": it keeps
    the stored status, hash and validators, and is never a change by itself. `same_run`:
    `previous` is this run's own earlier line for the key (a URL listed twice), which
    must not count as one more failed run. A failure keeps the last ok response's
    validators, so the page's next 304 is still asked for.
    """
    now = time.time() if now is None else now
    if not_modified and previous is not None and previous.ok:  # "as last time" only means ok if it was
        status, sha256 = previous.status, previous.sha256
        etag, last_modified = etag or previous.etag, last_modified or previous.last_modified
    if previous is not None and etag is None and last_modified is None:
        etag, last_modified = previous.etag, previous.last_modified
    fails = 0 if ok else (previous.fails_in_a_row if previous else 0) + (0 if same_run and previous else 1)
    if previous is None:
        return Seen(key, now, status, ok, error, etag, last_modified, sha256, now, fails), None
    changed = (status, ok, error, sha256) != previous.outcome()
    since = now if changed else previous.changed_at
    return Seen(key, now, status, ok, error, etag, last_modified, sha256, since, fails), changed


class State:
    """An open state file. Use as a context manager; only the opening thread may use it."""

    def __init__(self, path: str, wait: float = 60.0) -> None:
        self.path = path
        created = not os.path.lexists(path + ".lock")
        self._lock_fd = _lock(path, wait)
        try:
            self._db = _connect(path)
        except BaseException:
            if created:  # a file refused (not ours, a typo'd name) is left as it was found
                with contextlib.suppress(OSError):
                    os.unlink(path + ".lock")
            os.close(self._lock_fd)
            raise

    def __enter__(self) -> State:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._db.close()
        finally:
            os.close(self._lock_fd)

    def lookup(self, keys: Sequence[str]) -> dict[str, Seen]:
        """The stored rows of `keys` (absent keys are simply missing)."""
        found: dict[str, Seen] = {}
        for start in range(0, len(keys), BATCH):
            part = keys[start : start + BATCH]
            marks = ",".join("?" * len(part))
            query = f"SELECT {_COLUMNS} FROM urls WHERE key IN ({marks})"  # noqa: S608 - marks only
            for row in self._db.execute(query, part):
                found[row[0]] = Seen(row[0], row[1], row[2], bool(row[3]), *row[4:])
        return found

    def store(self, rows: Iterable[Seen]) -> None:
        """Write a batch in one transaction: all of it lands, or (after a crash) none."""
        values = [
            (
                r.key,
                r.checked_at,
                r.status,
                int(r.ok),
                r.error,
                r.etag,
                r.last_modified,
                r.sha256,
                r.changed_at,
                r.fails_in_a_row,
            )
            for r in rows
        ]
        if not values:
            return
        with self._db:
            self._db.executemany(
                f"INSERT OR REPLACE INTO urls ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
                values,
            )

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM urls").fetchone()[0])


def _lock(path: str, wait: float) -> int:
    """Hold `path.lock` exclusively; poll until `wait` has passed, then give up."""
    try:
        fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as exc:
        raise StateError(f"{path}: cannot create its lock file ({exc.strerror or exc})") from None
    deadline = time.monotonic() + wait
    delay = 0.01
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise StateBusy(f"{path}: another fetchpool run is using it (waited {wait:g} s)") from None
            time.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
            delay = min(delay * 2, 0.5)
        except OSError:
            os.close(fd)
            raise


def _connect(path: str) -> sqlite3.Connection:
    """Open (or create) the database and make sure it is one of ours, of a known version.

    Creation is one transaction (header marks and table together), so a run killed while
    creating leaves either an empty database, taken as new next time, or a whole one.
    """
    try:
        db = sqlite3.connect(path, isolation_level=None, timeout=5.0)
        app = db.execute("PRAGMA application_id").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app == 0 and tables == 0:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(
                f"BEGIN IMMEDIATE; PRAGMA application_id = {APPLICATION_ID};"
                f" PRAGMA user_version = {SCHEMA_VERSION}; {_SCHEMA} COMMIT;"
            )
        else:
            _check(db, path, app)
            db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable across a process crash
    except sqlite3.OperationalError as exc:  # a folder, no permission, a locked or missing folder
        raise StateError(f"{path}: cannot open it ({exc})") from None
    except sqlite3.DatabaseError as exc:
        raise StateError(f"{path}: not a fetchpool state database ({exc})") from None
    db.isolation_level = "DEFERRED"
    return db


def _check(db: sqlite3.Connection, path: str, app: int) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if app != APPLICATION_ID:
        raise StateError(f"{path}: not a fetchpool state database; refusing to change it")
    if version > SCHEMA_VERSION:
        raise StateError(f"{path}: written by a newer fetchpool (state version {version}); upgrade fetchpool")
