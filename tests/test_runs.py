"""Runs that span more than one go: --resume, --shard, --dedupe, end to end through the CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from helpers import ScriptedServer

from conftest import cli_env, run_cli


def _paths(server: ScriptedServer) -> Counter[str]:
    return Counter(path.split("?")[0] for _, path, _ in server.seen)


def _ok_urls(out: Path) -> Counter[str]:
    found: Counter[str] = Counter()
    for line in out.read_bytes().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record["ok"]:
            found[record["url"]] += 1
    return found


def test_resume_after_kill_9_fetches_exactly_the_missing_urls(scripted: ScriptedServer, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    scripted.script["bad"] = (500, b"", {})
    urls = [scripted.url(f"/s/r{i}?delay=0.05") for i in range(60)] + [scripted.url("/s/bad")]
    cmd = [sys.executable, "-m", "fetchpool", "--resume", str(out), "-c", "4", "--retries", "0", "-"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, env=cli_env())
    assert proc.stdin is not None
    proc.stdin.write("".join(u + "\n" for u in urls).encode())
    proc.stdin.close()
    deadline = time.monotonic() + 60
    while (not out.exists() or out.read_bytes().count(b"\n") < 15) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    done = _ok_urls(out)
    assert 15 <= len(done) < 60
    missing = [u for u in urls if u.split("?")[0] not in {d.split("?")[0] for d in done}]
    torn = missing[0]
    with out.open("a") as f:  # a record cut by the kill: its URL is not done
        f.write(json.dumps({"url": torn, "ok": True})[:-8])

    scripted.seen.clear()
    grown = [scripted.url("/s/new1"), scripted.url("/s/new2")]
    again = run_cli(
        "--resume", str(out), "--retries", "0", "-", input="".join(u + "\n" for u in reversed(urls + grown)).encode()
    )
    assert again.returncode == 1  # /s/bad still fails
    expected = Counter(u.split("?")[0].removeprefix(scripted.base) for u in missing + grown)
    expected["/s/bad"] = 1  # not ok last time: fetched again
    assert _paths(scripted) == expected  # exactly the missing ones, none twice
    final = _ok_urls(out)
    assert set(final) == {u for u in urls + grown if not u.endswith("/s/bad")}
    assert set(final.values()) == {1}


def test_resume_reads_stdin_and_a_missing_file_starts_afresh(scripted: ScriptedServer, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    urls = f"{scripted.url('/s/a')}\n{scripted.url('/s/b')}\n".encode()
    assert run_cli("--resume", str(out), "-", input=urls).returncode == 0
    scripted.seen.clear()
    second = run_cli("--resume", str(out), "-o", str(out), "--summary-json", "-", input=urls)
    assert scripted.seen == []
    assert json.loads(second.stdout)["monitor"]["skipped"] == 2
    assert len(out.read_bytes().splitlines()) == 2


def test_resume_refuses_another_output_or_format(tmp_path: Path) -> None:
    out = str(tmp_path / "out.jsonl")
    for args in (["-o", str(tmp_path / "x.jsonl")], ["-f", "csv"], ["--fields", "url"]):
        done = run_cli("--resume", out, *args, "http://127.0.0.1:1/")
        assert done.returncode == 2 and b"--resume" in done.stderr, args


def test_shards_partition_any_input_exactly(tmp_path: Path) -> None:
    lines = [f"http://127.0.0.1:1/p{i}" for i in range(40)] + ["not a url", "http://127.0.0.1:1/p3"]
    listing = tmp_path / "urls.txt"
    listing.write_text("\n".join(lines) + "\n")
    seen: Counter[int] = Counter()
    for k in range(3):
        done = run_cli("--shard", f"{k}/3", "--retries", "0", "--fail-on", "none", str(listing))
        assert done.returncode == 0
        records = [json.loads(line) for line in done.stdout.splitlines()]
        assert 0 < len(records) < len(lines)
        seen.update(r["line"] for r in records)
    assert seen == Counter(range(1, len(lines) + 1))  # every line in exactly one shard


def test_shard_value_is_checked() -> None:
    for bad in ("3/3", "1", "a/b", "-1/2"):
        done = run_cli("--shard", bad, "http://127.0.0.1:1/")
        assert done.returncode == 2 and b"--shard" in done.stderr, bad


def test_dedupe_skips_repeats_and_counts_them(scripted: ScriptedServer, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    urls = [scripted.url("/s/a"), scripted.url("/s/b"), scripted.url("/s/a"), scripted.url("/s/a")]
    done = run_cli("--dedupe", "-o", str(out), "--summary-json", "-", "-", input="\n".join(urls).encode())
    assert sorted(json.loads(line)["line"] for line in out.read_bytes().splitlines()) == [1, 2]
    summary = json.loads(done.stdout)
    assert summary["monitor"]["skipped"] == 2 and summary["total"] == 2
    assert _paths(scripted) == Counter({"/s/a": 1, "/s/b": 1})


def test_dedupe_keys_on_method_and_url(scripted: ScriptedServer) -> None:
    urls = [scripted.url("/s/a"), scripted.url("/s/a?x=1"), scripted.url("/s/a")]
    done = run_cli("--dedupe", "-", input="\n".join(urls).encode())
    assert len(done.stdout.splitlines()) == 2


def test_resume_keys_on_the_method_too(scripted: ScriptedServer, tmp_path: Path) -> None:
    """A GET done is not a HEAD done: the HEAD run must still send its requests."""
    out = tmp_path / "r.jsonl"
    urls = scripted.url("/s/m1") + "\n" + scripted.url("/s/m2") + "\n"
    first = run_cli("--resume", str(out), "-", input=urls.encode())
    assert first.returncode == 0 and all(json.loads(x)["method"] == "GET" for x in out.read_text().splitlines())
    before = len(scripted.seen)
    head = run_cli("--resume", str(out), "-X", "HEAD", "-", input=urls.encode())
    assert head.returncode == 0 and len(scripted.seen) == before + 2
    again = run_cli("--resume", str(out), "-X", "HEAD", "--fail-on", "any,empty", "-", input=urls.encode())
    assert again.returncode == 0 and len(scripted.seen) == before + 2  # all done: skipped is not an empty input
    assert b"no URLs in input" not in again.stderr
