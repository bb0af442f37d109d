"""The real command in a real terminal (tmux), read off the screen as a person would."""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_live import Tmux, needs_tmux, wait_until


@contextmanager
def fetchpool_in_tmux(
    tmp_path: Path, args: str, env: str = "", size: tuple[int, int] = (110, 40)
) -> Iterator[tuple[Tmux, Path]]:
    """Run `fetchpool ARGS` in a pane of `size`; the exit status lands in a file, the screen stays."""
    status = tmp_path / "status"
    command = f"{env} {shlex.quote(sys.executable)} -m fetchpool {args}; echo $? > {shlex.quote(str(status))}; sleep 60"
    tmux = Tmux(tmp_path, f"cd {shlex.quote(str(tmp_path))} && {command}", size)
    try:
        yield tmux, status
    finally:
        tmux.close()


def url_file(server, tmp_path: Path) -> Path:
    paths = ["/ok", "/status/404", "/status/500", "/delay/300", "/bytes/5000"] * 4
    path = tmp_path / "urls.txt"
    path.write_text("".join(server.url(f"{p}?i={i}") + "\n" for i, p in enumerate(paths)))
    return path


@needs_tmux
def test_the_live_view_ends_with_the_table_and_the_summary(server, tmp_path: Path) -> None:
    urls = url_file(server, tmp_path)
    with fetchpool_in_tmux(tmp_path, f"-c 4 {urls}") as (tmux, status):
        wait_until(status.exists, "the command to finish")
        screen = tmux.screen()
        assert status.read_text().strip() == "1"  # some URLs failed
        assert re.search(r"STATUS\s+TIME\s+SIZE\s+URL", screen)
        assert re.search(r"404\s+\S+ ms\s+\S+ B\s+http://127\.0\.0\.1:\d+/status/404", screen)
        assert re.search(r"╭─ 20 URLs in [\d.]+ s", screen), screen
        assert re.search(r"│ 12 ok\s+8 failed", screen) and re.search(r"2xx 12\s+4xx 4\s+5xx 4", screen)
        assert re.search(r"latency\s+p50 \S+ ms\s+p90", screen) and "█" in screen
        assert "ETA" not in screen  # the progress line was replaced by the final report


@needs_tmux
def test_piped_records_leave_progress_and_summary_on_the_terminal(server, tmp_path: Path) -> None:
    urls = url_file(server, tmp_path)
    out = tmp_path / "out.jsonl"
    with fetchpool_in_tmux(tmp_path, f"-c 4 {urls} > {out}") as (tmux, status):
        wait_until(status.exists, "the command to finish")
        screen = tmux.screen()
        assert "20/20 100%" in screen and "20 URLs in" in screen and "http://" not in screen
        assert len(out.read_text().splitlines()) == 20


@needs_tmux
def test_no_color_means_no_colour_codes(server, tmp_path: Path) -> None:
    urls = url_file(server, tmp_path)
    with fetchpool_in_tmux(tmp_path, f"-c 4 {urls}", env="NO_COLOR=1") as (tmux, status):
        wait_until(status.exists, "the command to finish")
        coloured = tmux.screen(colours=True)
        assert "20 URLs in" in coloured
        assert not re.search(r"\x1b\[(3[0-7]|9[0-7]|38;)", coloured)  # no foreground colours at all


@needs_tmux
def test_credentials_never_reach_the_screen(server, tmp_path: Path) -> None:
    url = server.url("/status/401").replace("http://", "http://alice:hunter2@")
    (tmp_path / "urls.txt").write_text(url + "\nhttp://127.0.0.1:9/closed\n")
    args = f"-H 'Authorization: Bearer topsecret-token' -H 'Cookie: session=c00kie' --retries 0 {tmp_path / 'urls.txt'}"
    with fetchpool_in_tmux(tmp_path, args) as (tmux, status):
        wait_until(status.exists, "the command to finish")
        screen = tmux.screen()
        assert "alice:***@" in screen
        assert not any(secret in screen for secret in ("hunter2", "topsecret", "c00kie"))


SIZES = [(40, 20), (80, 24), (200, 60)]
MIX = {  # path or URL -> the outcome it counts as
    "/ok": "2xx",
    "/status/301": "3xx",
    "/status/404": "4xx",
    "/status/500": "5xx",
    "http://[::1/bad": "invalid_url",
    "ftp://files.invalid/x": "unsupported_scheme",
    "http://nowhere.invalid/": "dns",
    "http://127.0.0.1:9/": "connect",
    "/loop": "too_many_redirects",
}


def mixed_file(server, tmp_path: Path, each: int = 10) -> Path:
    """Ten of every outcome, then one URL that drips its body for as long as the run lasts."""
    lines = []
    for i in range(each):
        for where in MIX:
            url = server.url(where) if where.startswith("/") else where
            lines.append(url if "[" in url else f"{url}{'&' if '?' in url else '?'}i={i}")
    lines.append(server.url("/drip?ms=200"))
    path = tmp_path / "mixed.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def whole_pairs(lines: list[str]) -> None:
    """Every outcome of the mix is on one line with its count, none cut short by `…`."""
    for name in MIX.values():
        assert any(re.search(rf"(?<!\S){name} 10(?!\S)", line) for line in lines), (name, lines)
    assert not any("…" in line for line in lines), lines


def shows_urls(lines: list[str]) -> None:
    """The STATUS and URL columns, and the URL in the rows (cut in the middle if need be)."""
    assert any(re.match(r"STATUS\s+(TIME\s+)?(SIZE\s+)?URL\s*$", line) for line in lines), lines
    assert any(re.match(r"(\d{3}|[a-z_]+)\s+(.*\s)?http://1\S*\?i=\d", line) for line in lines), lines


@needs_tmux
@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_screen_size_shows_urls_whole_counters_and_a_report_that_fits(server, tmp_path: Path, size) -> None:
    width, height = size
    urls = mixed_file(server, tmp_path)
    done = f"{len(MIX) * 10}/{len(MIX) * 10 + 1}"
    with fetchpool_in_tmux(tmp_path, f"-c 4 --retries 0 -t 60 {urls}", size=size) as (tmux, status):
        live = tmux.wait_for(done, "every URL but the dripping one").splitlines()
        top = next(i for i, line in enumerate(live) if done in line)
        header = next(i for i, line in enumerate(live) if line.startswith("STATUS"))
        assert "…" not in live[top] and re.search(r"\d( URL)?/s", live[top]), live[top]  # progress fields are whole
        whole_pairs(live[top + 1 : header])  # the counters, wrapped between pairs
        shows_urls(live)
        tmux.keys("C-c")
        wait_until(status.exists, "the command to stop")
        rows = tmux.rows()
        assert status.read_text().strip() == "130"
        assert tmux.scrolled_off() == 0 and not any(rows[height - 1 :]), rows  # the report fits, prompt line free
        final = "\n".join(rows)
        assert "━" not in final and done not in final and "URL/s elapsed" not in final  # no progress frame left
        assert re.search(rf"╭─ {len(MIX) * 10} URLs in [\d.]+ s · interrupted", final), final
        panel = [line.strip("│ ") for line in rows if line.startswith("│")]
        whole_pairs(panel)
        assert re.search(r"1 not fetched \(in flight or queued\)", " ".join(panel)), final
        shows_urls(rows)
        if height < 60:
            assert re.search(r"rows left out to fit the screen;\s+every record: -o FILE or --json", final), final


@needs_tmux
def test_urls_typed_at_the_terminal_leave_no_progress_frame(server, tmp_path: Path) -> None:
    typed = [server.url(f"/ok?typed={i}") for i in range(3)]
    with fetchpool_in_tmux(tmp_path, "-", size=(80, 24)) as (tmux, status):
        for url in typed:
            tmux.type(url)
            path = url[len(server.base) :]
            wait_until(lambda p=path: any(seen[1] == p for seen in server.seen), f"fetchpool to fetch {path}")
            # The view would hide the cursor as it starts, before the first fetch: it has not.
            assert tmux.cursor_shown() and "━" not in tmux.screen(), tmux.screen()
        tmux.keys("C-d")
        wait_until(status.exists, "the command to finish")
        screen = tmux.screen()
        assert status.read_text().strip() == "0"
        assert "━" not in screen and not re.search(r"\d+ done", screen), screen  # no frame drawn over the typing
        assert all(screen.count(url) == 2 for url in typed), screen  # as typed, and in the table
        assert re.search(r"╭─ 3 URLs in", screen) and tmux.scrolled_off() == 0
