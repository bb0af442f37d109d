"""Outputs that must not eat each other, and I/O errors: one line naming the file, exit 74.

Every case runs the command as a subprocess, with real file descriptors closed, full or
limited, against the loopback test server.
"""

from __future__ import annotations

import io
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from fetchpool.app import Environment, ExitCode
from fetchpool.cli import main

from conftest import cli_env, run_cli

FETCHPOOL = f"{sys.executable} -m fetchpool"


def sh(command: str, cwd: Path, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run a shell line (for `>&-`, `<&-`, `> /dev/full`, `>> file`); stderr is captured."""
    return subprocess.run(["sh", "-c", command], input=input, capture_output=True, timeout=60, env=cli_env(), cwd=cwd)


def one_line(stderr: bytes) -> str:
    """The whole of stderr, which must be exactly one line."""
    text = stderr.decode()
    assert text.endswith("\n") and text.count("\n") == 1 and "Traceback" not in text, text
    return text.rstrip("\n")


@pytest.fixture
def urls(server, tmp_path) -> Path:
    path = tmp_path / "urls.txt"
    path.write_text("".join(server.url(f"/ok?io={i}") + "\n" for i in range(3)))
    return path


def test_io_error_is_exit_status_74() -> None:
    assert ExitCode.IO_ERROR == 74


# -- outputs that are the same file, however spelt ------------------------------------------


def _spellings(tmp_path: Path) -> dict[str, tuple[str, str]]:
    (tmp_path / "sub").mkdir()
    (tmp_path / "old.json").write_text("old\n")
    os.symlink("old.json", tmp_path / "soft.json")
    os.link(tmp_path / "old.json", tmp_path / "hard.json")
    os.symlink("new.json", tmp_path / "dangling.json")
    return {
        "same name": ("same.json", "same.json"),
        "dot slash, not yet made": ("x.json", "./x.json"),
        "dot dot": ("sub/../y.json", "y.json"),
        "absolute": ("z.json", str(tmp_path / "z.json")),
        "symlink": ("old.json", "soft.json"),
        "hard link": ("hard.json", "old.json"),
        "dangling symlink": ("new.json", "dangling.json"),
    }


@pytest.mark.parametrize(
    "case", ["same name", "dot slash, not yet made", "dot dot", "absolute", "symlink", "hard link", "dangling symlink"]
)
def test_two_outputs_that_are_one_file_are_refused(urls, tmp_path, case: str) -> None:
    out, summary = _spellings(tmp_path)[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = run_cli(str(urls), "-o", out, "--summary-json", summary, cwd=tmp_path)
    assert proc.returncode == ExitCode.USAGE and b"are the same file" in proc.stderr, proc.stderr
    assert proc.stdout == b"" and sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "old.json").read_text() == "old\n"


def test_a_summary_onto_the_file_stdout_goes_to_is_refused(urls, tmp_path) -> None:
    proc = sh(f"{FETCHPOOL} urls.txt --summary-json ./out.json > out.json", tmp_path)
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    assert b"stdout (the records) and --summary-json './out.json' are the same file" in proc.stderr


def test_two_distinct_outputs_and_dev_null_twice_are_fine(urls, tmp_path) -> None:
    assert run_cli(str(urls), "-o", "a.jsonl", "--summary-json", "b.json", cwd=tmp_path).returncode == 0
    # Devices only through links of our own: a regression must never replace the real one.
    os.symlink(os.devnull, tmp_path / "null")
    proc = run_cli(str(urls), "-o", "null", "--summary-json", "null", "-f", "json", cwd=tmp_path)
    assert proc.returncode == ExitCode.OK and os.readlink(tmp_path / "null") == os.devnull


@pytest.mark.parametrize("flag", ["-o", "--summary-json"])
def test_an_output_onto_an_input_by_another_name_is_refused(urls, tmp_path, flag: str) -> None:
    text = urls.read_text()
    os.symlink(urls.name, tmp_path / "soft.txt")
    os.link(urls, tmp_path / "hard.txt")
    for name in ("soft.txt", "hard.txt", "./urls.txt"):
        proc = run_cli("urls.txt", flag, name, cwd=tmp_path)
        assert proc.returncode == ExitCode.USAGE and b"is an input file" in proc.stderr, (name, proc.stderr)
    proc = sh(f"{FETCHPOOL} {flag} urls.txt < urls.txt", tmp_path)  # the URLs come from stdin
    assert proc.returncode == ExitCode.USAGE and b"is an input file" in proc.stderr, proc.stderr
    assert urls.read_text() == text


def test_records_on_stdout_appended_to_the_input_are_refused(urls, tmp_path) -> None:
    text = urls.read_text()
    proc = sh(f"{FETCHPOOL} urls.txt >> urls.txt", tmp_path)
    assert proc.returncode == ExitCode.USAGE and b"stdout is an input file" in proc.stderr, proc.stderr
    assert urls.read_text() == text


# -- --summary-json - ------------------------------------------------------------------------


def test_summary_json_dash_is_stdout_when_the_records_go_to_a_file(urls, tmp_path) -> None:
    proc = run_cli(str(urls), "-o", "records.csv", "--summary-json", "-", cwd=tmp_path)
    assert proc.returncode == ExitCode.OK, proc.stderr
    assert json.loads(proc.stdout)["total"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.csv", "urls.txt"]  # no file named '-'


def test_summary_json_dash_follows_the_final_report_on_a_terminal(urls) -> None:
    terminal = Environment(stdin=io.BytesIO(), stdout_isatty=True, stderr_isatty=True, no_color=True)
    result = CliRunner().invoke(main, [str(urls), "--summary-json", "-"], obj=terminal, catch_exceptions=False)
    assert result.exit_code == ExitCode.OK
    report, _, summary = result.stdout.rpartition("\n{\n")
    assert "3 URLs in" in report and json.loads("{\n" + summary)["total"] == 3


@pytest.mark.parametrize("extra", [[], ["-o", "-"], ["-f", "csv"]])
def test_summary_json_dash_with_records_on_stdout_is_refused(urls, tmp_path, extra: list[str]) -> None:
    proc = run_cli(str(urls), *extra, "--summary-json", "-", cwd=tmp_path)
    assert proc.returncode == ExitCode.USAGE and b"both go to stdout" in proc.stderr, proc.stderr
    assert proc.stdout == b"" and sorted(p.name for p in tmp_path.iterdir()) == ["urls.txt"]


# -- closed, full and unwritable streams -----------------------------------------------------


def test_a_closed_stdout_is_one_line_and_74_before_fetching(server, tmp_path) -> None:
    (tmp_path / "u.txt").write_text(server.url("/ok?closed-stdout") + "\n")
    proc = sh(f"{FETCHPOOL} u.txt >&-", tmp_path)
    assert proc.returncode == ExitCode.IO_ERROR
    assert one_line(proc.stderr) == "fetchpool: cannot write stdout: Bad file descriptor"
    assert not any("closed-stdout" in path for _, path, _ in server.seen)
    assert sh(f"{FETCHPOOL} u.txt -o out.jsonl >&-", tmp_path).returncode == ExitCode.OK  # stdout not needed
    proc = sh(f"{FETCHPOOL} u.txt -o out.jsonl --summary-json - >&-", tmp_path)
    assert proc.returncode == ExitCode.IO_ERROR
    assert one_line(proc.stderr) == "fetchpool: cannot write stdout: Bad file descriptor"


def test_a_closed_stdin_is_one_line_and_74(tmp_path) -> None:
    for command in (f"{FETCHPOOL} <&-", f"{FETCHPOOL} - <&-"):
        proc = sh(command, tmp_path)
        assert proc.returncode == ExitCode.IO_ERROR, proc.stderr
        assert one_line(proc.stderr) == "fetchpool: cannot read stdin: Bad file descriptor"


def test_a_closed_stderr_does_not_break_a_run(urls, tmp_path) -> None:
    proc = subprocess.run(
        ["sh", "-c", f"{FETCHPOOL} urls.txt 2>&-"], capture_output=True, timeout=60, env=cli_env(), cwd=tmp_path
    )
    assert proc.returncode == ExitCode.OK and len(proc.stdout.splitlines()) == 3


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "json", "table"])
def test_a_full_stdout_is_one_line_and_74_not_141(urls, tmp_path, fmt: str) -> None:
    proc = sh(f"{FETCHPOOL} -f {fmt} urls.txt > /dev/full", tmp_path)
    assert proc.returncode == ExitCode.IO_ERROR
    assert one_line(proc.stderr) == "fetchpool: cannot write stdout: No space left on device"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["-o", ""], "fetchpool: cannot write '': No such file or directory"),
        (["-o", "/proc/version"], "fetchpool: cannot write '/proc/version': "),
        (["--summary-json", "/proc/version"], "fetchpool: cannot write '/proc/version': "),
    ],
)
def test_an_output_that_cannot_be_written_is_one_line_and_74(urls, tmp_path, args: list[str], line: str) -> None:
    proc = run_cli(str(urls), *args, cwd=tmp_path)
    if args[1].startswith("/proc/") and not os.access("/proc", os.W_OK):  # not root: refused up front
        assert proc.returncode == ExitCode.USAGE and b"is not a writable folder" in proc.stderr
        return
    assert proc.returncode == ExitCode.IO_ERROR
    assert one_line(proc.stderr).startswith(line), proc.stderr


def test_an_input_that_fails_mid_read_is_one_line_and_74(tmp_path) -> None:
    proc = run_cli("/proc/self/mem", cwd=tmp_path)
    assert proc.returncode == ExitCode.IO_ERROR
    assert one_line(proc.stderr) == "fetchpool: cannot read '/proc/self/mem': Input/output error"


@pytest.mark.parametrize("args", [["--summary-json", "full"], ["-o", "full"], ["-f", "csv", "-o", "full"]])
def test_a_device_target_is_written_in_place_not_replaced(urls, tmp_path, args: list[str]) -> None:
    """`/dev/full` behind a symlink: writing it fails; replacing the link would hide that (and,
    named directly as root, would have replaced the device itself)."""
    os.symlink("/dev/full", tmp_path / "full")
    proc = run_cli(str(urls), *args, cwd=tmp_path)
    assert proc.returncode == ExitCode.IO_ERROR, proc.stderr
    assert one_line(proc.stderr) == "fetchpool: cannot write 'full': No space left on device"
    assert os.readlink(tmp_path / "full") == "/dev/full"


# -- a write error mid-run leaves what was written whole --------------------------------------

LIMIT = 6000  # bytes: a few records, never a multiple of a record's length


def _limited(*args: str, cwd: Path, stdout: object = subprocess.PIPE) -> subprocess.CompletedProcess[bytes]:
    """Run with RLIMIT_FSIZE, so a file stops growing in the middle of a write (as a full disk does)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))

    return subprocess.run(
        [sys.executable, "-m", "fetchpool", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        timeout=60,
        env=cli_env(),
        cwd=cwd,
        preexec_fn=limit,
    )


@pytest.fixture
def many(server, tmp_path) -> Path:
    path = tmp_path / "many.txt"
    path.write_text("".join(server.url(f"/ok?n={i}") + "\n" for i in range(120)))
    return path


def test_a_file_that_fills_up_keeps_only_whole_lines(many, tmp_path) -> None:
    proc = _limited(str(many), "-o", "out.jsonl", cwd=tmp_path)
    assert proc.returncode == ExitCode.IO_ERROR
    assert one_line(proc.stderr) == "fetchpool: cannot write 'out.jsonl': File too large"
    data = (tmp_path / "out.jsonl").read_bytes()
    assert data.endswith(b"\n") and all(json.loads(line)["ok"] for line in data.splitlines())
    with (tmp_path / "stdout.jsonl").open("wb") as stdout:
        proc = _limited(str(many), "-f", "csv", cwd=tmp_path, stdout=stdout)
    assert proc.returncode == ExitCode.IO_ERROR
    assert one_line(proc.stderr) == "fetchpool: cannot write stdout: File too large"
    rows = (tmp_path / "stdout.jsonl").read_bytes().splitlines()
    assert rows and all(row.count(b",") == rows[0].count(b",") for row in rows)


def test_a_json_array_on_a_stdout_that_fills_up_keeps_only_whole_lines(many, tmp_path) -> None:
    with (tmp_path / "stdout.json").open("wb") as stdout:
        proc = _limited(str(many), "-f", "json", cwd=tmp_path, stdout=stdout)
    assert proc.returncode == ExitCode.IO_ERROR
    assert one_line(proc.stderr) == "fetchpool: cannot write stdout: File too large"
    lines = (tmp_path / "stdout.json").read_text().splitlines(keepends=True)
    assert lines[0] == "[\n" and len(lines) > 2
    assert all(json.loads(line.rstrip(",\n"))["ok"] for line in lines[1:])
    assert all(line.endswith(",\n") for line in lines[1:])


def test_a_table_file_that_fills_up_keeps_only_whole_rows(many, tmp_path) -> None:
    proc = _limited(str(many), "-f", "table", "-o", "out.txt", cwd=tmp_path)
    assert proc.returncode == ExitCode.IO_ERROR
    assert one_line(proc.stderr) == "fetchpool: cannot write 'out.txt': File too large"
    rows = (tmp_path / "out.txt").read_text().splitlines(keepends=True)
    assert rows[0].startswith("STATUS") and len(rows) > 1
    assert all(re.fullmatch(r"200 .* http://127\.0\.0\.1:\d+/ok\?n=\d+\n", row) for row in rows[1:]), rows[-1]


@pytest.mark.parametrize("name", ["out.json", "out.csv"])
def test_an_atomic_output_that_fails_leaves_the_target_and_no_temp_file(many, tmp_path, name: str) -> None:
    (tmp_path / name).write_text("previous run\n")
    proc = _limited(str(many), "-o", name, cwd=tmp_path)
    assert proc.returncode == ExitCode.IO_ERROR
    assert one_line(proc.stderr) == f"fetchpool: cannot write {name!r}: File too large"
    assert (tmp_path / name).read_text() == "previous run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "many.txt"])


def _freeze(folder: Path) -> bool:
    """Make `folder` unwritable, for root too (chattr +i) when we are root."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return True
    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0


def _thaw(folder: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
    folder.chmod(0o755)


def _open_files(pid: int) -> list[str]:
    """What the open file descriptors of `pid` point at; one closed while listed is left out."""
    targets = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            targets.append(os.readlink(fd))
        except OSError:
            continue
    return targets


def test_an_output_folder_that_becomes_unwritable_leaves_nothing_behind(server, tmp_path) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "out.json").write_text("previous run\n")
    command = [sys.executable, "-m", "fetchpool", "-o", str(folder / "out.json")]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env())
    assert proc.stdin is not None
    try:
        proc.stdin.write((server.url("/ok") + "\n").encode())
        proc.stdin.flush()
        deadline = time.monotonic() + 30
        while not any(target.startswith(str(folder)) for target in _open_files(proc.pid)):
            assert time.monotonic() < deadline and proc.poll() is None, "the output was never opened"
            time.sleep(0.02)
        if not _freeze(folder):
            pytest.skip("cannot make a folder unwritable here")
        proc.stdin.close()
        assert proc.wait(timeout=30) == ExitCode.IO_ERROR
        assert proc.stderr is not None
        err = proc.stderr.read()
        assert one_line(err).startswith(f"fetchpool: cannot write {str(folder / 'out.json')!r}: ")
        assert sorted(p.name for p in folder.iterdir()) == ["out.json"]
        assert (folder / "out.json").read_text() == "previous run\n"
    finally:
        _thaw(folder)
        proc.kill()
        proc.wait()


# -- flags that contradict or would be ignored ------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_json_with_another_format_is_a_usage_error_naming_both(urls, fmt: str) -> None:
    proc = run_cli(str(urls), "--json", "-f", fmt)
    assert proc.returncode == ExitCode.USAGE and proc.stdout == b""
    assert b"--json" in proc.stderr and f"--format {fmt}".encode() in proc.stderr


def test_json_agrees_with_jsonl_and_wins_over_the_extension_of_o(urls, tmp_path) -> None:
    assert run_cli(str(urls), "--json", "-f", "jsonl").returncode == ExitCode.OK
    proc = run_cli(str(urls), "--json", "-o", "out.csv", cwd=tmp_path)
    assert proc.returncode == ExitCode.OK
    assert [json.loads(line)["ok"] for line in (tmp_path / "out.csv").read_text().splitlines()] == [True] * 3


def test_fields_with_the_table_is_a_usage_error(urls) -> None:
    proc = run_cli(str(urls), "-f", "table", "--fields", "url")
    assert proc.returncode == ExitCode.USAGE and b"--fields" in proc.stderr and proc.stdout == b""
    terminal = Environment(stdin=io.BytesIO(), stdout_isatty=True, stderr_isatty=True, no_color=True)
    result = CliRunner().invoke(main, [str(urls), "--fields", "url"], obj=terminal)
    assert result.exit_code == ExitCode.USAGE and "--fields" in result.output


def test_fields_on_a_terminal_apply_to_the_o_file(urls, tmp_path) -> None:
    terminal = Environment(stdin=io.BytesIO(), stdout_isatty=True, stderr_isatty=True, no_color=True)
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, [str(urls), "--fields", "url,ok", "-o", str(out)], obj=terminal)
    assert result.exit_code == ExitCode.OK, result.output
    assert all(list(json.loads(line)) == ["url", "ok"] for line in out.read_text().splitlines())


@pytest.mark.parametrize("flag", ["--no-progress", "-q"])
def test_no_progress_on_a_terminal_stdout_draws_only_the_final_report(urls, flag: str) -> None:
    def run(*extra: str) -> str:
        terminal = Environment(stdin=io.BytesIO(), stdout_isatty=True, stderr_isatty=True, no_color=True)
        result = CliRunner().invoke(main, [str(urls), *extra], obj=terminal, catch_exceptions=False)
        assert result.exit_code == ExitCode.OK
        return result.stdout

    erase = "\x1b[2K"  # what every redraw (and the erasing of the live view) starts with
    assert erase in run()
    quiet = run(flag)
    assert erase not in quiet and "done" not in quiet
    assert "STATUS" in quiet and "3 URLs in" in quiet


def test_filters_combine_as_documented(server) -> None:
    lines = "".join(server.url(p) + "\n" for p in ("/ok", "/status/404", "/status/503")).encode()
    proc = run_cli("--only-failures", "--match-status", "2xx,404", "--retries", "0", input=lines)
    assert [json.loads(line)["status"] for line in proc.stdout.splitlines()] == [404]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_a_summary_that_cannot_be_written_leaves_the_records_file_as_it_was(urls, tmp_path, fmt: str) -> None:
    """The atomic -o is committed last: a failing --summary-json must not have replaced it."""
    if not os.access("/proc", os.W_OK):
        pytest.skip("needs root: /proc/version is refused up front otherwise")
    out = tmp_path / f"records.{fmt}"
    out.write_text("OLD\n")
    proc = run_cli(str(urls), "-o", str(out), "--summary-json", "/proc/version", cwd=tmp_path)
    assert proc.returncode == ExitCode.IO_ERROR, proc.stderr
    assert out.read_text() == "OLD\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["records." + fmt, urls.name])
