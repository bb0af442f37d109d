"""What to show and what counts as failure: `--fields`, status filters, `--accept`, `--fail-on`.

Each flag's text is parsed once, up front, into a small immutable value; a bad spec raises
`SpecError` (a ValueError) with a message meant for the person who typed it, which the
CLI turns into a usage error. Matching a record is then a set lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..result import FIELDS, ErrorKind, Result
from . import Writer

KINDS: tuple[str, ...] = tuple(k.value for k in ErrorKind)
ANY_ERROR = "error"
_TOKEN_HELP = "a status (404), a range (200-299), a class (4xx)"


class SpecError(ValueError):
    """A flag value that does not parse; `str()` is the whole message for the user."""


def parse_fields(spec: str) -> tuple[str, ...]:
    """`url,status,elapsed_ms` -> that tuple, checked against the record's keys."""
    fields = tuple(f.strip() for f in spec.split(",") if f.strip())
    if not fields:
        raise SpecError(f"no field named; choose from {', '.join(FIELDS)}")
    for name in fields:
        if name not in FIELDS:
            raise SpecError(f"unknown field {name!r}; choose from {', '.join(FIELDS)}")
    duplicated = sorted({f for f in fields if fields.count(f) > 1})
    if duplicated:
        raise SpecError(f"field {duplicated[0]!r} given more than once")
    return fields


def project(result: Result, fields: Sequence[str] = FIELDS) -> dict[str, Any]:
    """The record as a dict holding only `fields`, in that order."""
    record = result.to_dict()
    return record if tuple(fields) == FIELDS else {f: record[f] for f in fields}


@dataclass(frozen=True)
class Outcomes:
    """A set of statuses and error kinds, as in `200,301`, `4xx,5xx`, `500-599,timeout`."""

    statuses: frozenset[int]
    kinds: frozenset[str]
    spec: str = ""

    @classmethod
    def parse(cls, spec: str, kinds: bool = True) -> Outcomes:
        """Parse a comma list; with `kinds=False` only statuses are allowed (for `--accept`)."""
        statuses: set[int] = set()
        names: set[str] = set()
        tokens = [t.strip().lower() for t in spec.split(",") if t.strip()]
        if not tokens:
            raise SpecError(f"empty list; give {_TOKEN_HELP}{' or an error kind' if kinds else ''}")
        for token in tokens:
            if kinds and token == ANY_ERROR:
                names.update(KINDS)
            elif kinds and token in KINDS:
                names.add(token)
            else:
                statuses.update(_statuses(token, kinds))
        return cls(frozenset(statuses), frozenset(names), spec)

    def matches(self, result: Result) -> bool:
        if result.error is not None:
            return result.error.value in self.kinds
        return result.status in self.statuses


def _statuses(token: str, kinds: bool) -> range:
    """One token of a status list -> the codes it covers."""
    if len(token) == 3 and token.endswith("xx") and token[0] in "12345":
        first = int(token[0]) * 100
        return range(first, first + 100)
    low, dash, high = token.partition("-")
    if _digits(low) and (not dash or _digits(high)):
        lo, hi = int(low), int(high) if dash else int(low)
        if 100 <= lo <= hi <= 999:
            return range(lo, hi + 1)
        if lo > hi and hi >= 100:
            raise SpecError(f"{token!r}: a range goes from low to high, like 200-299")
    extra = f", an error kind ({', '.join(KINDS)}) or {ANY_ERROR!r}" if kinds else ""
    raise SpecError(f"{token!r} is not {_TOKEN_HELP}{extra}; HTTP statuses are 100-999")


def _digits(text: str) -> bool:
    """ASCII digits only: `'²'.isdigit()` is true, and `int('²')` fails."""
    return text.isascii() and text.isdigit()


@dataclass(frozen=True)
class RecordFilter:
    """Which records reach the output (`--match-status`, `--filter-status`, `--only-failures`).

    Filters change what is shown, never what is counted: the summary and exit code still
    see every record.
    """

    match: Outcomes | None = None
    exclude: Outcomes | None = None
    only_failures: bool = False

    @classmethod
    def parse(cls, match: str | None = None, exclude: str | None = None, only_failures: bool = False) -> RecordFilter:
        return cls(
            Outcomes.parse(match) if match is not None else None,
            Outcomes.parse(exclude) if exclude is not None else None,
            only_failures,
        )

    @property
    def active(self) -> bool:
        return self.match is not None or self.exclude is not None or self.only_failures

    def __call__(self, result: Result) -> bool:
        if self.only_failures and result.ok:
            return False
        if self.match is not None and not self.match.matches(result):
            return False
        return not (self.exclude is not None and self.exclude.matches(result))


class Filtered:
    """A writer that passes on only the records `keep` accepts."""

    def __init__(self, writer: Writer, keep: Callable[[Result], bool]) -> None:
        self.writer = writer
        self.keep = keep

    def write_batch(self, results: Sequence[Result]) -> None:
        kept = [r for r in results if self.keep(r)]
        if kept:
            self.writer.write_batch(kept)

    def close(self) -> None:
        self.writer.close()


@dataclass(frozen=True)
class AcceptPolicy:
    """Which statuses make a record ok (`--accept 200-299,301`); an error never is."""

    statuses: frozenset[int]

    @classmethod
    def parse(cls, spec: str) -> AcceptPolicy:
        return cls(Outcomes.parse(spec, kinds=False).statuses)

    def is_ok(self, result: Result) -> bool:
        return result.error is None and result.status in self.statuses

    def apply(self, result: Result) -> Result:
        """Recompute `result.ok` in place (so every output agrees) and return the record."""
        result.ok = result.error is None and result.status in self.statuses
        return result


DEFAULT_ACCEPT = AcceptPolicy(frozenset(range(200, 400)))


@dataclass(frozen=True)
class FailPolicy:
    """Which records make the exit status 1 (`--fail-on any|none|5xx,dns,timeout`).

    `any` (the default): any record not ok. `none`: never. A list: any record whose
    status or error kind is in it, whether or not `--accept` called it ok. The word
    `empty`, alone or in a list (`any,empty`), also fails a run that read no URL at all.
    `new-failures` (with `--state`; only `empty` goes with it): a URL ok last run, not now;
    the state decides that, so for the records themselves it means `none`.
    """

    mode: str = "any"
    outcomes: Outcomes | None = None
    empty: bool = False
    new_failures: bool = False

    @classmethod
    def parse(cls, spec: str) -> FailPolicy:
        words = [w.strip().lower() for w in spec.split(",") if w.strip()]
        if NEW_FAILURES in words:
            if any(w not in (NEW_FAILURES, EMPTY) for w in words):
                raise SpecError(f"{spec!r}: 'new-failures' combines only with 'empty'")
            return cls("none", empty=EMPTY in words, new_failures=True)
        empty = EMPTY in words
        rest = [w for w in words if w != EMPTY]
        if empty and not rest:
            return cls("none", empty=True)
        if len(rest) == 1 and rest[0] in ("any", "none"):
            return cls(rest[0], empty=empty)
        if "any" in rest or "none" in rest:
            raise SpecError(f"{spec!r}: 'any' and 'none' are words of their own (only 'empty' goes with them)")
        try:
            return cls("list", Outcomes.parse(",".join(rest)), empty)
        except SpecError as exc:
            raise SpecError(f"{exc} (or 'any', 'none', 'empty', 'new-failures')") from None

    def fails(self, result: Result) -> bool:
        if self.mode == "any":
            return not result.ok
        if self.mode == "none" or self.outcomes is None:
            return False
        return self.outcomes.matches(result)


EMPTY = "empty"
NEW_FAILURES = "new-failures"
