"""The engine: one record per line under concurrency, streaming, bounded read-ahead, order, stop."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fetchpool import Options, fetch, run
from fetchpool.inputs import Target, parse
from fetchpool.pool import Run
from fetchpool.pool.scheduler import WAIT
from fetchpool.result import ErrorKind


def test_one_record_per_line_at_concurrency_64(server) -> None:
    kinds = ["/ok", "/status/404", "/redirect/2", "/bytes/2000", "/status/500"]
    lines = []
    for i in range(1000):
        lines.append(server.url(f"{kinds[i % 5]}?i={i}") if i % 50 else "not a url at all ::")
    lines[10:10] = ["# comment", ""]
    results = list(fetch(lines, Options(concurrency=64)))
    assert len(results) == 1000
    numbers = sorted(r.line for r in results)
    expected = sorted(n for n, text in enumerate(lines, 1) if text and not text.startswith("#"))
    assert numbers == expected
    assert sum(r.error is ErrorKind.INVALID_URL for r in results) == 20
    assert sum(r.status == 404 for r in results) == 200  # invalid lines replace only /ok ones


class Counting:
    """An input that records how far the engine has read it."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.consumed = 0

    def __iter__(self) -> Iterator[Target]:
        for n, url in enumerate(self.urls, 1):
            self.consumed += 1
            yield Target(url, n)


def test_read_ahead_is_bounded_by_the_window(server) -> None:
    options = Options(concurrency=4)
    source = Counting([server.url(f"/delay/20?i={i}") for i in range(200)])
    seen = 0
    for _ in run(source, options):
        seen += 1
        assert source.consumed <= seen + options.window + 1, (seen, source.consumed)
    assert seen == 200 and source.consumed == 200


def test_memory_window_is_a_small_multiple_of_concurrency() -> None:
    assert Options(concurrency=16).window == 32


def test_first_record_arrives_before_the_input_ends(server) -> None:
    first_seen = threading.Event()
    waited: list[bool] = []

    def slow_input() -> Iterator[str]:
        yield server.url("/ok?first")
        waited.append(first_seen.wait(timeout=10))  # the input ends only after a record came out
        yield server.url("/ok?second")

    got = []
    for result in fetch(slow_input(), Options(concurrency=2)):
        got.append(result)
        first_seen.set()
    assert waited == [True] and len(got) == 2


def test_ordered_gives_input_order(server) -> None:
    urls = [server.url(f"/delay/{d}?n={n}") for n, d in enumerate([300, 10, 200, 10, 100, 10])]
    ordered = [r.line for r in fetch(urls, Options(concurrency=6, ordered=True))]
    assert ordered == [1, 2, 3, 4, 5, 6]
    unordered = [r.line for r in fetch(urls, Options(concurrency=6))]
    assert sorted(unordered) == [1, 2, 3, 4, 5, 6] and unordered[0] in (2, 4, 6)


def test_ordered_reorder_buffer_is_bounded(server) -> None:
    options = Options(concurrency=4, ordered=True)
    urls = [server.url("/delay/400?slow")] + [server.url(f"/ok?i={i}") for i in range(100)]
    source = Counting(urls)
    for result in run(source, options):
        assert source.consumed <= result.line + options.window + 1
        break  # the slow head comes first; nothing ran away while it was pending
    assert source.consumed <= options.window + 2


def test_stop_ends_the_run_promptly_and_keeps_finished_records(server) -> None:
    items = parse([server.url("/ok?quick")] + [server.url(f"/delay/10000?i={i}") for i in range(8)])
    fetching = run(items, Options(concurrency=4, timeout=30))
    start = time.monotonic()
    got = []
    for result in fetching:
        got.append(result)
        fetching.stop()
    assert time.monotonic() - start < 5  # waiting for the fetches in flight would take 10 s
    assert [r.url for r in got] == [server.url("/ok?quick")]


def test_invalid_lines_do_not_use_a_worker() -> None:
    results = list(fetch(["ftp://x.test/", "http://[::1"], Options(concurrency=1)))
    assert sorted(r.error.value for r in results if r.error) == ["invalid_url", "unsupported_scheme"]


def test_library_imports_neither_click_nor_rich(server) -> None:
    code = (
        "import sys, fetchpool\n"
        f"rs = list(fetchpool.fetch(['{server.url('/ok')}']))\n"
        "assert rs[0].ok, rs\n"
        "assert 'click' not in sys.modules and 'rich' not in sys.modules, 'UI import in core'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


def test_a_process_pool_backend_gives_the_same_records(server) -> None:
    """The fan-out only needs the Pool API: `multiprocessing.Pool` can stand in for threads."""
    import multiprocessing

    def processes(n, initializer, initargs):
        return multiprocessing.get_context("spawn").Pool(2, initializer=initializer, initargs=initargs)

    urls = [server.url(f"/status/{code}?p") for code in (200, 404, 500)] + ["ftp://x.test/"]
    items = parse(urls)
    got = sorted((r.line, r.status, r.error) for r in run(items, Options(concurrency=2, retries=0), processes))
    assert got == [(1, 200, None), (2, 404, None), (3, 500, None), (4, None, ErrorKind.UNSUPPORTED_SCHEME)]


class _Silent:
    """An engine that takes jobs and never answers: every URL stays in flight."""

    def start(self, deliver: object, stopped: object = None) -> None:
        pass

    def submit(self, jobs: object) -> None:
        pass

    def shutdown(self, now: bool = False) -> None:
        pass


class _Stuck(Exception):
    pass


def _asleep_in(name: str, thread: threading.Thread) -> bool:
    """`thread` sleeps (in a system call) with `name` its innermost Python function."""
    stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
    frame = sys._current_frames().get(thread.ident or 0)
    return stat.rsplit(")", 1)[1].split()[0] == "S" and frame is not None and frame.f_code.co_name == name


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads thread states from /proc")
def test_a_stop_from_a_signal_handler_ends_a_run_waiting_for_results() -> None:
    """Ctrl-C's handler runs inside the caller's wait for results. One that outlasts that
    wait's timeout (a loaded machine) left the wait with no deadline (Python before 3.13),
    and after a stop no result comes: the run never ended."""
    fetching = Run(parse(["http://127.0.0.1:9/never"]), Options(), _Silent())
    main = threading.main_thread()
    assert threading.current_thread() is main, "signal handlers run on the main thread only"

    stopped = threading.Event()

    def stop(signum: int, frame: object) -> None:
        fetching.stop()
        stopped.set()
        time.sleep(2 * WAIT)  # longer than what the interrupted wait had left

    def stuck(signum: int, frame: object) -> None:
        raise _Stuck

    def interrupt() -> None:
        """SIGUSR1 to the main thread once it waits for a result (so the wait is what it interrupts)."""
        end = time.monotonic() + 15
        while not _asleep_in("_collect", main):
            if time.monotonic() > end:
                signal.pthread_kill(main.ident or 0, signal.SIGUSR2)
                return
            time.sleep(0.001)
        signal.pthread_kill(main.ident or 0, signal.SIGUSR1)
        rescue.start()

    rescue = threading.Timer(20, signal.pthread_kill, (main.ident, signal.SIGUSR2))
    previous = signal.signal(signal.SIGUSR1, stop), signal.signal(signal.SIGUSR2, stuck)
    try:
        threading.Thread(target=interrupt, daemon=True).start()
        results = list(fetching)
    except _Stuck:
        pytest.fail("the run did not end after its stop" if stopped.is_set() else "it never waited for a result")
    finally:
        rescue.cancel()
        signal.signal(signal.SIGUSR1, previous[0])
        signal.signal(signal.SIGUSR2, previous[1])
    assert results == []
