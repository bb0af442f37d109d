"""Every engine gives the same records for the same input, and survives the same faults.

The scheduler is shared, so per-host limits, retries with Retry-After, order and invalid
lines must come out identical (timings aside) whether URLs are fetched on threads in this
process or by worker processes. The signal and pipe tests run the CLI on processes.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import group, spawn_cli

from fetchpool import Options, fetch, run
from fetchpool.inputs import Target
from fetchpool.pool import PoolEngine
from fetchpool.result import ErrorKind, Result

from conftest import cli_env
from faultserver import FaultServer, serving
from servers import TestServer, running

ENGINES = ["threads", "processes"]
WITH_RAY = [*ENGINES, pytest.param("ray", marks=pytest.mark.ray)]  # each ray run starts a local Ray: seconds
TIMINGS = ("elapsed_ms", "ttfb_ms")
REFUSED = FaultServer.refused_port()


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    with serving() as server:
        yield server


def options(engine: str, **kw: Any) -> Options:
    if engine == "ray":
        pytest.importorskip("ray", reason="the ray extra is not installed")
    base: dict[str, Any] = dict(engine=engine, processes=2, concurrency=8, timeout=2.0, retries=1, backoff=0.01)
    base["retry_on"] = frozenset({"503", "protocol"})
    base.update(kw)
    return Options(**base)


def comparable(results: list[Any], tag: str) -> list[dict[str, Any]]:
    """Records without timings, in line order, with the run's tag taken out of URLs."""
    out = []
    for result in sorted(results, key=lambda r: r.line):
        record = {k: v for k, v in result.to_dict().items() if k not in TIMINGS}
        if record["error"] == "timeout":
            del record["bytes"]  # how much dripped in before the deadline is a timing too
        out.append(json.loads(json.dumps(record).replace(tag, "TAG")))
    return out


def mixed_lines(server: TestServer, faults: FaultServer, tag: str) -> list[str]:
    """Each URL a flaky endpoint counts carries `tag`, so every run meets fresh counters."""
    return [
        server.url("/ok"),
        server.url("/status/404"),
        server.url("/redirect/2"),
        server.url("/bytes/5000"),
        server.url(f"/flaky?key=after-{tag}&fail=1&after=1"),  # 503 + Retry-After: 1, then 200
        server.url(f"/flaky?key=backoff-{tag}&fail=1"),  # 503, retried after the backoff
        server.url(f"/flaky?key=twice-{tag}&fail=2"),  # 503 twice: gives up after one retry
        faults.url("/close"),
        faults.url("/reset"),
        faults.url("/garbage"),
        faults.url("/reset-body"),
        faults.url("/short-body"),
        faults.url("/bad-chunk"),
        faults.url("/huge-length"),
        faults.url("/drip-body"),
        faults.url("/loop"),
        faults.url("/to?url=file:///etc/passwd"),
        f"http://127.0.0.1:{REFUSED}/",
        "http://x.invalid/",
        "http://[::1",
        "ftp://127.0.0.1/",
        "",
        "# a comment",
        "not a url at all ::",
    ]


@pytest.fixture(scope="module")
def on_threads(server: TestServer, faults: FaultServer) -> list[dict[str, Any]]:
    lines = mixed_lines(server, faults, "tag-base")
    return comparable(list(fetch(lines, options("threads", max_bytes=100_000, max_redirects=3))), "tag-base")


@pytest.mark.slow
@pytest.mark.parametrize("engine", WITH_RAY)
def test_every_engine_gives_the_same_records(server, faults, on_threads, engine: str) -> None:
    lines = mixed_lines(server, faults, f"tag-{engine}")
    got = comparable(list(fetch(lines, options(engine, max_bytes=100_000, max_redirects=3))), f"tag-{engine}")
    assert got == on_threads
    by_url = {r["url"]: r for r in got}
    assert by_url[server.url("/flaky?key=after-TAG&fail=1&after=1")]["attempts"] == 2
    assert by_url[server.url("/flaky?key=twice-TAG&fail=2")]["status"] == 503
    assert by_url[faults.url("/drip-body")]["error"] == "timeout"
    assert len(got) == len([line for line in lines if line and not line.startswith("#")])


@pytest.mark.parametrize("engine", ENGINES)
def test_per_host_limit_holds_on_every_engine(engine: str) -> None:
    with running(TestServer()) as srv:
        urls = [srv.url(f"/conc?ms=50&i={i}") for i in range(24)]
        results = list(fetch(urls, options(engine, per_host=2, concurrency=8)))
        assert all(r.ok for r in results) and len(results) == 24
        assert srv.peak == {f"127.0.0.1:{srv.server_address[1]}": 2}


@pytest.mark.parametrize("engine", ENGINES)
def test_concurrency_is_the_whole_runs_in_flight(engine: str) -> None:
    """`-c 5` over 2 processes: 3 threads each, but never more than 5 requests at once."""
    with running(TestServer()) as srv:
        urls = [srv.url(f"/conc?ms=100&i={i}") for i in range(30)]
        results = list(fetch(urls, options(engine, concurrency=5)))
        assert all(r.ok for r in results)
        assert srv.peak_total == 5


@pytest.mark.parametrize("engine", ENGINES)
def test_ordered_gives_input_order_on_every_engine(server, engine: str) -> None:
    urls = [server.url(f"/delay/{d}?n={n}") for n, d in enumerate([300, 10, 200, 10, 100, 10, 0, 50])]
    lines = [r.line for r in fetch(urls, options(engine, ordered=True))]
    assert lines == list(range(1, 9))


@pytest.mark.parametrize("engine", WITH_RAY)
def test_an_exception_inside_a_worker_is_an_internal_record(server, engine: str) -> None:
    items = [Target(server.url("/ok"), 1), Target(None, 2), Target(server.url("/ok?b"), 3)]  # type: ignore[arg-type]
    results = sorted(run(items, options(engine)), key=lambda r: r.line)
    assert [r.line for r in results] == [1, 2, 3]
    assert results[0].ok and results[2].ok
    assert results[1].error is ErrorKind.INTERNAL and "AttributeError" in (results[1].error_message or "")


def test_an_exception_inside_a_worker_is_timed_from_the_first_attempt() -> None:
    """Like any record, an `internal` one counts from the URL's first attempt (a retry's
    started two seconds ago here), not 0."""
    from fetchpool.client import Client
    from fetchpool.pool import worker

    client = Client(Options())
    try:
        broken = Target(None, 1)  # type: ignore[arg-type]
        outcome = worker.work((0, broken, 2, time.monotonic() - 2.0), client)
    finally:
        client.close()
    assert isinstance(outcome, Result) and outcome.error is ErrorKind.INTERNAL
    assert outcome.attempts == 2 and outcome.elapsed_ms >= 2000


def _children(parent: int) -> list[int]:
    """Worker processes of `parent` (multiprocessing's spawned children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def test_a_worker_killed_by_kill_9_gives_internal_records_for_what_it_held(server) -> None:
    before = set(_children(os.getpid()))
    # -c 8 over 2 workers: each holds two slow URLs and two fast ones at first, so the slow ones are
    # still held long after the first fast record is out, however loaded the machine
    urls = [server.url(f"/delay/6000?slow={i}") for i in range(4)] + [server.url(f"/ok?after={i}") for i in range(20)]
    fetching = run(
        (Target(u, n) for n, u in enumerate(urls, 1)), options("processes", concurrency=8, retries=0, timeout=30)
    )
    results = []
    killed = None
    for result in fetching:
        results.append(result)
        if killed is None:
            workers = sorted(set(_children(os.getpid())) - before)
            assert len(workers) == 2, workers
            killed = workers[0]
            os.kill(killed, signal.SIGKILL)
    assert sorted(r.line for r in results) == list(range(1, 25))
    lost = [r for r in results if r.error is ErrorKind.INTERNAL]
    assert lost and all(f"worker process {killed} ended" in (r.error_message or "") for r in lost)
    assert all(r.ok for r in results if r.error is None)
    end = time.monotonic() + 10
    while set(_children(os.getpid())) - before:  # the run's end stops every worker, the new one too
        assert time.monotonic() < end, _children(os.getpid())
        time.sleep(0.05)


class _StartedOnce:
    """A Pool that starts its processes once and replaces none that dies, as Ray's Pool does."""

    def __init__(self, processes: int, initializer: Any, initargs: tuple[Any, ...]) -> None:
        import multiprocessing

        spawn = multiprocessing.get_context("spawn")
        self.procs = [spawn.Process(target=initializer, args=initargs, daemon=True) for _ in range(processes)]
        for proc in self.procs:
            proc.start()

    def terminate(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.join()


def test_when_every_worker_of_a_pool_that_does_not_replace_them_died_what_waits_fails_at_once(server) -> None:
    """Ray does not restart the Pool's actors: once none is left, a URL is an `internal` record
    now, not after START_TIMEOUT of waiting for a replacement that never comes."""
    import queue

    from fetchpool.pool import engines

    engine = PoolEngine(options("processes", concurrency=2), _StartedOnce, respawns=False)
    done: queue.SimpleQueue[Any] = queue.SimpleQueue()
    try:
        engine.start(lambda seq, outcome: done.put((seq, outcome)))
        for child in list(engine._children):
            os.kill(child.pid, signal.SIGKILL)
        _wait_for(lambda: engine._orphaned, "the engine to see that no worker is left")
        engine.submit([(7, Target(server.url("/ok"), 1), 1, None)])
        seq, outcome = done.get(timeout=engines.START_TIMEOUT / 2)
    finally:
        engine.shutdown(now=True)
    assert (seq, outcome.error) == (7, ErrorKind.INTERNAL)
    assert outcome.error_message == "no worker process left to fetch this URL"


def test_the_urls_a_killed_worker_held_are_timed_from_when_they_were_sent() -> None:
    """A worker killed while it holds hanging URLs: their `internal` records count the time
    from when they were sent to when the death was noticed, as any record counts its time."""
    before = set(_children(os.getpid()))
    with running(TestServer()) as srv:
        urls = [srv.url(f"/delay/60000?hang={i}") for i in range(4)]
        begun = time.monotonic()
        fetching = run((Target(u, n) for n, u in enumerate(urls, 1)), options("processes", concurrency=4, timeout=90))
        failed: list[str] = []
        killer = threading.Thread(target=_kill_a_worker_when_held, args=(srv, len(urls), before, fetching, failed))
        killer.start()
        lost: list[Any] = []
        try:
            for batch in fetching.batches():
                lost += batch
                if len(lost) >= 2:  # the killed worker's two; the other's hang on
                    break
        finally:
            fetching.close()
            killer.join()
        took_ms = (time.monotonic() - begun) * 1000
    assert not failed, failed
    assert [r.error for r in lost] == [ErrorKind.INTERNAL] * 2
    assert all(500 <= r.elapsed_ms <= took_ms for r in lost), [r.elapsed_ms for r in lost]


def _kill_a_worker_when_held(srv: TestServer, held: int, before: set[int], fetching: Any, failed: list[str]) -> None:
    """Once the server holds `held` requests, let half a second pass (the least age of the
    URLs held), then kill -9 one worker. A failure stops the run, so the test cannot hang."""
    end = time.monotonic() + 30
    while len(srv.seen) < held:
        if time.monotonic() > end:
            failed.append(f"the server saw {len(srv.seen)} of {held} requests")
            return fetching.stop()
        time.sleep(0.01)
    time.sleep(0.5)
    workers = sorted(set(_children(os.getpid())) - before)
    if len(workers) != 2:
        failed.append(f"workers: {workers}")
        return fetching.stop()
    os.kill(workers[0], signal.SIGKILL)


def test_a_lost_url_is_timed_from_its_first_attempt() -> None:
    """A retry's record counts from the first attempt; so does its `internal` record."""
    engine = PoolEngine(options("processes"))
    now = time.monotonic()
    result = engine._lost((0, Target("http://127.0.0.1:9/", 1), 2, now - 5.0), now - 1.0, "gone")
    assert result.error is ErrorKind.INTERNAL and result.attempts == 2
    assert result.elapsed_ms >= 5000
    first = engine._lost((0, Target("http://127.0.0.1:9/", 1), 1, None), now - 1.0, "gone")
    assert 1000 <= first.elapsed_ms < 5000


class _Cluster:
    """A cluster that says where its workers connect and how many to run."""

    def __init__(self, host: str, processes: int) -> None:
        self.host, self.size = host, processes
        self.asked: list[int] = []
        self.left = 0

    def join(self, processes: int) -> tuple[str, int]:
        self.asked.append(processes)
        return self.host, self.size

    def leave(self) -> None:
        self.left += 1


def worker_environ() -> dict[str, str]:
    from fetchpool.pool.worker import fetch_environ

    return fetch_environ()


def test_a_clusters_workers_connect_where_it_says_and_share_c_among_as_many_as_it_runs() -> None:
    """Joined before the Pool starts: its address for the listener, its count for `-c`'s share;
    a Pool that cannot start leaves the cluster once."""
    cluster, started = _Cluster("127.0.0.1", 3), []

    def factory(processes: int, initializer: Any, initargs: tuple[Any, ...]) -> Any:
        started.append((processes, initargs))
        raise RuntimeError("no Pool here")

    engine = PoolEngine(Options(engine="ray", ray_address="auto", concurrency=8), factory, cluster=cluster)
    with pytest.raises(RuntimeError, match="no Pool here"):
        engine.start(lambda seq, outcome: None)
    engine.shutdown(now=True)
    assert cluster.asked == [0]  # a join without --processes: the cluster's choice
    ((processes, (_, address, _, threads, block, environ)),) = started
    assert (processes, threads, block) == (3, 3, False)  # ceil(8 / 3) threads each, serving on a thread
    assert address[0] == "127.0.0.1" and address[1] > 0
    assert environ == worker_environ()  # the run's proxies and CA bundle go to workers on other machines
    assert cluster.left == 1


def test_a_connection_that_never_proves_itself_holds_up_no_worker(server) -> None:
    """A cluster's listener is reachable from other machines: something that connects first
    and says nothing (a port scan) must not keep the run's workers out."""
    import queue
    import socket

    from fetchpool.pool.spawn import process_pool

    strangers: list[socket.socket] = []

    def factory(processes: int, initializer: Any, initargs: tuple[Any, ...]) -> Any:
        stranger = socket.socket(socket.AF_UNIX)
        stranger.connect(initargs[1])
        strangers.append(stranger)
        return process_pool(processes, initializer, initargs)

    engine = PoolEngine(options("processes", concurrency=2), factory)
    done: queue.SimpleQueue[Any] = queue.SimpleQueue()
    try:
        engine.start(lambda seq, outcome: done.put((seq, outcome)))
        engine.submit([(7, Target(server.url("/ok"), 1), 1, None)])
        seq, outcome = done.get(timeout=60)
    finally:
        engine.shutdown(now=True)
        for stranger in strangers:
            stranger.close()
    assert seq == 7 and outcome.ok and outcome.status == 200


class _Conn:
    """A worker's connection whose next message cannot be read."""

    def __init__(self, exc: BaseException) -> None:
        self.exc, self.closed = exc, False

    def recv(self) -> Any:
        raise self.exc

    def close(self) -> None:
        self.closed = True


def _held_by(conn: _Conn, closing: bool) -> list[Any]:
    """What a receiver delivers for a URL its worker held when `conn` fails."""
    from fetchpool.pool.engines import _Child

    got: list[Any] = []
    engine = PoolEngine(options("processes"))
    engine._deliver = lambda seq, outcome: got.append((seq, outcome))
    engine._closing = closing
    engine._orphaned = True  # no replacement to wait for in a test
    child = _Child(conn, 4242)
    child.held[3] = ((3, Target("http://127.0.0.1:9/", 1), 1, None), time.monotonic())
    engine._children.append(child)
    engine._receive(child)
    assert conn.closed and not engine._children
    return got


def test_a_message_a_worker_sent_that_cannot_be_read_is_a_record_not_a_traceback() -> None:
    """A worker of another fetchpool version, say: its URLs get `internal` records that say so."""
    got = _held_by(_Conn(pickle.UnpicklingError("invalid load key, 'x'")), closing=False)
    assert [(seq, outcome.error) for seq, outcome in got] == [(3, ErrorKind.INTERNAL)]
    assert "cannot read what worker process 4242 sent: UnpicklingError" in got[0][1].error_message


def test_a_worker_that_ends_during_a_shutdown_gives_no_records() -> None:
    """A stop abandons what workers held (the summary counts it as not fetched)."""
    assert _held_by(_Conn(EOFError()), closing=True) == []


def test_a_shutdown_hangs_up_connections_still_answering_the_key(server) -> None:
    """Strangers' connections end with the run: no thread or descriptor of theirs stays."""
    import socket

    from fetchpool.pool.spawn import process_pool

    strangers: list[socket.socket] = []

    def factory(processes: int, initializer: Any, initargs: tuple[Any, ...]) -> Any:
        for _ in range(3):
            stranger = socket.socket(socket.AF_UNIX)
            stranger.connect(initargs[1])
            strangers.append(stranger)
        return process_pool(processes, initializer, initargs)

    engine = PoolEngine(options("processes", concurrency=2), factory)
    try:
        engine.start(lambda seq, outcome: None)
        _wait_for(lambda: len(engine._pending) == 3, "3 strangers pending")
    finally:
        engine.shutdown(now=True)
    for stranger in strangers:
        stranger.settimeout(30)  # hung up: the challenge's bytes, then EOF (else recv times out)
        while stranger.recv(4096):
            pass
        stranger.close()
    _wait_for(lambda: not [t for t in threading.enumerate() if t.name == "fetchpool-admit"], "admit threads gone")


def _wait_for(predicate: Any, what: str, within: float = 30) -> None:
    end = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < end, f"still waiting for {what}"
        time.sleep(0.02)


def test_a_worker_takes_the_runs_proxy_and_ca_settings_in_place_of_its_own(monkeypatch) -> None:
    from fetchpool.pool import worker

    monkeypatch.setenv("https_proxy", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/run/ca.pem")
    monkeypatch.setenv("PATH_OF_NO_INTEREST", "kept")
    run = worker.fetch_environ()
    assert run == {"https_proxy": "http://127.0.0.1:3128", "NO_PROXY": "127.0.0.1", "REQUESTS_CA_BUNDLE": "/run/ca.pem"}
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:8080")  # the worker's machine's own
    monkeypatch.delenv("https_proxy")
    worker.adopt_environ(run)
    assert worker.fetch_environ() == run and os.environ["PATH_OF_NO_INTEREST"] == "kept"


def test_a_fetching_process_hands_the_gil_between_threads_less_often() -> None:
    """Hundreds of threads waiting for the GIL each wake every switch interval to ask for it;
    a worker process (and the CLI's own) lengthens it (the benchmark shows the CPU it saves)."""
    code = (
        "import sys; from fetchpool import Options; from fetchpool.pool.worker import setup_process; "
        "before = sys.getswitchinterval(); setup_process(Options()); print(before, sys.getswitchinterval())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    from fetchpool.pool.worker import SWITCH_INTERVAL

    assert [float(x) for x in out.stdout.split()] == pytest.approx([0.005, SWITCH_INTERVAL])  # kept in µs
    assert SWITCH_INTERVAL > 0.005


def test_a_cli_run_inside_a_callers_process_gives_back_its_switch_interval(server, monkeypatch) -> None:
    import io

    from click.testing import CliRunner

    from fetchpool.cli import Environment, main
    from fetchpool.output.stats import Stats
    from fetchpool.pool.worker import SWITCH_INTERVAL

    during: list[float] = []
    add = Stats.add
    monkeypatch.setattr(Stats, "add", lambda self, result: (during.append(sys.getswitchinterval()), add(self, result)))
    before = sys.getswitchinterval()
    env = Environment(stdin=io.BytesIO(b""))
    result = CliRunner().invoke(main, ["--json", server.url("/ok")], obj=env, catch_exceptions=False)
    assert result.exit_code == 0 and during == pytest.approx([SWITCH_INTERVAL])
    assert sys.getswitchinterval() == before != SWITCH_INTERVAL


def test_processes_default_to_one_per_cpu_except_on_a_joined_cluster() -> None:
    cpus = len(os.sched_getaffinity(0))  # this process's CPUs (a container's), as fetchpool counts them
    assert Options(engine="ray").processes == Options(engine="processes").processes == cpus
    assert Options(engine="ray", ray_address="auto").processes == 0  # its free CPUs, known once joined
    assert Options(engine="ray", ray_address="auto", processes=3).processes == 3


# -- the CLI on processes: signals, pipes, nothing left behind ------------------------------------


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    """The CLI in its own process group, as a shell job is, so the group can be listed."""
    return spawn_cli("--engine", "processes", "--processes", "2", *args, env=cli_env())


def _assert_group_empties(pgid: int) -> None:
    """Every process the run started was reaped by it before it exited (none left to init)."""
    assert group(pgid) == [], f"left behind: {group(pgid)}"


def _slow_input(server, tmp_path: Path) -> Path:
    path = tmp_path / "slow.txt"
    path.write_text(server.url("/ok?fast") + "\n" + "".join(server.url(f"/delay/8000?i={i}") + "\n" for i in range(8)))
    return path


@pytest.mark.parametrize(
    ("sig", "code", "to_group"), [(signal.SIGINT, 130, True), (signal.SIGTERM, 143, False)], ids=["ctrl-c", "sigterm"]
)
def test_a_signal_stops_workers_and_leaves_no_process(server, tmp_path, sig: int, code: int, to_group: bool) -> None:
    proc = _spawn("-c", "4", "-t", "30", str(_slow_input(server, tmp_path)))
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert json.loads(first)["url"] == server.url("/ok?fast")
    start = time.monotonic()
    if to_group:
        os.killpg(proc.pid, sig)  # a terminal's Ctrl-C reaches the whole job
    else:
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=10)
    took = time.monotonic() - start
    assert proc.returncode == code, err.decode()
    assert took < 5.0, took  # a stop, not the 8 s the URLs in flight would take (it is ~0.1 s unloaded)
    assert out == b"" and b"Traceback" not in err and b"leaked" not in err, err.decode()
    _assert_group_empties(proc.pid)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_stop_ends_a_run_whose_reader_stopped_reading(server, tmp_path, engine: str) -> None:
    """`fetchpool | stuck-consumer` under `timeout` or systemd: one SIGTERM is enough, though
    the records that finished can never be written."""
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(server.url(f"/ok?i={i}") + "\n" for i in range(3000)))  # far more than a pipe holds
    proc = spawn_cli("--engine", engine, "-c", "8", str(urls), env=cli_env())  # stdout: a pipe nobody reads
    wchan = Path(f"/proc/{proc.pid}/wchan")
    _wait_for(lambda: "pipe" in wchan.read_text(), "the run to block on its full stdout", within=60)
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=30)  # well past the promised second; it waited for the reader for good
    finally:
        proc.kill()
    assert code == 143
    assert proc.stderr is not None and b"Traceback" not in proc.stderr.read()
    _assert_group_empties(proc.pid)


def test_head_one_exits_141_quietly_on_processes(server, tmp_path) -> None:
    path = tmp_path / "many.txt"
    path.write_text("".join(server.url(f"/ok?i={i}") + "\n" for i in range(3000)))
    cmd = f"{sys.executable} -m fetchpool --engine processes --processes 2 {path} | head -1; exit ${{PIPESTATUS[0]}}"
    proc = subprocess.Popen(
        ["bash", "-c", cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(), start_new_session=True
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 141 and err == b"", err.decode()
    assert len(out.splitlines()) == 1
    _assert_group_empties(proc.pid)


def test_records_stream_while_a_slow_url_is_in_flight(server, tmp_path) -> None:
    """A finished record is written at once, not when the slowest URL of some batch ends."""
    path = tmp_path / "mixed.txt"
    slow = [server.url(f"/delay/20000?slow={i}") for i in range(2)]
    fast = [server.url(f"/ok?fast={i}") for i in range(20)]
    path.write_text("\n".join(slow + fast) + "\n")
    proc = _spawn("-c", "4", "-t", "30", str(path))
    assert proc.stdout is not None
    try:
        got = [json.loads(proc.stdout.readline()) for _ in range(20)]
        assert sorted(r["url"] for r in got) == sorted(fast)  # all 20 while both slow URLs still run
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=10)
    _assert_group_empties(proc.pid)
