"""Runs that remember the last one: --state, --conditional, --fail-on new-failures, --fail-after, --metrics.

End to end through the CLI (a subprocess, as cron runs it) against a loopback server whose
answers the test changes between runs, several runs in a row on one state file.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import ScriptedServer

from fetchpool.inputs import Target
from fetchpool.options import Options
from fetchpool.pool import run
from fetchpool.state import State

from conftest import cli_env, run_cli


def records(out: bytes) -> dict[str, dict[str, Any]]:
    """Records by the last part of their URL."""
    return {r["url"].rsplit("/", 1)[-1].split("?")[0]: r for r in map(json.loads, out.splitlines())}


def watch(server: ScriptedServer, state: Path, *names: str, args: tuple[str, ...] = ()) -> Any:
    urls = "".join(server.url(f"/s/{n}") + "\n" for n in names).encode()
    return run_cli("--state", str(state), "--retries", "0", *args, "-", input=urls)


# -- what the worker can do yet: hashing and conditional plumbing land in client.py separately --


def _probe(server: ScriptedServer) -> tuple[bool, bool]:
    """(bodies hashed with Options.hash_body, Target.headers sent and include_headers read)."""
    server.script["probe"] = (200, b"x", {"ETag": '"p"'})
    target = Target(server.url("/s/probe"), 1, headers=(("If-None-Match", '"p"'),))
    (result,) = run([target], Options(hash_body=True, include_headers=("ETag",), retries=0))
    extra = result.extra or {}
    return "sha256" in extra, result.status == 304 and "headers" in extra


@pytest.fixture
def plumbing(scripted: ScriptedServer) -> tuple[bool, bool]:
    return _probe(scripted)


# -- state across runs ---------------------------------------------------------------------


def test_ok_then_500_then_ok_across_runs(scripted: ScriptedServer, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    scripted.script["a"] = (200, b"fine", {})
    first = watch(scripted, state, "a", "b", args=("--fail-on", "new-failures"))
    assert first.returncode == 0, first.stderr
    rec = records(first.stdout)["a"]
    assert (rec["changed"], rec["prev_status"], rec["prev_ok"], rec["fails_in_a_row"]) == (None, None, None, 0)

    scripted.script["a"] = (500, b"down", {})
    second = watch(scripted, state, "a", "b", args=("--fail-on", "new-failures"))
    assert second.returncode == 1  # a URL ok last time is not ok now
    rec = records(second.stdout)["a"]
    assert (rec["ok"], rec["changed"], rec["prev_status"], rec["prev_ok"], rec["fails_in_a_row"]) == (
        False,
        True,
        200,
        True,
        1,
    )
    assert records(second.stdout)["b"]["changed"] is False

    third = watch(scripted, state, "a", "b", args=("--fail-on", "new-failures"))
    assert third.returncode == 0  # still broken: not new, nobody paged again
    assert records(third.stdout)["a"]["fails_in_a_row"] == 2

    scripted.script["a"] = (200, b"fine", {})
    summary = tmp_path / "summary.json"
    fourth = watch(scripted, state, "a", "b", args=("--fail-on", "new-failures", "--summary-json", str(summary)))
    assert fourth.returncode == 0
    rec = records(fourth.stdout)["a"]
    assert (rec["ok"], rec["changed"], rec["prev_ok"], rec["fails_in_a_row"]) == (True, True, False, 0)
    assert json.loads(summary.read_text())["monitor"] == {"new_failures": 0, "recovered": 1, "changed": 1, "skipped": 0}


def test_summary_counts_new_failures_recoveries_and_changes(scripted: ScriptedServer, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    scripted.script.update(up=(200, b"", {}), down=(503, b"", {}))
    watch(scripted, state, "up", "down")
    scripted.script.update(up=(500, b"", {}), down=(200, b"", {}))
    done = watch(scripted, state, "up", "down", args=("-o", os.devnull, "--summary-json", "-"))
    assert json.loads(done.stdout)["monitor"] == {"new_failures": 1, "recovered": 1, "changed": 2, "skipped": 0}


def test_summary_line_and_panel_say_the_counts() -> None:
    from rich.console import Console

    from fetchpool.output.panel import summary_panel
    from fetchpool.output.stats import Stats

    stats = Stats()
    assert "new failure" not in stats.line()  # without a monitoring flag, the line is as before
    stats.monitor = {"new_failures": 1, "recovered": 2, "changed": 3, "skipped": 4}
    assert stats.line().endswith("0 ok; 1 new failure, 2 recovered, 3 changed, 4 skipped")
    console = Console(width=100, record=True)
    console.print(summary_panel(stats))
    assert "1 new failure, 2 recovered, 3 changed, 4 skipped" in console.export_text()


def test_fail_after_counts_runs_in_a_row(scripted: ScriptedServer, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    scripted.script["x"] = (500, b"", {})
    codes = [watch(scripted, state, "x", args=("--fail-after", "2")).returncode for _ in range(3)]
    assert codes == [0, 1, 1]  # one blip pages nobody; the second failure in a row does
    scripted.script["x"] = (200, b"", {})
    assert watch(scripted, state, "x", args=("--fail-after", "2")).returncode == 0


def test_new_failures_after_n_pages_once(scripted: ScriptedServer, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    scripted.script["x"] = (500, b"", {})
    args = ("--fail-on", "new-failures", "--fail-after", "2")
    assert [watch(scripted, state, "x", args=args).returncode for _ in range(4)] == [0, 1, 0, 0]


def test_error_kind_change_is_a_change(scripted: ScriptedServer, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    watch(scripted, state, "slow")
    scripted.delay["slow"] = 3
    slow = watch(scripted, state, "slow", args=("-t", "0.2"))
    rec = records(slow.stdout)["slow"]
    assert (rec["error"], rec["changed"], rec["prev_ok"]) == ("timeout", True, True)


def test_state_keys_differ_by_method(scripted: ScriptedServer, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    watch(scripted, state, "a")
    head = watch(scripted, state, "a", args=("-X", "HEAD"))
    assert records(head.stdout)["a"]["changed"] is None  # HEAD is another target than GET
    with State(str(state)) as db:
        assert db.count() == 2


def test_body_change_is_a_change(scripted: ScriptedServer, tmp_path: Path, plumbing: tuple[bool, bool]) -> None:
    if not plumbing[0]:
        pytest.skip("the worker does not hash bodies yet (Options.hash_body lands in client.py separately)")
    state = tmp_path / "state.db"
    scripted.script["page"] = (200, b"version 1", {})
    watch(scripted, state, "page")
    scripted.script["page"] = (200, b"version 2", {})
    rec = records(watch(scripted, state, "page").stdout)["page"]
    assert rec["changed"] is True and rec["sha256"] == hashlib.sha256(b"version 2").hexdigest()
    assert records(watch(scripted, state, "page").stdout)["page"]["changed"] is False


def test_conditional_304_is_ok_and_unchanged(
    scripted: ScriptedServer, tmp_path: Path, plumbing: tuple[bool, bool]
) -> None:
    if not plumbing[1]:
        pytest.skip("the worker does not send Target.headers / read include_headers yet (client.py, separately)")
    state = tmp_path / "state.db"
    scripted.script["e"] = (200, b"body", {"ETag": '"v1"'})
    first = records(watch(scripted, state, "e", args=("--conditional",)).stdout)["e"]
    assert "headers" not in first  # the validators were fetched for the state, not asked for
    scripted.seen.clear()
    second = records(watch(scripted, state, "e", args=("--conditional",)).stdout)["e"]
    assert scripted.seen[-1][2].get("If-None-Match") == '"v1"'
    assert (second["status"], second["ok"], second["changed"], second["prev_status"]) == (304, True, False, 200)
    scripted.script["e"] = (200, b"body 2", {"ETag": '"v2"'})
    third = records(watch(scripted, state, "e", args=("--conditional",)).stdout)["e"]
    assert (third["status"], third["changed"]) == (200, plumbing[0])  # a new body is a change once hashed


def test_conditional_sends_nothing_for_an_unknown_url(scripted: ScriptedServer, tmp_path: Path) -> None:
    watch(scripted, tmp_path / "state.db", "new", args=("--conditional",))
    assert "If-None-Match" not in scripted.seen[-1][2]


# -- misuse and crashes ---------------------------------------------------------------------


def test_a_file_that_is_not_a_state_database_is_refused(scripted: ScriptedServer, tmp_path: Path) -> None:
    other = tmp_path / "notes.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE notes (text TEXT)")
    db.commit()
    db.close()
    text = tmp_path / "urls.txt"
    text.write_text("http://127.0.0.1:1/\n")
    for path in (other, text):
        before = path.read_bytes()
        done = watch(scripted, path, "a")
        assert done.returncode == 2
        assert b"not a fetchpool state database" in done.stderr
        assert path.read_bytes() == before  # never reset
    assert scripted.hits == 0


def test_a_state_from_a_newer_fetchpool_is_refused(scripted: ScriptedServer, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    watch(scripted, state, "a")
    db = sqlite3.connect(state)
    db.execute("PRAGMA user_version = 99")
    db.close()
    done = watch(scripted, state, "a")
    assert done.returncode == 2 and b"newer fetchpool" in done.stderr


def test_flags_that_need_state_are_usage_errors() -> None:
    for args in (["--conditional"], ["--fail-on", "new-failures"], ["--fail-after", "2"]):
        done = run_cli(*args, "http://127.0.0.1:1/")
        assert done.returncode == 2 and b"needs --state" in done.stderr, args


def test_overlapping_run_waits_then_exits_75(scripted: ScriptedServer, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    with State(str(state)):  # a run that overran its slot
        done = watch(scripted, state, "a", args=("--state-wait", "0.3"))
    assert done.returncode == 75
    assert b"another fetchpool run is using it" in done.stderr
    assert scripted.hits == 0  # nothing fetched, nothing written


def test_overlapping_runs_lose_no_update(scripted: ScriptedServer, tmp_path: Path) -> None:
    """The second run waits for the first, then both runs' rows are there."""
    state = tmp_path / "state.db"
    first_urls = "".join(scripted.url(f"/s/one{i}?delay=0.15") + "\n" for i in range(20)).encode()
    second_urls = "".join(scripted.url(f"/s/two{i}") + "\n" for i in range(20)).encode()
    cmd = [sys.executable, "-m", "fetchpool", "--state", str(state), "-c", "2", "-"]
    first = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=cli_env())
    assert first.stdin is not None
    first.stdin.write(first_urls)
    first.stdin.close()
    deadline = time.monotonic() + 30
    while scripted.hits == 0 and time.monotonic() < deadline:  # the first run holds the state now
        time.sleep(0.01)
    second = run_cli("--state", str(state), "--state-wait", "60", "-", input=second_urls)
    assert first.stdout is not None
    first.stdout.read()
    first.wait(timeout=60)
    assert first.returncode == 0 and second.returncode == 0
    with State(str(state)) as db:
        assert db.count() == 40


def test_kill_9_in_a_loop_never_corrupts_the_state(scripted: ScriptedServer, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    urls = "".join(scripted.url(f"/s/k{i}?delay=0.04") + "\n" for i in range(400)).encode()
    cmd = [sys.executable, "-m", "fetchpool", "--state", str(state), "-c", "8", "-"]
    for round_ in range(4):
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=cli_env())
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(urls)
        proc.stdin.close()
        for _ in range(40 + 100 * round_):  # killed after a different number of records each time
            if not proc.stdout.readline():
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    db = sqlite3.connect(state)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = db.execute("SELECT count(*) FROM urls").fetchone()[0]
    db.close()
    done = run_cli("--state", str(state), "-", input=urls, timeout=120)
    assert done.returncode == 0, done.stderr
    known = [r for r in map(json.loads, done.stdout.splitlines()) if r["changed"] is not None]
    assert len(known) == stored  # every row that was committed is whole and found again
    assert all(r["prev_ok"] is True and r["changed"] is False for r in known)


# -- metrics ----------------------------------------------------------------------------------


def test_metrics_file_is_written_at_the_end(scripted: ScriptedServer, tmp_path: Path) -> None:
    prom = tmp_path / "fetchpool.prom"
    scripted.script["bad"] = (503, b"", {})
    urls = f"{scripted.url('/s/good')}\n{scripted.url('/s/bad')}\n".encode()
    done = run_cli("--metrics", str(prom), "--retries", "0", "-", input=urls)
    assert done.returncode == 1
    lines = prom.read_text().splitlines()
    assert f'fetchpool_probe_success{{url="{scripted.url("/s/good")}"}} 1' in lines
    assert f'fetchpool_probe_http_status_code{{url="{scripted.url("/s/bad")}"}} 503' in lines
    assert list(tmp_path.iterdir()) == [prom]


def test_metrics_file_is_left_alone_by_a_run_that_fails(tmp_path: Path) -> None:
    prom = tmp_path / "fetchpool.prom"
    prom.write_text("# the last good file\n")
    done = run_cli("--metrics", str(prom), "-o", "/dev/full", "--retries", "0", "http://127.0.0.1:1/")
    assert done.returncode == 74, done.stderr
    assert prom.read_text() == "# the last good file\n"


def test_default_record_has_no_monitor_keys(scripted: ScriptedServer) -> None:
    done = run_cli(scripted.url("/s/a"))
    assert "changed" not in json.loads(done.stdout)


def test_state_holds_no_password(scripted: ScriptedServer, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    url = scripted.url("/s/a").replace("http://", "http://user:secret@")
    run_cli("--state", str(state), url)
    assert b"secret" not in state.read_bytes()


def test_state_records_flush_while_a_slow_url_is_pending(scripted: ScriptedServer, tmp_path: Path) -> None:
    """A batch ends when nothing more is ready: a finished record never waits for a slow one."""
    state = tmp_path / "state.db"
    urls = f"{scripted.url('/s/fast')}\n{scripted.url('/s/slow?delay=20')}\n".encode()
    cmd = [sys.executable, "-m", "fetchpool", "--state", str(state), "-t", "30", "-"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=cli_env())
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(urls)
    proc.stdin.close()
    try:
        first = json.loads(proc.stdout.readline())
        assert first["url"].endswith("/s/fast") and first["changed"] is None
    finally:
        proc.kill()
        proc.wait(timeout=30)


# -- the conditional plumbing of Watch itself, with results as the worker will hand them --


class _Fetching:
    def __init__(self, results: list[Any]) -> None:
        self.results = results

    def __iter__(self) -> Iterator[Any]:
        return iter(self.results)

    def pending(self) -> bool:
        return False


def _settle(watch_: Any, *results: Any) -> list[Any]:
    return list(watch_.records(_Fetching(list(results)), lambda r: None))


def test_watch_stores_validators_and_sends_them_next_time(tmp_path: Path) -> None:
    from contextlib import ExitStack

    from fetchpool.monitor import MonitorPlan, Watch
    from fetchpool.result import Result

    plan = MonitorPlan(state=str(tmp_path / "state.db"), conditional=True)
    options = Options()
    fetched = plan.options(options)
    assert fetched.hash_body and fetched.include_headers == ("ETag", "Last-Modified")
    url = "http://127.0.0.1:9/page"
    with ExitStack() as stack:
        w = Watch.open(plan, options, stack)
        stamp = "Tue, 01 Dec 2026 09:00:00 GMT"
        headers = {"ETag": '"v1"', "Last-Modified": stamp}
        (first,) = _settle(w, Result(url, 1, status=200, ok=True, extra={"sha256": "aa", "headers": headers}))
        assert "headers" not in first.extra  # taken for the state, not asked for
    with ExitStack() as stack:
        w = Watch.open(plan, options, stack)
        (target,) = list(w.items([Target(url, 1)]))
        assert dict(target.headers) == {"If-None-Match": '"v1"', "If-Modified-Since": stamp}
        (again,) = _settle(w, Result(url, 1, status=304, ok=True, extra={"headers": {"ETag": '"v1"'}}))
        assert (again.extra["changed"], again.extra["prev_status"]) == (False, 200)
        (changed,) = _settle(w, Result(url, 1, status=200, ok=True, extra={"sha256": "bb"}))
        assert changed.extra["changed"] is True


def test_watch_keeps_asked_for_validators_and_drops_those_of_failures(tmp_path: Path) -> None:
    from contextlib import ExitStack

    from fetchpool.monitor import MonitorPlan, Watch
    from fetchpool.result import Result

    plan = MonitorPlan(state=str(tmp_path / "state.db"), conditional=True)
    options = Options(include_headers=("etag",))
    assert plan.options(options).include_headers == ("etag", "Last-Modified")
    url = "http://127.0.0.1:9/page"
    with ExitStack() as stack:
        w = Watch.open(plan, options, stack)
        (rec,) = _settle(w, Result(url, 1, status=500, extra={"headers": {"ETag": '"e"', "Last-Modified": "x"}}))
        assert rec.extra["headers"] == {"ETag": '"e"'}
        (target,) = list(w.items([Target(url, 1)]))
        assert target.headers == ()  # a failure's validators would turn its next 304 into "ok"


def test_one_select_per_batch_and_rows_committed_after_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contextlib import ExitStack

    from fetchpool.monitor import MonitorPlan, Watch
    from fetchpool.result import Result

    selects: list[int] = []
    original = State.lookup
    monkeypatch.setattr(State, "lookup", lambda self, keys: selects.append(len(keys)) or original(self, keys))
    plan = MonitorPlan(state=str(tmp_path / "state.db"))
    batches = [[Result(f"http://127.0.0.1:9/{b}/{i}", i, status=200, ok=True) for i in range(50)] for b in range(3)]
    with ExitStack() as stack:
        w = Watch.open(plan, Options(), stack)
        given = w.batches(iter(batches), lambda r: None)
        first = next(given)
        assert w.state is not None and w.state.count() == 0  # nothing stored before the batch is written
        assert [r.extra["changed"] for r in first] == [None] * 50
        rest = list(given)
    assert selects == [50, 50, 50] and len(rest) == 2
    with State(plan.state or "") as db:
        assert db.count() == 150


def test_files_in_a_missing_folder_are_refused_before_fetching(tmp_path: Path) -> None:
    for flag in ("--state", "--metrics", "--resume"):
        done = run_cli(flag, str(tmp_path / "missing" / "f"), "http://127.0.0.1:1/")
        assert done.returncode == 2 and b"is not a writable folder" in done.stderr, flag


def test_a_304_passes_the_body_and_header_checks_of_the_page_it_stands_for(
    scripted: ScriptedServer, tmp_path: Path
) -> None:
    """An unchanged page answered 304 must not fail --expect-body and page someone."""
    state = tmp_path / "state.db"
    scripted.script["e"] = (200, b"good page", {"ETag": '"g1"', "Content-Type": "text/html"})
    checks = ("--conditional", "--expect-body", "good", "--expect-header", "Content-Type: html")
    first = records(watch(scripted, state, "e", args=checks).stdout)["e"]
    assert first["ok"] is True and first["status"] == 200
    for _ in range(2):
        proc = watch(scripted, state, "e", args=(*checks, "--fail-on", "new-failures", "--fail-after", "1"))
        again = records(proc.stdout)["e"]
        assert (again["status"], again["ok"], again["error"], again["changed"]) == (304, True, None, False), again
        assert again["sha256"] == first["sha256"] and proc.returncode == 0


def test_a_url_listed_twice_counts_once_per_run(scripted: ScriptedServer, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    scripted.script["d"] = (200, b"ok", {})
    watch(scripted, state, "d")
    scripted.script["d"] = (500, b"no", {})
    urls = (scripted.url("/s/d") + "\n") * 3
    flags = ("--state", str(state), "--retries", "0", "--fail-on", "new-failures", "--fail-after", "2", "-")
    proc = run_cli(*flags, input=urls.encode())
    got = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["fails_in_a_row"] for r in got] == [1, 1, 1]
    assert proc.returncode == 0  # one failed run, not three: --fail-after 2 does not fire yet
    again = run_cli(*flags, input=urls.encode())
    assert [json.loads(line)["fails_in_a_row"] for line in again.stdout.splitlines()] == [2, 2, 2]
    assert again.returncode == 1


def test_a_failed_run_keeps_the_validators_of_the_last_ok_one(scripted: ScriptedServer, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    scripted.script["v"] = (200, b"body", {"ETag": '"x1"'})
    watch(scripted, state, "v", args=("--conditional",))
    scripted.script["v"] = (500, b"down", {})
    watch(scripted, state, "v", args=("--conditional",))
    scripted.script["v"] = (200, b"body", {"ETag": '"x1"'})
    scripted.seen.clear()
    back = records(watch(scripted, state, "v", args=("--conditional",)).stdout)["v"]
    assert scripted.seen[-1][2].get("If-None-Match") == '"x1"'
    assert back["status"] == 304 and back["ok"] is True
