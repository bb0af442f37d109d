"""The state file: rows between runs, change detection, crash safety, overlapping runs, misuse."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fetchpool.state import SCHEMA_VERSION, State, StateBusy, StateError, observe


def test_rows_survive_between_runs_and_changes_are_seen(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    with State(path) as state:
        row, changed = observe("GET http://127.0.0.1/a", None, status=200, ok=True, error=None, sha256="h1", now=1.0)
        assert changed is None  # first run: nothing to compare with
        state.store([row])
    with State(path) as state:
        prev = state.lookup(["GET http://127.0.0.1/a", "GET http://127.0.0.1/absent"])
        assert list(prev) == ["GET http://127.0.0.1/a"]
        same, changed = observe(
            "GET http://127.0.0.1/a",
            prev["GET http://127.0.0.1/a"],
            status=200,
            ok=True,
            error=None,
            sha256="h1",
            now=2.0,
        )
        assert changed is False and same.changed_at == 1.0 and same.checked_at == 2.0
        broken, changed = observe(
            "GET http://127.0.0.1/a", same, status=500, ok=False, error=None, sha256="h2", now=3.0
        )
        assert changed is True and broken.fails_in_a_row == 1 and broken.changed_at == 3.0
        again, changed = observe(
            "GET http://127.0.0.1/a", broken, status=500, ok=False, error=None, sha256="h2", now=4.0
        )
        assert changed is False and again.fails_in_a_row == 2
        state.store([again])
    with State(path) as state:
        assert state.lookup(["GET http://127.0.0.1/a"])["GET http://127.0.0.1/a"].fails_in_a_row == 2


def test_a_304_keeps_the_stored_hash_and_is_not_a_change() -> None:
    prev, _ = observe("k", None, status=200, ok=True, error=None, etag='"v1"', sha256="h", now=1.0)
    row, changed = observe("k", prev, status=304, ok=True, error=None, not_modified=True, now=2.0)
    assert changed is False and row.status == 200 and row.sha256 == "h" and row.etag == '"v1"'


def test_lookup_batches_many_keys(tmp_path: Path) -> None:
    with State(str(tmp_path / "s.db")) as state:
        rows = [observe(f"k{i}", None, status=200, ok=True, error=None)[0] for i in range(2500)]
        state.store(rows)
        assert len(state.lookup([f"k{i}" for i in range(0, 2500, 2)])) == 1250
        assert state.count() == 2500


def test_a_file_that_is_not_ours_is_refused_and_left_alone(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a database, " * 100)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)")
    files = sorted(tmp_path.iterdir())
    for path in (text, other):
        before = path.read_bytes()
        with pytest.raises(StateError, match="not a fetchpool state database"):
            State(str(path))
        assert path.read_bytes() == before
    assert sorted(tmp_path.iterdir()) == files  # no lock file left beside them either


def test_a_state_file_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    State(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(StateError, match="newer fetchpool"):
        State(path)


def test_a_second_run_waits_then_gives_up_while_the_first_holds_the_file(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    with State(path):
        with pytest.raises(StateBusy, match="another fetchpool run"):
            State(path, wait=0.2)
    State(path, wait=0.2).close()  # free again once the first run ended


_WRITER = textwrap.dedent(
    """
    import sys
    from fetchpool.state import State, observe
    path = sys.argv[1]
    with State(path) as state:
        print("ready", flush=True)
        n = 0
        while True:  # batches of 200 rows, all carrying the batch number
            n += 1
            state.store([observe(f"k{i}", None, status=200, ok=True, error=None, sha256=str(n))[0] for i in range(200)])
    """
)


@pytest.mark.slow
def test_kill_9_at_any_moment_never_corrupts_the_state(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    for round_ in range(12):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, path], stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        time.sleep(0.01 * (round_ % 6))  # vary the moment of the kill; not a wait for anything
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        batches = {row[0] for row in db.execute("SELECT sha256 FROM urls")}
        db.close()
        assert len(batches) <= 1  # a batch is one transaction: it landed whole, or not at all
        with State(path, wait=5) as state:  # and the next run opens it normally
            assert state.count() in (0, 200)


def test_a_304_after_a_failure_is_not_taken_as_the_failure_again() -> None:
    failed, _ = observe("k", None, status=500, ok=False, error=None, etag='"e"', now=1.0)
    row, changed = observe("k", failed, status=304, ok=True, error=None, not_modified=True, now=2.0)
    assert (row.status, row.ok, row.fails_in_a_row, changed) == (304, True, 0, True)


def test_a_state_that_cannot_be_opened_says_so(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="cannot create its lock file"):
        State(str(tmp_path / "missing" / "state.db"), wait=0)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(StateError, match="cannot open it"):
        State(str(folder), wait=0)
