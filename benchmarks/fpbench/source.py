"""Which fetchpool is benchmarked: the venv's, a given executable, or a git ref installed into its own venv."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .procs import HERE, log, loud

PEERS = ("aiohttp", "ray")  # benchmark-only packages: a --ref venv gets those the runner's venv has


def find_fetchpool() -> str:
    """The fetchpool next to this interpreter first (the venv's), then PATH."""
    beside = Path(sys.executable).parent / "fetchpool"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("fetchpool")
    if found:
        return found
    raise SystemExit(
        "run.py: no `fetchpool` executable next to this Python or on PATH.\n"
        "  Activate the venv and install it:  . .venv/bin/activate && pip install -e .\n"
        "  then rerun with that Python:        python benchmarks/run.py"
    )


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(HERE.parent), *args], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()


def fetchpool_from_ref(ref: str, where: Path) -> tuple[str, str, str]:
    """fetchpool exactly as committed at `ref`, pip-installed (not editable) into its own venv.

    Returns (the venv's `fetchpool` console script, a description, the venv's python).
    Why a snapshot: the working tree may be mid-edit (or another commit may be the one to
    compare against); `git archive` gives an immutable copy (read-only use of git).
    Why a regular install in a fresh venv: that is what `pip install .` users run. An
    editable install (or any venv holding one) makes every interpreter start-up import
    setuptools' editable finder from a .pth file (pathlib, fnmatch, re: ~10-20 ms), which
    would be charged to fetchpool's start-up. The dependencies are pinned to the versions
    this runner's venv has, so the snapshot runs on the same requests/urllib3/rich/click;
    the benchmark-only peers the runner's venv has (aiohttp, ray) are installed alongside.
    """
    try:
        sha = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
        archive = subprocess.run(
            ["git", "-C", str(HERE.parent), "archive", sha], capture_output=True, timeout=60, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise SystemExit(f"run.py: cannot read fetchpool at git ref {ref!r}: {exc}") from None
    dest = where / f"fetchpool-{sha[:12]}"
    src = dest / "src"
    src.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True, timeout=60)
    venv = dest / "venv"
    from importlib.metadata import distributions

    pins = sorted(
        {
            f"{d.metadata['Name']}=={d.version}"
            for d in distributions()
            if d.metadata["Name"] and d.metadata["Name"].lower() not in ("fetchpool", "pip", "setuptools")
        }
    )
    have = {(d.metadata["Name"] or "").lower() for d in distributions()}
    peers = [name for name in PEERS if name in have]
    constraints = dest / "constraints.txt"
    constraints.write_text("\n".join(pins) + "\n")
    python = venv / "bin" / "python"
    log(f"installing fetchpool {sha[:12]} (git archive, non-editable) into {venv} ...")
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--timeout", "30"]
        + ["-c", str(constraints), str(src), *peers],
    ]
    for step in steps:
        # The ordinary environment: pip may need the package index (never a benchmark target).
        done = subprocess.run(step, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise SystemExit(
                f"run.py: could not install the snapshot of {ref!r} ({' '.join(step[:4])} ...), exit "
                f"{done.returncode}:\n{done.stderr[-3000:]}"
            )
    script = venv / "bin" / "fetchpool"
    if not script.is_file():
        raise SystemExit(f"run.py: the snapshot install left no console script at {script}")
    direct = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m; print(m.distribution('fetchpool').read_text('direct_url.json'))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    if re.search(r'"editable"\s*:\s*true', direct):
        loud(f"the snapshot of {ref} was installed editable after all: {direct.strip()}")
    return (
        str(script),
        f"git {ref} = {sha[:12]} (git archive snapshot, regular non-editable `pip install` into its own venv)",
        str(python),
    )


def editable_note() -> str:
    """Is the fetchpool this interpreter sees an editable install? Its start-up then pays extra."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        direct = distribution("fetchpool").read_text("direct_url.json") or ""
    except PackageNotFoundError:
        return ""
    if re.search(r'"editable"\s*:\s*true', direct):
        return (
            " — ⚠ an editable install: start-up includes setuptools' editable import finder (~10-20 ms) "
            "that `pip install .` users do not pay; use --ref for a regular install"
        )
    return ""


def working_tree_state() -> str:
    try:
        sha = _git("rev-parse", "--short=12", "HEAD")
        dirty = [line for line in _git("status", "--porcelain", "--", "fetchpool").splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError):
        return "working tree (not a git checkout?)"
    return f"working tree at {sha}" + (f" + {len(dirty)} uncommitted change(s) under fetchpool/" if dirty else "")
