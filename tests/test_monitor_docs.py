"""The README's "Monitoring from cron": its crontab line and jq recipes, run as written."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import ScriptedServer
from test_cron import installed_fetchpool, mail_stub

from conftest import run_cli

README = Path(__file__).parent.parent / "README.md"
needs_jq = pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed (apt-get install jq)")


def _section() -> str:
    text = README.read_text()
    return text[text.index("## Monitoring from cron") : text.index("## Runs that span more than one go")]


def _recipes() -> dict[str, str]:
    block = re.search(r"```sh\n(.*?)\n```", _section(), re.S)
    assert block
    found = {}
    for line in block.group(1).splitlines():
        command, _, name = line.partition("#")
        found[name.strip()] = command.strip()
    return found


def _three_runs(scripted: ScriptedServer, state: Path) -> bytes:
    """A breaks, B recovers, C changes status but stays ok, D stays as it was."""
    scripted.script.update(a=(200, b"", {}), b=(500, b"", {}), c=(200, b"", {}), d=(200, b"", {}))
    urls = "".join(scripted.url(f"/s/{n}") + "\n" for n in "abcd").encode()
    run_cli("--state", str(state), "--retries", "0", "-", input=urls)
    scripted.script.update(a=(503, b"", {}), b=(200, b"", {}), c=(204, b"", {}))
    return run_cli("--state", str(state), "--retries", "0", "-", input=urls).stdout


@needs_jq
def test_jq_recipes_find_what_broke_recovered_and_changed(scripted: ScriptedServer, tmp_path: Path) -> None:
    (tmp_path / "last.jsonl").write_bytes(_three_runs(scripted, tmp_path / "state.db"))
    recipes = _recipes()
    assert set(recipes) == {"what broke", "what recovered", "what changed"}

    def run(name: str) -> list[str]:
        out = subprocess.run(recipes[name], shell=True, cwd=tmp_path, capture_output=True, check=True).stdout
        return [line if name == "what changed" else json.loads(line)["url"] for line in out.decode().splitlines()]

    assert run("what broke") == [scripted.url("/s/a")]
    assert run("what recovered") == [scripted.url("/s/b")]
    assert sorted(run("what changed")) == [scripted.url(f"/s/{n}") for n in "abc"]


def _has_flag(flag: str) -> bool:
    return flag in run_cli("--help").stdout.decode()


@needs_jq
def test_the_crontab_line_pages_once_on_the_second_failure(scripted: ScriptedServer, tmp_path: Path) -> None:
    block = re.search(r"```crontab\n(.*?)\n```", _section(), re.S)
    assert block
    (line,) = block.group(1).splitlines()
    command = line.split(None, 5)[5]
    for doc in ("--state", "--fail-on new-failures", "--fail-after 2", "--cert-days 14", "--metrics"):
        assert doc in command
    if not _has_flag("--cert-days"):  # lands with the response checks; the rest of the line is tested now
        command = command.replace(" --cert-days 14", "")
    listing, logs, prom = tmp_path / "health.txt", tmp_path / "logs", tmp_path / "textfile"
    logs.mkdir()
    prom.mkdir()
    listing.write_text(f"{scripted.url('/s/site')}\n{scripted.url('/s/other')}\n")
    for doc, here in (
        ("/opt/fetchpool/.venv/bin/fetchpool", str(installed_fetchpool())),
        ("/etc/fetchpool/health.txt", str(listing)),
        ("/var/log/fetchpool/", f"{logs}/"),
        ("/var/lib/fetchpool/", f"{tmp_path}/"),
        ("/var/lib/node_exporter/textfile/", f"{prom}/"),
        ("| mail ", f"| {mail_stub(tmp_path)} "),
    ):
        assert doc in command
        command = command.replace(doc, here)
    cron_env = ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={tmp_path}", "SHELL=/bin/sh", "LOGNAME=cron"]
    mail = tmp_path / "mail.txt"

    def cron() -> str:
        subprocess.run([*cron_env, "/bin/sh", "-c", command], cwd=tmp_path, timeout=60, check=True)
        return mail.read_text() if mail.exists() else ""

    assert cron() == ""
    scripted.script["site"] = (500, b"", {})
    assert cron() == ""  # one failure: nobody paged
    paged = cron()
    assert paged.startswith("mail -s fetchpool: exit 1 ops\n") and scripted.url("/s/site") in paged
    assert cron() == paged  # still broken: not paged again
    assert "fetchpool_probe_success" in (prom / "fetchpool.prom").read_text()
