"""The live view: its pieces, its final report, and what a person sees in a real terminal.

The terminal tests run this file as a script (see `drive` at the bottom) inside a private
tmux server, feed it synthetic records and read the screen with `capture-pane`. The script
pauses halfway until the test has looked, so nothing depends on timing.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from rich.console import Console
from rich.text import Text

from fetchpool.inputs import parse, read_lines
from fetchpool.output.live import LiveWriter, count_lines, progress_line
from fetchpool.output.panel import bar, clock, counters, histogram_rows, latency_histogram, summary_panel
from fetchpool.output.stats import LatencyHistogram, Stats
from fetchpool.output.table import human_ms, results_table, shorten
from fetchpool.result import ErrorKind, Result

ROOT = Path(__file__).resolve().parent.parent
RECORDS = 60


def synthetic(count: int) -> Iterator[Result]:
    """Every tenth a timeout, a 404 and a 500; long URLs whose ends matter."""
    for i in range(count):
        url = f"http://127.0.0.1:8080/a/very/long/path/{'x' * 60}/item-{i}?q={i}"
        kind = i % 10
        if kind == 9:
            yield Result(url, i + 1, elapsed_ms=2000.0, attempts=1, error=ErrorKind.TIMEOUT, error_message="deadline")
            continue
        status = {7: 404, 8: 500}.get(kind, 200)
        yield Result(url, i + 1, status=status, ok=status < 400, elapsed_ms=5.0 + 3 * i, bytes=1000 + i, attempts=1)


def feed(count: int, **kw: object) -> tuple[LiveWriter, Stats, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, width=100, no_color=True)
    stats = Stats()
    writer = LiveWriter(console, stats, count, **kw)  # type: ignore[arg-type]
    for r in synthetic(count):
        stats.add(r)
        writer.write(r)
    writer.close()
    return writer, stats, out


# --- pieces --------------------------------------------------------------------------


def test_shorten_cuts_the_middle_and_keeps_both_ends() -> None:
    url = "https://example.com/" + "a" * 50 + "/index.html?page=2"
    short = shorten(url, 40)
    assert len(short) == 40 and short.count("…") == 1
    assert short.startswith("https://example.com/") and short.endswith("/index.html?page=2")


def test_shorten_leaves_what_fits_or_what_cannot_shrink() -> None:
    assert shorten("http://a.test/", 40) == "http://a.test/"
    assert shorten("http://a.test/x", len("http://a.test/x")) == "http://a.test/x"
    assert shorten("http://a.test/long", 4) == "http://a.test/long"
    assert all(len(shorten("h" * 100, w)) == w for w in range(5, 100))


def test_human_ms_and_clock() -> None:
    assert [human_ms(v) for v in (None, 0.44, 12.4, 999.4, 1234.0, 125_000.0)] == [
        "-",
        "0.4 ms",
        "12 ms",
        "999 ms",
        "1.23 s",
        "2m05s",
    ]
    assert [clock(s) for s in (0, 7.9, 754, 3723)] == ["0:00", "0:07", "12:34", "1:02:03"]
    assert clock(2.314, fine=True) == "2.31 s" and clock(75, fine=True) == "1:15"


def test_bar_draws_eighths_and_never_hides_a_non_empty_bin() -> None:
    assert bar(8, 8, 4) == "████"
    assert bar(1, 8, 4) == "▌"
    assert bar(5, 8, 4) == "██▌"
    assert bar(1, 10_000, 4) == "▏"
    assert bar(0, 8, 4) == ""


def test_latency_histogram_has_a_row_per_bin() -> None:
    assert latency_histogram([]) is None
    table = latency_histogram([(1.0, 2.0, 5), (2.0, 4.0, 0)])
    assert table is not None and table.row_count == 2


KINDS = ("invalid_url", "unsupported_scheme", "dns", "connect", "too_many_redirects", "timeout")


def rendered(renderable: object, width: int, height: int = 25) -> list[str]:
    console = Console(file=io.StringIO(), width=width, height=height, no_color=True)
    console.print(renderable)
    return console.file.getvalue().splitlines()  # type: ignore[attr-defined]


def every_kind() -> list[Result]:
    """A record of every status class and error kind, with long URLs."""
    url = "http://127.0.0.1:8080/some/rather/long/path/to/a/page?with=query&and=more"
    out = [
        Result(f"{url}&s={s}", 1, status=s, ok=s < 400, elapsed_ms=12.0, bytes=10, attempts=1)
        for s in (200, 301, 404, 500)
    ]
    for kind in KINDS:
        out.append(Result(f"{url}&k={kind}", 2, elapsed_ms=3.0, attempts=1, error=ErrorKind(kind), error_message="why"))
    return out


@pytest.mark.parametrize("width", [40, 60, 80, 120, 200])
def test_a_narrow_table_keeps_status_and_url_and_gives_up_size_then_time(width: int) -> None:
    for rows in (every_kind()[:4], every_kind()):
        lines = rendered(results_table(rows, width), width)
        header = lines[0].split()
        assert header[0] == "STATUS" and header[-1] == "URL", lines
        wide_status = max(len(r.error.value if r.error else "200") for r in rows)
        room = width - max(wide_status, 7)
        assert ("SIZE" in header) == (room >= 3 + 7 + 3 + 10 + 3 + 20)  # SIZE goes first...
        assert ("TIME" in header) == (room >= 3 + 7 + 3 + 20)  # ...then TIME, for a URL of 20 cells
        for line, r in zip(lines[2:], rows, strict=True):
            assert len(line) <= width and line.split()[0] == (r.error.value if r.error else str(r.status))
            assert "http://1" in line and r.url[-6:] in line  # both ends of the URL


@pytest.mark.parametrize("width", [16, 24, 32, 40, 50, 60, 80, 100, 200])
@pytest.mark.parametrize("total", [None, 300])
def test_the_progress_line_drops_whole_fields_never_cuts_one(width: int, total: int | None) -> None:
    line = progress_line(Text("⠙"), 120, total, 48.04, 7.5, False, width)
    [text] = rendered(line, width)
    assert len(text.rstrip()) <= width and "…" not in text
    assert ("120/300" if total else "120 done") in text  # what was done, always
    fields = text.split()
    if width >= 80:
        assert "elapsed" in fields and ("ETA" in fields) == bool(total) and "URL/s" in fields
    if width == 40:
        assert "elapsed" not in fields and "48.0/s" in fields and ("0:07<0:03" if total else "0:07") in fields
    assert ("━" in text) == (width >= 50) or 24 < width < 50  # a bar on a wide screen, none on a tiny one
    assert "━" in text or "URL/s" not in fields  # never the words without the bar


def crowded_stats() -> Stats:
    stats = Stats()
    for r in every_kind() * 3:
        stats.add(r)
    stats.add(Result("http://a.test/", 9, status=200, ok=True, elapsed_ms=1234.5, bytes=123_456, attempts=1))
    return stats


def pairs_whole(lines: list[str], stats: Stats) -> None:
    """Every `label count` is on one line, and nothing is cut short."""
    for name, n in stats.counts.items():
        assert any(re.search(rf"(?<!\S){name} {n}(?!\S)", line) for line in lines), (name, lines)
    assert not any("…" in line for line in lines), lines


@pytest.mark.parametrize("width", [24, 40, 60, 80, 120, 200])
def test_counters_and_the_summary_wrap_between_pairs_never_inside_one(width: int) -> None:
    stats = crowded_stats()
    lines = rendered(counters(stats), width)
    assert all(len(line) <= width for line in lines)
    pairs_whole(lines, stats)
    assert (len(lines) == 1) == (width >= 200)  # one line when it fits, else wrapped between pairs
    panel = rendered(summary_panel(stats, width=width), width)
    assert all(len(line) <= width for line in panel)
    inside = [line.strip("│ ") for line in panel[1:-1]]
    pairs_whole(inside, stats)
    for pair in (r"7 ok", r"24 failed", r"[\d,.]+ URL/s", r"p50 [\d.]+ ms", r"p99 [\d.]+ s", r"max [\d.]+ s"):
        assert any(re.search(rf"(?<!\S){pair}(?!\S)", line) for line in inside), (pair, panel)
    histogram = [line for line in inside if " – " in line]
    if width >= 40:  # narrower bars, whole labels and counts
        assert len(histogram) == 8 and all(
            re.fullmatch(r"[\d.]+ m?s – [\d.]+ m?s [█▏▎▍▌▋▊▉]*\s+\d+", h) for h in histogram
        )
    else:
        assert histogram == []  # no room for a bar: no histogram rather than cut labels


def test_histogram_never_shows_a_bin_whose_ends_read_the_same() -> None:
    hist = LatencyHistogram()
    for i in range(60):
        hist.add(1500.0 + i * 0.3)  # all within 18 ms of 1.5 s: 8 bins of 2 ms, labelled to 10 ms
    bins = hist.bins(8)
    assert any(human_ms(lo) == human_ms(hi) for lo, hi, _ in bins)  # what used to show as "1.51 s – 1.51 s 0"
    rows = histogram_rows(bins)
    labels = [label for label, _ in rows]
    assert len(labels) == len(set(labels)) and sum(n for _, n in rows) == 60
    assert all(" – " in label and label.split(" – ")[0] != label.split(" – ")[1] for label in labels), labels
    assert histogram_rows([(1.0, 1.02, 4), (1.02, 1.04, 0), (1.04, 2.0, 1)]) == [
        ("1.0 ms – 2.0 ms", 5)
    ]  # first bin too
    assert histogram_rows([(2000.0, 2000.4, 2), (2000.4, 2000.8, 1)]) == [("2.00 s", 3)]  # one value, one row


TRICKY = (
    b"\xef\xbb\xbf# a comment after a BOM\n"
    b"http://a.test/1\n"
    b"\n   \n\t\r\n"
    b"   # indented comment\n"
    b"  b.test/2  \r\n"
    b"\xff\xfe not utf-8\n"
    b"#\n"
    b"javascript:alert(1)\n"
    b"last-without-newline"
)


@pytest.mark.parametrize("chunk", [4, 5, 7, 16, 1 << 20])
def test_count_lines_agrees_with_the_parser(tmp_path: Path, chunk: int) -> None:
    path = tmp_path / "urls.txt"
    path.write_bytes(TRICKY + b"\n" + b"x" * 70_000 + b"\n" + b"  # " + b"y" * 100 + b"\n" + b"  z")
    with open(path, "rb") as f:
        expected = sum(1 for _ in parse(read_lines(f)))
    assert count_lines([str(path), str(path)], chunk_size=chunk) == 2 * expected == 2 * 7


def test_count_lines_never_reads_a_pipe(tmp_path: Path) -> None:
    """`fetchpool <(cmd)` on a terminal: counting must not take the lines the fetch is to read."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert count_lines([str(fifo)]) is None  # opening it would block here, reading it would steal lines


def test_count_lines_of_stdin_or_a_missing_file_is_unknown(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("http://a.test/\n")
    assert count_lines([str(tmp_path / "a")]) == 1
    assert count_lines([str(tmp_path / "a"), "-"]) is None
    assert count_lines([str(tmp_path / "missing")]) is None
    assert count_lines([]) == 0


def test_count_total_sets_the_total_in_the_background(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("http://a.test/\n# c\nhttp://b.test/\n")
    writer = LiveWriter(Console(file=io.StringIO()), Stats())
    writer.count_total([str(tmp_path / "a")]).join(10)
    writer.close()
    assert writer.total == 2


# --- the final report (on a plain stream) ----------------------------------------------


def test_short_run_lists_every_row_then_the_summary_panel() -> None:
    _, _, out = feed(20)
    text = out.getvalue()
    assert "\x1b[" not in text  # no_color, and not a terminal: no escapes at all
    assert text.count("127.0.0.1:8080") == 20 and "item-19?q=19" in text
    assert "20 URLs in" in text and "14 ok  6 failed" in text
    assert "2xx 14  4xx 2  5xx 2  timeout 2" in text
    assert re.search(r"latency\s+p50 \S+ ms\s+p90 .* p99 .* max 2.00 s", text)
    assert "█" in text and "failures" not in text


def test_long_run_shows_latest_failures_and_the_slowest() -> None:
    writer, stats, out = feed(200, failures=5, slowest=3)
    text = out.getvalue()
    assert stats.total == 200 and "200 URLs in" in text
    assert "failures (5 of 60, latest)" in text and "slowest 3" in text
    assert "item-199?q=199" in text  # the latest failure
    assert text.count("127.0.0.1:8080") == 8
    assert writer.total == 200


def test_progress_only_shows_the_bar_and_the_summary_but_no_rows() -> None:
    _, _, out = feed(30, progress_only=True)
    text = out.getvalue()
    assert "✓" in text and "30/30" in text and "100%" in text and "30 URLs in" in text
    assert "127.0.0.1:8080" not in text and "STATUS" not in text


def test_interrupted_and_unknown_total_are_said() -> None:
    out = io.StringIO()
    stats = Stats()
    writer = LiveWriter(Console(file=out, width=100), stats, None, progress_only=True, interrupted=lambda: True)
    stats.add(next(synthetic(1)))
    writer.close()
    writer.close()  # idempotent
    text = out.getvalue()
    assert "✗" in text and "1 done" in text and "interrupted" in text and text.count("1 URL in") == 1


CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def final_report(count: int, width: int, height: int, **kw: object) -> list[str]:
    """The report a terminal of `width` x `height` shows after the live view is erased."""
    out = io.StringIO()
    console = Console(file=out, width=width, height=height, force_terminal=True, force_interactive=False, no_color=True)
    stats = Stats()
    writer = LiveWriter(console, stats, count, **kw)  # type: ignore[arg-type]
    for r in synthetic(count):
        stats.add(r)
        writer.write(r)
    writer.close()
    after_erase = out.getvalue().rsplit("\x1b[2K", 1)[-1]  # the last erase of the live frame's lines
    return CSI.sub("", after_erase).splitlines()


@pytest.mark.parametrize(("width", "height"), [(40, 20), (80, 24), (200, 60)])
@pytest.mark.parametrize("count", [30, 200])
def test_the_final_report_fits_the_screen_failures_first(width: int, height: int, count: int) -> None:
    lines = final_report(count, width, height)
    text = "\n".join(lines)
    assert len(lines) <= height - 1, text  # the prompt after it still shows the summary's top
    assert lines[-1].startswith("╰") and any(line.startswith(f"╭─ {count} URLs in") for line in lines)
    assert all(len(line) <= width for line in lines)
    fits = height >= 60
    assert ("█" in text) == fits  # a compact summary (no histogram) on a short screen
    if fits:
        assert "left out" not in text
        return
    assert re.match(r"failures \(\d+ of \d+, latest\)|\d+ of \d+ rows, failures first", lines[0]), text
    body = lines[3 : next(i for i, line in enumerate(lines) if not line.strip())]  # after title, header and rule
    kinds = [line.split()[0] for line in body]
    assert kinds and kinds[0] != "200" and kinds == sorted(kinds, key=lambda k: k == "200")  # failures first
    shown = sum(1 for line in lines if "http://127" in line)
    full = count if count <= 40 else 20 + 10  # every row of a short run; failures and slowest of a long one
    note = re.search(r"([\d,]+) rows left out to fit the screen;\s+every record: -o FILE or --json", text)
    assert note and int(note.group(1)) == full - shown, text


def test_a_shortened_report_names_the_file_that_has_every_record() -> None:
    text = "\n".join(final_report(200, 80, 24, records_to="out.jsonl"))
    assert re.search(r"\d+ rows left out to fit the screen; the records are in out.jsonl", text), text


def test_a_file_gets_the_whole_report_whatever_its_height() -> None:
    _, _, out = feed(200)  # not a terminal: no screen to fit
    assert "slowest 10" in out.getvalue() and "left out" not in out.getvalue() and "█" in out.getvalue()


def test_an_interrupted_panel_says_how_many_urls_were_not_fetched() -> None:
    out = io.StringIO()
    stats = Stats()
    writer = LiveWriter(Console(file=out, width=60), stats, None, interrupted=lambda: True)
    for r in synthetic(20):
        stats.add(r)
        writer.write(r)
    stats.read = 36
    writer.close()
    text = out.getvalue()
    assert "20 URLs in" in text and "interrupted" in text
    assert re.search(r"16 not fetched \(in flight or queued\)", text), text


def test_the_view_waits_for_typed_input_to_end_before_drawing() -> None:
    out = io.StringIO()
    console = Console(file=out, width=80, height=24, force_terminal=True)
    typed, stats = threading.Event(), Stats()
    writer = LiveWriter(console, stats, None, start_after=typed, refresh_per_second=1000)
    for r in synthetic(3):
        stats.add(r)
        writer.write(r)
    writer.poll()
    assert out.getvalue() == ""  # not even the hidden cursor: nothing drawn over the typing
    typed.set()
    writer.poll()
    wait_until(lambda: "3 done" in out.getvalue(), "the view to start once input is over")
    writer.close()
    assert "3 URLs in" in out.getvalue()


def test_write_never_renders_and_holds_bounded_state() -> None:
    """20,000 records: nothing is drawn between refreshes, memory stays a few dozen rows.

    Prints the main-thread CPU cost per write (not asserted: machines differ).
    """
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, height=40)
    stats = Stats()
    writer = LiveWriter(console, stats, 20_000, refresh_per_second=0.01)  # no refresh during the loop
    records = list(synthetic(100)) * 200
    start = time.thread_time()
    for r in records:
        writer.write(r)
    cost = (time.thread_time() - start) / len(records) * 1e6
    assert out.getvalue() == "\x1b[?25l"  # only the hidden cursor: no frame per record
    assert len(writer._recent) == 30 and len(writer._slow) == 10 and writer._all is None
    assert writer._failed == 6000 and len(writer._failures) == 20
    writer.close()
    print(f"\nLiveWriter.write: {cost:.2f} µs per record (main-thread CPU)")


# --- in a real terminal ------------------------------------------------------------------

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def wait_until(check: Callable[[], object], what: str, timeout: float = 20) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Tmux:
    """A private tmux server (its own socket) running one command in a pane of `size` cells."""

    def __init__(self, tmp: Path, command: str, size: tuple[int, int] = (110, 40)) -> None:
        self.socket = f"fetchpool-test-{os.getpid()}-{tmp.name}"
        self.size = size
        env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TMUX", "COLUMNS", "LINES")}
        env["PYTHONPATH"] = str(ROOT)
        width, height = (str(n) for n in size)
        self._tmux("new-session", "-d", "-s", "t", "-x", width, "-y", height, command, env=env)

    def _tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        cmd = ["tmux", "-L", self.socket, "-f", "/dev/null", *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=10, env=env).stdout

    def screen(self, colours: bool = False) -> str:
        return self._tmux("capture-pane", "-p", "-J", "-S", "-200", *(["-e"] if colours else []), "-t", "t")

    def rows(self) -> list[str]:
        """The pane's rows as shown now (no scrollback), one string per row."""
        return self._tmux("capture-pane", "-p", "-t", "t").split("\n")[: self.size[1]]

    def scrolled_off(self) -> int:
        """How many lines went up into the pane's history: 0 when everything is still on the screen."""
        return int(self._tmux("display-message", "-p", "-t", "t", "#{history_size}").strip())

    def cursor_shown(self) -> bool:
        """False once the program has hidden the cursor, as a live view does while it draws."""
        return self._tmux("display-message", "-p", "-t", "t", "#{cursor_flag}").strip() == "1"

    def type(self, text: str) -> None:
        """Type `text` then Enter, as a person at the keyboard."""
        self._tmux("send-keys", "-t", "t", "-l", text)
        self.keys("Enter")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def wait_for(self, text: str, what: str) -> str:
        """The screen (with scrollback) once it shows `text`."""
        screens: list[str] = []
        wait_until(lambda: screens.append(self.screen()) or text in screens[-1], what)
        return screens[-1]

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


@contextmanager
def run_in_tmux(
    tmp_path: Path, *flags: str, redirect: str = "", size: tuple[int, int] = (110, 40)
) -> Iterator[tuple[Tmux, Path]]:
    markers = tmp_path / "markers"
    markers.mkdir()
    script = " ".join(shlex.quote(a) for a in (sys.executable, __file__, str(markers), *flags))
    tmux = Tmux(tmp_path, f"cd {shlex.quote(str(ROOT))} && {script} {redirect}", size)
    try:
        yield tmux, markers
    finally:
        (markers / "exit").touch()
        tmux.close()


@needs_tmux
def test_a_person_sees_progress_counters_rows_then_the_summary(tmp_path: Path) -> None:
    with run_in_tmux(tmp_path, size=(110, 60)) as (tmux, markers):  # tall enough for the whole report
        wait_until((markers / "half").exists, "the first half of the records")
        tmux.wait_for("30/60", "the progress line at 30/60")
        # the rows are laid out twice a second, the bar four times: wait for the rows of 30/60 too
        latest_row = r"404\s+86 ms\s+1\.0 KiB\s+http://127\.0\.0\.1:8080/a/very/\S*…\S*/item-27\?q=27"
        wait_until(lambda: re.search(latest_row, tmux.screen()) is not None, "the latest rows at 30/60")
        middle = tmux.screen()
        assert re.search(r"━+.* 30/60\s+50%\s+[\d.,]+ URL/s\s+elapsed \d+:\d\d\s+ETA \d+:\d\d", middle), middle
        assert re.search(r"21 ok\s+9 failed\s+│\s+2xx 21\s+4xx 3\s+5xx 3\s+timeout 3\s+│", middle), middle
        assert re.search(r"STATUS\s+TIME\s+SIZE\s+URL", middle) and "timeout" in middle
        assert re.search(r"404\s+86 ms\s+1\.0 KiB\s+http://127\.0\.0\.1:8080/a/very/\S*…\S*/item-27\?q=27", middle)
        assert "\x1b[32m" in tmux.screen(colours=True)  # 2xx counts and 200s are green
        (markers / "go").touch()
        wait_until((markers / "done").exists, "the end of the run")
        final = tmux.wait_for("╰", "the summary panel")
        assert "30/60" not in final and "ETA" not in final  # the live view was erased
        assert "failures" in final and "slowest 10" in final and re.search(r"╭─ 60 URLs in", final)
        assert re.search(r"│ 42 ok\s+18 failed\s+\S+ KiB\s+[\d.,]+ URL/s", final), final
        assert re.search(r"│ 2xx 42\s+4xx 6\s+5xx 6\s+timeout 6", final)
        assert re.search(r"latency\s+p50 \S+ ms\s+p90 .* p99 .* max 2.00 s", final)
        assert re.search(r"│\s+\S+ ms – \S+ ms █+\S*\s+\d+", final), final
        print("\n" + final.rstrip())


@needs_tmux
def test_stderr_progress_mode_shows_only_the_bar_and_summary(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with run_in_tmux(tmp_path, "--progress-only", "--unknown-total", redirect=f"> {out}") as (tmux, markers):
        wait_until((markers / "half").exists, "the first half of the records")
        middle = tmux.wait_for("30 done", "a count with a spinner")
        assert "URL/s" in middle and "ETA" not in middle and "STATUS" not in middle
        (markers / "go").touch()
        wait_until((markers / "done").exists, "the end of the run")
        final = tmux.wait_for("╰", "the summary panel")
        assert "✓" in final and "60 done" in final and "60 URLs in" in final and "127.0.0.1" not in final
        assert len(out.read_text().splitlines()) == RECORDS


@needs_tmux
def test_a_tight_latency_spread_shows_no_bin_whose_range_collapses(tmp_path: Path) -> None:
    with run_in_tmux(tmp_path, "--tight", size=(200, 60)) as (tmux, markers):
        wait_until((markers / "half").exists, "the first half of the records")
        (markers / "go").touch()
        wait_until((markers / "done").exists, "the end of the run")
        final = tmux.wait_for("╰", "the summary panel")
        assert tmux.scrolled_off() == 0  # the whole report, histogram included, is on the screen
        bins = re.findall(r"│\s+([\d.]+ m?s(?: – [\d.]+ m?s)?) [█▏▎▍▌▋▊▉]*\s+(\d+)\s+│", final)
        labels = [label for label, _ in bins]
        assert bins and sum(int(n) for _, n in bins) == RECORDS, final
        assert len(set(labels)) == len(labels), labels
        assert all(low != high for low, _, high in (label.partition(" – ") for label in labels)), labels


# --- the script the terminal tests run ----------------------------------------------------


def drive(argv: list[str]) -> None:
    """Feed RECORDS synthetic records to a LiveWriter on this process's terminal.

    Stops halfway (touching `half`) until `go` exists, touches `done` at the end and waits
    for `exit` so the screen stays for the test to read. With --progress-only the view is
    on stderr and records go to stdout as JSON lines, as the CLI does when piped. With
    --tight every latency is within 18 ms of the others.
    """
    markers, flags = Path(argv[0]), set(argv[1:])
    progress_only = "--progress-only" in flags
    console = Console(stderr=progress_only)
    stats = Stats()
    total = None if "--unknown-total" in flags else RECORDS
    writer = LiveWriter(console, stats, total, progress_only=progress_only, refresh_per_second=20)
    for i, result in enumerate(synthetic(RECORDS)):
        if "--tight" in flags:  # every latency within 18 ms of 1.5 s
            result.elapsed_ms = 1500.0 + i * 0.3
        if i == RECORDS // 2:
            (markers / "half").touch()
            _wait_for(markers / "go")
        stats.add(result)
        writer.write(result)
        if progress_only:
            print(json.dumps(result.to_dict()), flush=True)
    writer.close()
    (markers / "done").touch()
    _wait_for(markers / "exit")


def _wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


if __name__ == "__main__":
    drive(sys.argv[1:])


def test_histogram_merges_bins_that_would_read_the_same() -> None:
    bins = [(2000.0 + i * 0.1, 2000.1 + i * 0.1, 1) for i in range(8)]  # all within 1 ms of 2 s
    grid = latency_histogram(bins)
    assert grid is not None
    console = Console(file=io.StringIO(), width=80, no_color=True)
    console.print(grid)
    lines = [line for line in console.file.getvalue().splitlines() if line.strip()]
    labels = [line.split("█")[0].strip() for line in lines]
    assert len(labels) == len(set(labels)) and sum(int(line.split()[-1]) for line in lines) == 8
