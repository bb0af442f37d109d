"""The README's cron line, run as cron runs it: `/bin/sh -c` with nothing but `PATH=/usr/bin:/bin`.

The line is taken from README.md itself, so the documentation cannot drift from what is tested. Only its
paths are swapped: the installed console script, a list of loopback URLs, a temporary log folder, and a
`mail` stub that writes what it was given to a file.
"""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"
DOC_COMMAND = "/opt/fetchpool/.venv/bin/fetchpool"
DOC_LIST = "/etc/fetchpool/health.txt"
DOC_LOGS = "/var/log/fetchpool/"


def cron_command() -> str:
    """The command part of the README's crontab line, with cron's `\\%` turned back into `%`."""
    block = re.search(r"```cron\n(.*?)\n```", README.read_text(), re.S)
    assert block, "no ```cron block in the README"
    (line,) = block.group(1).splitlines()
    command = line.split(None, 5)[5]  # after minute, hour, day, month, weekday
    assert re.search(r"(?<!\\)%", command) is None, "an unescaped % ends a crontab command"
    return command.replace("\\%", "%")


def installed_fetchpool() -> Path:
    script = Path(sys.executable).parent / "fetchpool"
    assert script.is_file(), f"{script}: the console script is missing (pip install the project first)"
    return script


def mail_stub(folder: Path) -> Path:
    """A `mail` that appends its arguments and its message to `folder/mail.txt`."""
    stub = folder / "mail"
    stub.write_text(f'#!/bin/sh\n{{ echo "mail $*"; cat; }} >> {folder / "mail.txt"}\n')
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    return stub


def run_cron(
    tmp_path: Path, urls: list[str] | None, command: str | None = None, log_folder: bool = True
) -> tuple[list[Path], str]:
    """Run the README's line under cron's environment -> (the log files written, the mail sent).

    `urls=None` leaves the list missing, `log_folder=False` the log folder.
    """
    listing = tmp_path / "health.txt"
    if urls is not None:
        listing.write_text("".join(url + "\n" for url in urls))
    logs = tmp_path / "logs"
    if log_folder:
        logs.mkdir()
    line = cron_command()
    for doc in (DOC_COMMAND, DOC_LIST, DOC_LOGS, "| mail "):
        assert doc in line, f"the README's cron line no longer has {doc!r}"
    line = line.replace(DOC_COMMAND, str(command or installed_fetchpool()))
    line = line.replace(DOC_LIST, str(listing)).replace(DOC_LOGS, f"{logs}/")
    line = line.replace("| mail ", f"| {mail_stub(tmp_path)} ")
    cron_env = ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={tmp_path}", "SHELL=/bin/sh", "LOGNAME=cron"]
    subprocess.run([*cron_env, "/bin/sh", "-c", line], cwd=tmp_path, capture_output=True, timeout=60, check=True)
    mail = tmp_path / "mail.txt"
    return sorted(logs.iterdir()) if logs.exists() else [], mail.read_text() if mail.exists() else ""


def records(log: Path) -> list[tuple[str, int, bool]]:
    found = (json.loads(line) for line in log.read_text().splitlines())
    return sorted((r["url"], r["status"], r["ok"]) for r in found)


def test_all_ok_writes_the_records_and_mails_nothing(server, tmp_path: Path) -> None:
    logs, mail = run_cron(tmp_path, [server.url("/ok?a"), server.url("/ok?b")])
    (log,) = logs
    assert re.fullmatch(r"\d{4}-\d\d-\d\d-\d{4}\.jsonl", log.name), log.name
    assert records(log) == [(server.url("/ok?a"), 200, True), (server.url("/ok?b"), 200, True)]
    assert mail == ""


def test_a_failed_url_mails_that_urls_failed(server, tmp_path: Path) -> None:
    logs, mail = run_cron(tmp_path, [server.url("/ok"), server.url("/status/404")])
    (log,) = logs
    assert records(log) == [(server.url("/ok"), 200, True), (server.url("/status/404"), 404, False)]
    assert mail.startswith("mail -s fetchpool: URLs failed ops\n") and "some URLs failed" in mail, mail


def test_a_missing_list_is_not_reported_as_failed_urls(tmp_path: Path) -> None:
    _, mail = run_cron(tmp_path, None)
    assert mail.startswith("mail -s fetchpool: not run ops\n") and "exit status 2" in mail, mail


def test_a_missing_log_folder_is_not_reported_as_failed_urls(server, tmp_path: Path) -> None:
    _, mail = run_cron(tmp_path, [server.url("/status/404")], log_folder=False)
    assert mail.startswith("mail -s fetchpool: not run ops\n") and "exit status 2" in mail, mail


def test_a_wrong_path_to_fetchpool_is_not_reported_as_failed_urls(server, tmp_path: Path) -> None:
    _, mail = run_cron(tmp_path, [server.url("/ok")], command=str(tmp_path / "no" / "fetchpool"))
    assert mail.startswith("mail -s fetchpool: not run ops\n") and "exit status 127" in mail, mail


def test_a_bare_fetchpool_is_not_found_under_crons_path(tmp_path: Path) -> None:
    """Why the README gives the full path: cron's PATH does not hold the venv's bin folder."""
    if Path("/usr/bin/fetchpool").exists() or Path("/bin/fetchpool").exists():
        pytest.skip("fetchpool is installed system-wide here")
    proc = subprocess.run(["env", "-i", "PATH=/usr/bin:/bin", "/bin/sh", "-c", "fetchpool -V"], capture_output=True)
    assert proc.returncode == 127
