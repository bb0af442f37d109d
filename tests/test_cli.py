"""The command end to end: as a subprocess with pipes and signals, and via CliRunner."""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fetchpool import __version__
from fetchpool.cli import Environment, ExitCode, main

from conftest import cli_env, run_cli

README = Path(__file__).parent.parent / "README.md"
PROMPTLY = 8.0  # well under what waiting for the work in flight would take (20 s and 12.5 s below)


def records(stdout: bytes) -> list[dict]:
    lines = stdout.decode().splitlines()
    return [json.loads(line) for line in lines]


def invoke(args: list[str], input: str = "", **env: bool) -> click.testing.Result:
    environment = Environment(stdin=io.BytesIO(input.encode()), **env)
    return CliRunner().invoke(main, args, obj=environment, catch_exceptions=False)


def test_version() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0 and __version__ in proc.stdout.decode()


def test_stdin_pipe_gives_json_lines_and_exit_0(server) -> None:
    urls = "".join(server.url(f"/ok?i={i}") + "\n" for i in range(20))
    proc = run_cli("-c", "8", input=urls.encode())
    assert proc.returncode == ExitCode.OK, proc.stderr
    got = records(proc.stdout)
    assert sorted(r["line"] for r in got) == list(range(1, 21))
    assert all(r["ok"] and r["status"] == 200 for r in got)
    assert proc.stderr == b""  # stderr is not a terminal: no summary, nothing else


def test_file_dash_and_stdin_are_the_same(server, tmp_path) -> None:
    text = f"{server.url('/ok')}\n# c\n{server.url('/status/404')}\n"
    path = tmp_path / "urls.txt"
    path.write_text(text)
    from_file = records(run_cli(str(path)).stdout)
    from_dash = records(run_cli("-", input=text.encode()).stdout)
    from_stdin = records(run_cli(input=text.encode()).stdout)
    key = [(r["line"], r["status"]) for r in sorted(from_file, key=lambda r: r["line"])]
    assert key == [(1, 200), (3, 404)]
    for other in (from_dash, from_stdin):
        assert [(r["line"], r["status"]) for r in sorted(other, key=lambda r: r["line"])] == key
    assert {r["input"] for r in from_file} == {str(path)} and {r["input"] for r in from_dash} == {"-"}


def test_exit_1_when_any_record_is_not_ok(server) -> None:
    proc = run_cli(input=f"{server.url('/ok')}\n{server.url('/status/500')}\n".encode())
    assert proc.returncode == ExitCode.FAILURES
    assert len(records(proc.stdout)) == 2


@pytest.mark.parametrize(
    "args",
    [
        ["/no/such/file.txt"],
        ["/"],
        ["-H", "no colon here", "-"],
        ["-c", "0", "-"],
        ["--timeout", "-1", "-"],
        ["--demo", "5", "x.txt"],
        ["--max-bytes", "lots", "-"],
    ],
)
def test_exit_2_on_usage_errors_without_traceback(args: list[str]) -> None:
    proc = run_cli(*args, input=b"")
    assert proc.returncode == ExitCode.USAGE
    assert b"Traceback" not in proc.stderr and proc.stderr.strip() and proc.stdout == b""


@pytest.mark.parametrize("value", ["0", "2000"])
def test_processes_out_of_range_names_the_range_the_flag_takes(value: str) -> None:
    """1 to 1024: 0 means "one per CPU" only inside the library, so the flag never offers it."""
    proc = run_cli("--engine", "processes", "--processes", value, "-", input=b"")
    assert proc.returncode == ExitCode.USAGE
    assert b"1<=x<=1024" in proc.stderr and b"at least 0" not in proc.stderr, proc.stderr


def test_exit_2_when_stdin_is_a_terminal_and_no_file() -> None:
    result = invoke([], stdin_isatty=True)
    assert result.exit_code == ExitCode.USAGE
    assert "Usage:" in result.output and "--demo" in result.output


def _wait_for_line(proc: subprocess.Popen[bytes], deadline: float = 30) -> bytes:
    assert proc.stdout is not None
    end = time.monotonic() + deadline
    line = proc.stdout.readline()
    assert line and time.monotonic() < end
    return line


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    """`python -m fetchpool ARGS` with stdout and stderr piped, for signal and pipe tests."""
    command = [sys.executable, "-m", "fetchpool", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env())


def _slow_run(server, sig: int, tmp_path: Path) -> tuple[int, float, bytes, bytes]:
    urls = [server.url("/ok?fast")] + [server.url(f"/delay/20000?i={i}") for i in range(20)]
    path = tmp_path / "slow.txt"
    path.write_text("\n".join(urls) + "\n")
    proc = _spawn("-c", "4", "-t", "60", str(path))
    first = _wait_for_line(proc)
    start = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, time.monotonic() - start, first + out, err


def test_ctrl_c_stops_promptly_keeps_finished_records_and_exits_130(server, tmp_path) -> None:
    code, took, out, err = _slow_run(server, signal.SIGINT, tmp_path)
    assert code == ExitCode.INTERRUPTED
    assert took < PROMPTLY, took
    got = records(out)
    assert [r["url"] for r in got] == [server.url("/ok?fast")]
    assert b"Traceback" not in err
    assert b"1 URL in" in err and b"interrupted" in err  # the summary, for the person who pressed it


def test_after_ctrl_c_the_summaries_say_how_many_urls_were_never_fetched(server, tmp_path) -> None:
    tag = f"held-{tmp_path.name}"
    urls = [server.url("/ok?fast")] + [server.url(f"/delay/8000?{tag}={i}") for i in range(20)]
    path, summary = tmp_path / "slow.txt", tmp_path / "summary.json"
    path.write_text("\n".join(urls) + "\n")
    proc = _spawn("-c", "4", "-t", "30", "--summary-json", str(summary), str(path))
    _wait_for_line(proc)
    end = time.monotonic() + 20
    while sum(tag in seen[1] for seen in server.seen) < 4:  # every worker holds one: at least 4 read, unfetched
        assert time.monotonic() < end, "the workers never reached the server"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == ExitCode.INTERRUPTED
    said = re.search(rb"1 URL in .* \xe2\x80\x94 interrupted: 1 done, (\d+) not fetched\n", err)
    assert said and 4 <= int(said.group(1)) <= 20, err
    doc = json.loads(summary.read_text())
    assert (doc["total"], doc["interrupted"], doc["not_fetched"]) == (1, True, int(said.group(1)))


def test_a_second_ctrl_c_exits_at_once_even_when_stuck(server, tmp_path) -> None:
    """Nobody reads our stdout, so the graceful stop after the first press cannot finish."""
    path = tmp_path / "many.txt"
    path.write_text("".join(server.url(f"/bytes/2000?i={i}") + "\n" for i in range(3000)))
    proc = _spawn("-c", "4", str(path))
    wchan = Path(f"/proc/{proc.pid}/wchan")
    end = time.monotonic() + 20
    while "pipe_write" not in wchan.read_text():  # blocked writing to a full pipe
        assert time.monotonic() < end, "fetchpool never blocked on its stdout pipe"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=0.7)  # still stuck writing: a graceful stop waits for the reader
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == ExitCode.INTERRUPTED  # stuck on the pipe, it would never exit


STUCK_STOP = """
import time
from fetchpool.app import Stopper


class Stuck:  # a run that a stop does not end, and whose closing never ends
    starting = False

    def stop(self):
        pass

    def close(self):
        time.sleep(120)


stopper = Stopper()
stopper.run = Stuck()
stopper.install()
print("ready", flush=True)
time.sleep(120)  # the command's main thread, waiting for a run that never ends
"""


@pytest.mark.slow
def test_a_stop_that_nothing_ends_still_exits_143() -> None:
    """A wait nobody foresaw after SIGTERM: the command still exits 143 (STOP_DEADLINE
    later), not by the SIGKILL that `timeout -k` or systemd send in the end."""
    proc = subprocess.Popen(
        [sys.executable, "-c", STUCK_STOP], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env()
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == ExitCode.TERMINATED, err.decode()


STUCK_RELEASE = """
import time
import fetchpool.pool.spawn as spawn
from fetchpool import app

spawn.release_processes = lambda: time.sleep(120)  # multiprocessing's tracker never answering
app.exit_now(7)
"""


def test_an_exit_that_cannot_stop_its_processes_still_exits() -> None:
    """The exit path stops what multiprocessing started through its private parts, whose
    resource tracker stop waits with no limit: the command exits RELEASE_TIMEOUT later."""
    proc = subprocess.run([sys.executable, "-c", STUCK_RELEASE], capture_output=True, timeout=60, env=cli_env())
    assert proc.returncode == 7, proc.stderr.decode()


def test_a_forwarded_double_sigint_is_one_press(server, tmp_path) -> None:
    """`timeout` and other wrappers forward the terminal's SIGINT: both arrive at once."""
    path = tmp_path / "slow.txt"
    path.write_text(server.url("/ok") + "\n" + "".join(server.url(f"/delay/8000?i={i}") + "\n" for i in range(4)))
    proc = _spawn("-c", "4", str(path))
    _wait_for_line(proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == ExitCode.INTERRUPTED
    assert b"interrupted" in err  # the graceful path ran: the summary was printed


def test_killed_mid_run_leaves_only_whole_json_lines(server, tmp_path) -> None:
    path = tmp_path / "many.txt"
    path.write_text("".join(server.url(f"/bytes/{i % 50}?i={i}") + "\n" for i in range(20000)))
    proc = _spawn("-c", "16", str(path))
    assert proc.stdout is not None
    head = b"".join(proc.stdout.readline() for _ in range(200))
    proc.kill()
    rest = proc.stdout.read()  # through the same buffered reader: communicate() would skip its buffer
    proc.wait(timeout=10)
    out = head + rest
    assert out.endswith(b"\n")
    assert len(records(out)) >= 200


def test_sigterm_stops_like_ctrl_c_with_143(server, tmp_path) -> None:
    code, took, out, err = _slow_run(server, signal.SIGTERM, tmp_path)
    assert code == ExitCode.TERMINATED and took < PROMPTLY, took
    assert len(records(out)) == 1 and b"Traceback" not in err


def test_broken_pipe_exits_quietly(server, tmp_path) -> None:
    path = tmp_path / "many.txt"
    urls = [server.url("/ok")] + [server.url(f"/delay/500?i={i}") for i in range(200)]
    path.write_text("".join(url + "\n" for url in urls))
    proc = _spawn("-c", "8", str(path))
    first = _wait_for_line(proc)
    assert proc.stdout is not None
    proc.stdout.close()  # like `| head -1`
    start = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert json.loads(first)["status"] == 200
    assert proc.returncode == ExitCode.BROKEN_PIPE
    assert time.monotonic() - start < PROMPTLY  # the whole list takes 200 / 8 * 0.5 s = 12.5 s at least
    assert err == b"", err.decode()


def test_shell_head_one_is_quiet(server, tmp_path) -> None:
    path = tmp_path / "many.txt"
    path.write_text("".join(server.url(f"/ok?i={i}") + "\n" for i in range(3000)))
    cmd = f"{sys.executable} -m fetchpool {path} | head -1"
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, timeout=30, env=cli_env())
    assert len(proc.stdout.splitlines()) == 1 and proc.stderr == b""


def test_demo_runs_offline_and_shows_every_outcome() -> None:
    proc = run_cli("--demo", "60", "--json", timeout=60)
    got = records(proc.stdout)
    assert len(got) == 60
    assert all(r["url"].startswith("http://127.0.0.1:") for r in got)
    outcomes = {r["error"] or r["status"] for r in got}
    assert {200, 404, "timeout"} <= outcomes
    assert proc.returncode == ExitCode.FAILURES


def test_terminal_stdout_gets_the_table_and_the_summary(server) -> None:
    urls = f"{server.url('/ok')}\n{server.url('/status/404')}\n"
    result = invoke([], input=urls, stdout_isatty=True, stderr_isatty=True, no_color=True)
    assert result.exit_code == ExitCode.FAILURES
    assert "STATUS" in result.stdout and "404" in result.stdout and server.url("/ok") in result.stdout
    assert "2 URLs in" in result.stdout and "p50" in result.stdout
    assert result.stderr == ""


def test_piped_stdout_with_a_terminal_stderr_shows_progress_there(server) -> None:
    urls = f"{server.url('/ok')}\n{server.url('/status/404')}\n"
    result = invoke([], input=urls, stdout_isatty=False, stderr_isatty=True, no_color=True)
    assert len(records(result.stdout.encode())) == 2
    assert "2 done" in result.stderr and "2 URLs in" in result.stderr


def test_no_progress_leaves_the_summary_line_and_quiet_leaves_nothing(server) -> None:
    urls = f"{server.url('/ok')}\n{server.url('/status/404')}\n"
    plain = invoke(["--no-progress"], input=urls, stderr_isatty=True)
    assert plain.stderr.startswith("2 URLs in") and "1 ok, 1 4xx" in plain.stderr and "\x1b" not in plain.stderr
    quiet = invoke(["-q"], input=urls, stderr_isatty=True)
    assert quiet.stderr == "" and len(records(quiet.stdout.encode())) == 2


def test_json_flag_forces_json_on_a_terminal(server) -> None:
    result = invoke(["--json"], input=server.url("/ok") + "\n", stdout_isatty=True)
    assert json.loads(result.stdout)["status"] == 200


def test_every_option_is_documented_in_the_readme() -> None:
    readme = README.read_text()
    for param in main.params:
        for opt in getattr(param, "opts", []) + getattr(param, "secondary_opts", []):
            if opt.startswith("-"):
                assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", readme), f"{opt} missing from README"


def test_every_exit_code_is_documented_in_the_readme() -> None:
    readme = README.read_text()
    for code in ExitCode:
        assert f"| {code.value} |" in readme, code


def test_credentials_never_appear_in_records_or_messages(server) -> None:
    urls = "\n".join(
        [
            server.url("/status/401").replace("http://", "http://alice:hunter2@"),
            "http://bob:pa55word@127.0.0.1:9/closed",
            "ftp://carol:letmein@127.0.0.1/x",
            server.url("/to?url=http://127.0.0.2:9/elsewhere"),
        ]
    )
    args = ["-H", "Authorization: Bearer topsecret-token", "-H", "Cookie: session=c00kie", "--retries", "0"]
    for extra in ([], ["--format", "csv"], ["--format", "json"]):
        proc = run_cli(*args, *extra, input=urls.encode())
        both = proc.stdout + proc.stderr
        assert b"alice:***@" in both and b"bob:***@" in both and b"carol:***@" in both
        for secret in (b"hunter2", b"pa55word", b"letmein", b"topsecret", b"c00kie"):
            assert secret not in both, (secret, extra)


# -- URLs given as arguments ------------------------------------------------------------------


def test_urls_given_as_arguments_are_fetched_mixed_with_files_in_order(server, tmp_path) -> None:
    path = tmp_path / "urls.txt"
    path.write_text(server.url("/status/404") + "\n")
    args = [
        "--ordered",
        "-c",
        "1",
        server.url("/ok"),
        str(path),
        server.url("/status/500"),
    ]
    result = invoke([*args, "-"], input=server.url("/ok?stdin") + "\n")
    got = records(result.stdout.encode())
    assert [(r["input"], r["line"], r["status"]) for r in got] == [
        ("args", 1, 200),
        (str(path), 1, 404),
        ("args", 2, 500),
        ("-", 1, 200),
    ]
    assert result.exit_code == ExitCode.FAILURES


def test_an_http_argument_is_case_insensitive_and_an_existing_file_of_that_name_wins(server, tmp_path) -> None:
    odd = tmp_path / "http:"
    odd.mkdir()
    (odd / "x").write_text(server.url("/status/404") + "\n")
    result = invoke([server.url("/ok").replace("http://", "HTTP://")])
    assert [(r["input"], r["status"]) for r in records(result.stdout.encode())] == [("args", 200)]
    proc = run_cli("http://x", cwd=tmp_path)  # the path http:/x exists: read as a file, not fetched
    assert [(r["input"], r["status"]) for r in records(proc.stdout)] == [("http://x", 404)]


def test_any_other_missing_argument_is_still_a_usage_error() -> None:
    proc = run_cli("no-such-file.txt", "ftp://127.0.0.1/x")
    assert proc.returncode == ExitCode.USAGE
    assert b"'no-such-file.txt' does not exist" in proc.stderr and proc.stdout == b""


# -- an input with no URL at all -------------------------------------------------------------


def test_no_url_at_all_warns_on_stderr_even_without_a_terminal_and_exits_0() -> None:
    proc = run_cli(input=b"# the list was emptied\n\n")
    assert proc.returncode == ExitCode.OK and proc.stdout == b""
    assert proc.stderr == b"fetchpool: no URLs in input\n"
    quiet = run_cli("-q", input=b"")
    assert quiet.returncode == ExitCode.OK and quiet.stderr == b""


@pytest.mark.parametrize(("spec", "code"), [("empty", 1), ("any,empty", 1), ("5xx,empty", 1), ("any", 0)])
def test_fail_on_empty_makes_an_empty_run_exit_1(spec: str, code: int) -> None:
    result = invoke(["--fail-on", spec], input="\n")
    assert result.exit_code == code and "no URLs in input" in result.stderr


def test_fail_on_empty_alone_does_not_fail_on_failed_records(server) -> None:
    assert invoke(["--fail-on", "empty"], input=server.url("/status/500") + "\n").exit_code == ExitCode.OK
    assert invoke(["--fail-on", "any,empty"], input=server.url("/status/500") + "\n").exit_code == ExitCode.FAILURES


def test_an_empty_run_on_a_terminal_warns_after_the_summary() -> None:
    result = invoke([], input="", stdout_isatty=True, stderr_isatty=True, no_color=True)
    assert result.exit_code == ExitCode.OK and result.stderr == "fetchpool: no URLs in input\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--processes", "2"], "--processes is for --engine processes or ray"),
        (["--ray-address", "auto"], "--ray-address is for --engine ray"),
    ],
)
def test_engine_flags_for_another_engine_are_usage_errors(args: list[str], message: str) -> None:
    result = invoke([*args, "http://127.0.0.1:9/"])
    assert result.exit_code == ExitCode.USAGE and message in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--expect-regex", "("], "Invalid value for '--expect-regex': not a valid regular expression"),
        (["--expect-header", "X: ("], "Invalid value for '--expect-header': not a valid regular expression"),
        (["--state-wait", "5"], "--state-wait needs --state FILE"),
    ],
)
def test_monitoring_flag_mistakes_name_their_flag(args: list[str], message: str) -> None:
    result = invoke([*args, "http://127.0.0.1:9/"])
    assert result.exit_code == ExitCode.USAGE and message in result.output, result.output
