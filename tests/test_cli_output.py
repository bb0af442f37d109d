"""Output flags end to end: formats, fields, filters, -o, --summary-json, exit policy."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from fetchpool.app import ExitCode
from fetchpool.result import FIELDS

from conftest import run_cli


@pytest.fixture
def mixed(server) -> bytes:
    paths = ["/ok", "/status/404", "/status/503", "/redirect/1", "/status/301"]
    return "".join(server.url(p) + "\n" for p in paths).encode() + b"http://127.0.0.1:9/closed\n"


def jsonl(out: bytes) -> list[dict]:
    return [json.loads(line) for line in out.decode().splitlines()]


def test_csv_has_a_header_and_stable_columns(mixed) -> None:
    proc = run_cli("--format", "csv", "--retries", "0", input=mixed)
    rows = list(csv.reader(io.StringIO(proc.stdout.decode())))
    assert rows[0] == list(FIELDS) and len(rows) == 7
    by_line = {int(r[1]): dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert by_line[2]["status"] == "404" and by_line[2]["ok"] == "false" and by_line[6]["error"] == "connect"


def test_json_is_one_array(mixed) -> None:
    proc = run_cli("--format", "json", "--retries", "0", input=mixed)
    doc = json.loads(proc.stdout)
    assert isinstance(doc, list) and len(doc) == 6 and set(doc[0]) == set(FIELDS)


def test_fields_choose_and_order_keys_in_every_format(mixed) -> None:
    got = jsonl(run_cli("--fields", "status,url", "--retries", "0", input=mixed).stdout)
    assert all(list(r) == ["status", "url"] for r in got)
    rows = list(csv.reader(io.StringIO(run_cli("-f", "csv", "--fields", "line,ok", input=mixed).stdout.decode())))
    assert rows[0] == ["line", "ok"]


def test_unknown_field_is_a_usage_error(mixed) -> None:
    proc = run_cli("--fields", "url,colour", input=mixed)
    assert proc.returncode == ExitCode.USAGE and b"colour" in proc.stderr


@pytest.mark.parametrize(
    ("args", "statuses"),
    [
        (["--match-status", "4xx,5xx"], [404, 503]),
        (["--match-status", "200,301"], [200, 200, 301]),
        (["--filter-status", "2xx,connect"], [301, 404, 503]),
        (["--only-failures"], [None, 404, 503]),
        (["--match-status", "connect"], [None]),
    ],
)
def test_filters_select_records_but_all_count(mixed, args: list[str], statuses: list[int | None]) -> None:
    proc = run_cli(*args, "--retries", "0", input=mixed)
    assert sorted((r["status"] for r in jsonl(proc.stdout)), key=lambda s: s or 0) == statuses
    assert proc.returncode == ExitCode.FAILURES  # the filtered-out failures still count


def test_output_file_and_summary_json(mixed, tmp_path) -> None:
    out, summary = tmp_path / "report.csv", tmp_path / "summary.json"
    proc = run_cli("-o", str(out), "--summary-json", str(summary), "--retries", "0", input=mixed)
    assert proc.stdout == b""
    rows = list(csv.reader(out.open()))
    assert rows[0] == list(FIELDS) and len(rows) == 7  # the .csv extension chose the format
    doc = json.loads(summary.read_text())
    assert doc["total"] == 6 and doc["ok"] == 3 and doc["failed"] == 3
    assert {"p50", "p90", "p99", "max"} <= set(doc["latency_ms"]) and doc["started"] and doc["finished"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.csv", "summary.json"]  # no temp file left


def test_fail_on_and_accept_decide_the_exit_status(mixed, server) -> None:
    assert run_cli("--fail-on", "none", "--retries", "0", input=mixed).returncode == ExitCode.OK
    assert run_cli("--fail-on", "5xx", "--retries", "0", input=mixed).returncode == ExitCode.FAILURES
    only_404 = (server.url("/status/404") + "\n").encode()
    assert run_cli("--fail-on", "5xx,dns,timeout", input=only_404).returncode == ExitCode.OK
    proc = run_cli("--accept", "200-299,404", input=only_404)
    assert proc.returncode == ExitCode.OK and jsonl(proc.stdout)[0]["ok"] is True
    redirect = (server.url("/status/301") + "\n").encode()
    proc = run_cli("--accept", "200-299", input=redirect)
    assert proc.returncode == ExitCode.FAILURES and jsonl(proc.stdout)[0]["ok"] is False


@pytest.mark.parametrize("args", [["--fail-on", "sometimes"], ["--accept", "ok"], ["--match-status", "6xx"]])
def test_bad_specs_are_usage_errors(args: list[str]) -> None:
    proc = run_cli(*args, input=b"")
    assert proc.returncode == ExitCode.USAGE and b"Traceback" not in proc.stderr


def test_output_onto_an_input_file_is_refused(server, tmp_path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text(server.url("/ok") + "\n")
    for flag in ("-o", "--summary-json"):
        proc = run_cli(str(urls), flag, str(urls))
        assert proc.returncode == ExitCode.USAGE and b"input file" in proc.stderr
        assert urls.read_text() == server.url("/ok") + "\n"


@pytest.mark.parametrize("flag", ["-o", "--summary-json"])
def test_an_unwritable_output_is_a_usage_error_before_fetching(mixed, flag: str) -> None:
    proc = run_cli(flag, "/no/such/folder/out.csv", input=mixed)
    assert proc.returncode == ExitCode.USAGE and proc.stdout == b"" and b"writable folder" in proc.stderr


def test_dash_output_is_stdout(server, tmp_path) -> None:
    proc = run_cli("-o", "-", input=(server.url("/ok") + "\n").encode(), cwd=tmp_path)
    assert jsonl(proc.stdout)[0]["status"] == 200 and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [["-t", "nan"], ["-t", "inf"], ["--connect-timeout", "inf"], ["--backoff", "nan"], ["--max-retry-wait", "nan"]],
)
def test_numbers_must_be_finite(args: list[str]) -> None:
    proc = run_cli(*args, input=b"http://127.0.0.1:9/\n", timeout=20)
    assert proc.returncode == ExitCode.USAGE and b"finite" in proc.stderr


def test_a_missing_ca_bundle_is_a_usage_error(server) -> None:
    import subprocess
    import sys

    from conftest import cli_env

    env = cli_env(REQUESTS_CA_BUNDLE="/no/such/bundle.pem")
    proc = subprocess.run([sys.executable, "-m", "fetchpool", "-"], input=b"", capture_output=True, env=env, timeout=30)
    assert proc.returncode == ExitCode.USAGE and b"REQUESTS_CA_BUNDLE" in proc.stderr


def test_plain_table_columns_line_up_and_a_closed_pipe_is_quiet(server, tmp_path) -> None:
    import subprocess
    import sys

    from conftest import cli_env

    lines = [server.url("/ok"), "not a url", server.url("/loop"), server.url("/status/404")]
    proc = run_cli("-f", "table", "--retries", "0", input="\n".join(lines).encode())
    rows = proc.stdout.decode().splitlines()
    assert rows[0].startswith("STATUS")
    url_column = rows[0].index("URL")
    for row in rows[1:]:
        assert row[url_column:].startswith(("http://", "not a url")), row
    assert re.search(r"^too_many_redirects\s+\d", "\n".join(rows), re.MULTILINE)
    many = tmp_path / "many.txt"
    many.write_text("".join(server.url(f"/ok?i={i}") + "\n" for i in range(2000)))
    cmd = f"{sys.executable} -m fetchpool -f table {many} | head -2; exit ${{PIPESTATUS[0]}}"
    piped = subprocess.run(["bash", "-c", cmd], capture_output=True, timeout=60, env=cli_env())
    assert piped.returncode == ExitCode.BROKEN_PIPE and piped.stderr == b""
