"""CSV and JSON-array writers, atomic output files, field selection, filters, --accept, --fail-on."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fetchpool.output.csvout import CsvWriter
from fetchpool.output.jsonarray import JsonArrayWriter, atomic_path, write_json
from fetchpool.output.select import (
    DEFAULT_ACCEPT,
    AcceptPolicy,
    FailPolicy,
    Filtered,
    Outcomes,
    RecordFilter,
    SpecError,
    parse_fields,
    project,
)
from fetchpool.result import FIELDS, ErrorKind, Result


def rec(status: int | None = 200, error: ErrorKind | None = None, url: str = "http://t.test/a", **kw: object) -> Result:
    ok = error is None and status is not None and 200 <= status < 400
    return Result(url=url, line=1, status=status, ok=ok, error=error, attempts=1, **kw)  # type: ignore[arg-type]


class FlushCounter(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


# --- CSV -------------------------------------------------------------------------------


def test_csv_has_a_header_in_fields_order_and_one_row_per_record() -> None:
    out = io.StringIO()
    writer = CsvWriter(out)
    writer.write(rec(200, elapsed_ms=12.5, bytes=10, content_type="text/html"))
    writer.write(rec(None, ErrorKind.DNS, error_message='no such host, "x"', url="http://x.invalid/"))
    writer.close()
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == list(FIELDS)
    first, second = (dict(zip(rows[0], r, strict=True)) for r in rows[1:])
    assert first["status"] == "200" and first["ok"] == "true" and first["elapsed_ms"] == "12.5"
    assert first["error"] == "" and first["ttfb_ms"] == "" and first["truncated"] == "false"
    assert second["error"] == "dns" and second["error_message"] == 'no such host, "x"' and second["status"] == ""
    assert out.getvalue().count("\r") == 0 and len(rows) == 3


def test_csv_with_fields_keeps_their_order() -> None:
    out = io.StringIO()
    writer = CsvWriter(out, parse_fields("status,url"))
    writer.write(rec(404))
    writer.close()
    assert out.getvalue() == "status,url\n404,http://t.test/a\n"


def test_csv_of_no_records_is_just_the_header() -> None:
    out = io.StringIO()
    CsvWriter(out, ("url", "ok")).close()
    assert out.getvalue() == "url,ok\n"


def test_csv_writes_and_flushes_once_per_batch() -> None:
    out = FlushCounter()
    writer = CsvWriter(out, ("status",))
    assert out.getvalue() == ""  # the header waits for the first batch, then goes out with it
    writer.write_batch([rec(), rec(), rec()])
    assert out.flushes == 1 and out.getvalue() == "status\n200\n200\n200\n"
    writer.write(rec(404))  # a batch of one
    writer.close()
    assert out.flushes == 2 and out.getvalue().endswith("200\n404\n")


def test_csv_quotes_commas_newlines_and_quotes() -> None:
    out = io.StringIO()
    writer = CsvWriter(out, ("url", "error_message"))
    writer.write(rec(url="http://t.test/a,b", error_message='line\nbreak "q"'))
    writer.close()
    assert list(csv.reader(io.StringIO(out.getvalue())))[1] == ["http://t.test/a,b", 'line\nbreak "q"']


# --- JSON array ----------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 3])
def test_json_array_is_valid_json_once_closed(count: int) -> None:
    out = io.StringIO()
    writer = JsonArrayWriter(out)
    for i in range(count):
        writer.write(rec(200 + i))
    writer.close()
    writer.close()  # idempotent: a second close must not add another bracket
    doc = json.loads(out.getvalue())
    assert [r["status"] for r in doc] == [200 + i for i in range(count)]
    assert all(list(r) == list(FIELDS) for r in doc)


def test_json_array_streams_one_element_per_line_with_fields() -> None:
    out = io.StringIO()
    writer = JsonArrayWriter(out, ("url", "status"))
    writer.write(rec(200))
    writer.write(rec(500))
    assert out.getvalue().count("\n") == 2  # written as they come, not held until close
    writer.close()
    assert json.loads(out.getvalue()) == [
        {"url": "http://t.test/a", "status": 200},
        {"url": "http://t.test/a", "status": 500},
    ]


# --- atomic files --------------------------------------------------------------------


def test_atomic_path_replaces_the_target_only_at_the_end(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    with atomic_path(target) as stream:
        stream.write("new")
        stream.flush()
        assert target.read_text() == "old"
        # The new content is in a file of the target's own folder (so the end is a rename):
        # unnamed where O_TMPFILE works, else one hidden temporary file.
        assert os.readlink(f"/proc/self/fd/{stream.fileno()}").startswith(f"{tmp_path}/")
        temps = [p for p in tmp_path.iterdir() if p != target]
        assert len(temps) <= 1 and all(p.name.startswith(".out.json.") for p in temps)
    assert target.read_text() == "new" and list(tmp_path.iterdir()) == [target]


def test_atomic_path_leaves_the_target_alone_on_error(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as stream:
        stream.write("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def test_atomic_path_uses_umask_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "f") as stream:
            stream.write("x")
    finally:
        os.umask(old)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644


def test_atomic_path_replaces_a_symlink_instead_of_writing_through_it(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / "victim"
    victim.write_text("keep")
    link = tmp_path / "out"
    link.symlink_to(victim)
    with atomic_path(link) as stream:
        stream.write("data")
    assert victim.read_text() == "keep" and not link.is_symlink() and link.read_text() == "data"


def test_atomic_path_refuses_a_directory(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError), atomic_path(tmp_path):
        pass


def test_write_json_writes_a_document(tmp_path: Path) -> None:
    write_json(tmp_path / "s.json", {"total": 3, "name": "é"})
    assert json.loads((tmp_path / "s.json").read_text(encoding="utf-8")) == {"total": 3, "name": "é"}


def test_json_array_to_an_atomic_file(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    with atomic_path(target) as stream:
        writer = JsonArrayWriter(stream)
        writer.write(rec())
        writer.close()
    assert json.loads(target.read_text())[0]["status"] == 200


# --- field selection -----------------------------------------------------------------


def test_parse_fields() -> None:
    assert parse_fields("url, status ,elapsed_ms") == ("url", "status", "elapsed_ms")
    assert parse_fields(",".join(FIELDS)) == FIELDS


@pytest.mark.parametrize(
    ("spec", "message"),
    [("url,nope", "unknown field 'nope'; choose from url, line"), ("", "no field"), ("url,url", "'url' given more")],
)
def test_bad_fields_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(SpecError, match=message) as info:
        parse_fields(spec)
    assert isinstance(info.value, ValueError)


def test_project_keeps_only_the_fields_in_order() -> None:
    assert project(rec(301), ("status", "url")) == {"status": 301, "url": "http://t.test/a"}
    assert list(project(rec(None, ErrorKind.TLS))) == list(FIELDS)
    assert project(rec(None, ErrorKind.TLS), ("error",)) == {"error": "tls"}


# --- outcomes, filters ---------------------------------------------------------------


def test_outcomes_parse_codes_ranges_classes_and_kinds() -> None:
    spec = Outcomes.parse("200, 301,4XX,500-502,timeout")
    assert {200, 301, 404, 499, 500, 502} <= spec.statuses and not {201, 302, 503} & spec.statuses
    assert spec.kinds == {"timeout"}
    assert spec.matches(rec(404)) and spec.matches(rec(None, ErrorKind.TIMEOUT))
    assert not spec.matches(rec(503)) and not spec.matches(rec(None, ErrorKind.DNS))


def test_error_means_every_error_kind() -> None:
    spec = Outcomes.parse("error")
    assert all(spec.matches(rec(None, kind)) for kind in ErrorKind) and not spec.matches(rec(500))


@pytest.mark.parametrize("spec", ["", "20", "2xy", "6xx", "99", "1000", "200-", "abc", "299-200", "200;301"])
def test_bad_status_specs_raise_spec_error(spec: str) -> None:
    with pytest.raises(SpecError):
        Outcomes.parse(spec)


def test_bad_status_message_names_the_token_and_the_choices() -> None:
    with pytest.raises(SpecError, match=r"'abc' is not a status \(404\), a range \(200-299\), a class \(4xx\)"):
        Outcomes.parse("200,abc")
    with pytest.raises(SpecError, match="from low to high"):
        Outcomes.parse("299-200")


def test_record_filter_match_exclude_and_only_failures() -> None:
    records = [rec(200), rec(301), rec(404), rec(500), rec(None, ErrorKind.DNS)]
    assert not RecordFilter().active
    keep = RecordFilter.parse(match="4xx,5xx,dns")
    assert [r.status or r.error for r in records if keep(r)] == [404, 500, ErrorKind.DNS]
    drop = RecordFilter.parse(exclude="200,301")
    assert [r.status or r.error for r in records if drop(r)] == [404, 500, ErrorKind.DNS]
    failures = RecordFilter.parse(only_failures=True)
    assert failures.active and [r.status or r.error for r in records if failures(r)] == [404, 500, ErrorKind.DNS]
    both = RecordFilter.parse(match="5xx,dns", exclude="dns")
    assert [r.status for r in records if both(r)] == [500]


def test_filtered_writer_passes_on_only_kept_records_in_one_batch() -> None:
    out = FlushCounter()
    writer = Filtered(JsonArrayWriter(out, ("status",)), RecordFilter.parse(only_failures=True))
    writer.write_batch([rec(status) for status in (200, 404, 200, 503)])
    writer.write_batch([rec(200)])  # nothing kept: nothing written
    writer.close()
    assert json.loads(out.getvalue()) == [{"status": 404}, {"status": 503}]


# --- --accept and --fail-on ----------------------------------------------------------


def test_default_accept_is_the_core_rule() -> None:
    for status in (100, 200, 204, 301, 399, 400, 404, 500, None):
        r = rec(status)
        assert DEFAULT_ACCEPT.is_ok(r) == r.ok
    assert not DEFAULT_ACCEPT.is_ok(rec(None, ErrorKind.TIMEOUT))


def test_accept_recomputes_ok_in_place() -> None:
    accept = AcceptPolicy.parse("200-299,404")
    not_found, moved, failed = rec(404), rec(301), rec(None, ErrorKind.CONNECT)
    assert accept.apply(not_found) is not_found and not_found.ok is True
    assert accept.apply(moved).ok is False
    assert accept.apply(failed).ok is False


def test_accept_takes_statuses_only() -> None:
    with pytest.raises(SpecError, match="'timeout' is not a status"):
        AcceptPolicy.parse("200,timeout")


def test_fail_on_any_none_and_lists() -> None:
    ok, not_found, server, dns = rec(200), rec(404), rec(503), rec(None, ErrorKind.DNS)
    any_ = FailPolicy.parse("any")
    assert FailPolicy() == any_
    assert [any_.fails(r) for r in (ok, not_found, server, dns)] == [False, True, True, True]
    none = FailPolicy.parse(" NONE ")
    assert not any(none.fails(r) for r in (ok, not_found, server, dns))
    listed = FailPolicy.parse("5xx,dns,timeout")
    assert [listed.fails(r) for r in (ok, not_found, server, dns)] == [False, False, True, True]


def test_fail_on_a_list_counts_even_what_accept_made_ok() -> None:
    r = AcceptPolicy.parse("200-599").apply(rec(503))
    assert r.ok and FailPolicy.parse("5xx").fails(r) and not FailPolicy.parse("any").fails(r)


def test_bad_fail_on_mentions_any_and_none() -> None:
    with pytest.raises(SpecError, match="or 'any', 'none'"):
        FailPolicy.parse("sometimes")


# --- import cost ---------------------------------------------------------------------


def test_machine_formats_do_not_import_rich() -> None:
    code = (
        "import sys\n"
        "import fetchpool.output.stats, fetchpool.output.select, fetchpool.output.csvout\n"
        "import fetchpool.output.jsonarray, fetchpool.output.stats, fetchpool.output.jsonl\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('rich', 'click')], 'UI imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


def test_lines_reach_the_descriptor_in_whole_line_chunks_of_at_most_pipe_buf(tmp_path) -> None:
    from fetchpool.output import PIPE_BUF, _chunks, write_lines

    data = b"".join(b"x" * 300 + b"\n" for _ in range(40)) + b"y" * 5000 + b"\n" + b"z\n"
    pieces = list(_chunks(data))
    assert b"".join(pieces) == data and all(p.endswith(b"\n") for p in pieces)
    assert all(len(p) <= PIPE_BUF for p in pieces if not p.startswith(b"y"))
    path = tmp_path / "out.txt"
    with path.open("w") as stream:
        write_lines(stream, data.decode())
    assert path.read_bytes() == data
