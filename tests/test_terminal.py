"""The real command in a real terminal (tmux), read off the screen as a person would."""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from test_live import Tmux, needs_tmux, wait_until


@contextmanager
def fetchpool_in_tmux(tmp_path: Path, args: str, env: str = "") -> Iterator[tuple[Tmux, Path]]:
    """Run `fetchpool ARGS` in a 110x40 pane; the exit status lands in a file, the screen stays."""
    status = tmp_path / "status"
    command = f"{env} {shlex.quote(sys.executable)} -m fetchpool {args}; echo $? > {shlex.quote(str(status))}; sleep 60"
    tmux = Tmux(tmp_path, f"cd {shlex.quote(str(tmp_path))} && {command}")
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
