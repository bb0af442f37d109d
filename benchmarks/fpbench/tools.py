"""The clients under test and how each is run on a URL list.

Every tool is an argv built from (URL file, curl config, K), plus where its per-URL
statuses land and in which shape. fetchpool is one tool per set of extra flags, so its
engines (`--engine threads|processes|ray`) run side by side in the same rounds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .procs import HERE, child_env, log, loud

# The default order of --tools, which is the order tools take turns in every round.
ALL_TOOLS = (
    "fetchpool",
    "fetchpool-processes",
    "fetchpool-ray",
    "fetchpool-split",
    "baseline",
    "aiohttp",
    "curl-parallel",
    "xargs-curl",
)
CLASSIC_TOOLS = ("fetchpool", "baseline", "curl-parallel", "xargs-curl")
ENGINE_TOOLS = ("fetchpool", "fetchpool-processes", "fetchpool-ray")  # the rows of the engines section
SPLIT_PARTS = os.cpu_count() or 1
# P independent fetchpools, each on 1/P of the list with K/P in flight: the scale reference
# for the processes engine (what it would reach with no scheduling, IPC or writing in a parent).
SPLIT_SH = """
fp=$1; k=$2; parts=$3; urls=$4; dir=$5; shift 5
split -n l/"$parts" -d "$urls" "$dir/split-part."
pids=""
for f in "$dir"/split-part.*; do "$fp" "$@" -c "$k" --json "$f" & pids="$pids $!"; done
rc=0
for p in $pids; do wait "$p" || rc=$?; done
rm -f "$dir"/split-part.*
exit $rc
"""
XARGS_BATCH = 50
CURL_PARALLEL_MIN = (7, 66, 0)
AIOHTTP_HINT = "pip install aiohttp (benchmark only, not a dependency of fetchpool), or rerun with --install-aiohttp"


def curl_version(curl: str) -> tuple[tuple[int, ...], str]:
    first = subprocess.run([curl, "--version"], capture_output=True, text=True, timeout=10).stdout.splitlines()[0]
    m = re.match(r"curl (\d+)\.(\d+)\.(\d+)", first)
    return (tuple(int(x) for x in m.groups()) if m else (0, 0, 0)), first


@dataclass
class Tool:
    """How to run one client on a URL list, and where its per-URL statuses land."""

    name: str
    argv: Callable[[Path, Path, int], list[str]]  # (url file, curl config, K) -> argv
    result_stream: str  # "stdout" or "stderr"
    kind: str  # "json" (fetchpool records), "codes" (one status per URL) or "counts" ("STATUS COUNT" lines)
    urls_on_stdin: bool = False  # the URL file is the tool's stdin (xargs)
    engine: str | None = None  # its label in the engines section: the --engine it runs, or what it stands for


def fetchpool_tool(name: str, fetchpool: str, extra: Sequence[str] = (), engine: str | None = None) -> Tool:
    """fetchpool with extra flags before the usual ones: `-c K --json FILE > out`."""
    flags = list(extra)
    return Tool(
        name, lambda f, c, k: [fetchpool, *flags, "-c", str(k), "--json", str(f)], "stdout", "json", engine=engine
    )


def records_tool() -> Tool:
    """A stand-in for reading and checking fetchpool's JSON records of a run made elsewhere."""
    return Tool("fetchpool", lambda f, c, k: [], "stdout", "json")


@dataclass
class Engines:
    """What the benchmarked fetchpool offers beyond threads, read from its --help."""

    choices: tuple[str, ...]  # () when there is no --engine flag
    ray_version: str | None  # Ray importable by fetchpool's own interpreter
    notes: list[str]


def fetchpool_python(fetchpool: str, fallback: str) -> str:
    """The interpreter of a console script (its #! line): it must be the one that imports Ray."""
    try:
        with open(fetchpool, "rb") as f:
            first = f.readline(4096).decode("utf-8", "replace")
    except OSError:
        return fallback
    if first.startswith("#!"):
        path = first[2:].strip().split()[0] if first[2:].strip() else ""
        if path and Path(path).name.startswith("python") and Path(path).exists():
            return path
    return fallback


def detect_engines(fetchpool: str, python: str) -> Engines:
    """Does this fetchpool have `--engine`, with which choices, and can its Python import Ray?"""
    shown = subprocess.run([fetchpool, "--help"], capture_output=True, text=True, timeout=60, env=child_env())
    text = shown.stdout + shown.stderr
    if "--engine" not in text:
        note = "this fetchpool has no `--engine` flag: the processes and Ray variants are skipped"
        return Engines((), None, [note])
    found = re.search(r"--engine\s*\[([a-z|]+)\]", text)
    choices = tuple(found.group(1).split("|")) if found else ("threads", "processes", "ray")
    notes = []
    ray = None
    if "ray" in choices:
        probe = subprocess.run(
            [fetchpool_python(fetchpool, python), "-c", "import ray; print(ray.__version__)"],
            capture_output=True,
            text=True,
            timeout=120,
            env=child_env(),
        )
        if probe.returncode == 0:
            ray = probe.stdout.strip()
        else:
            notes.append(
                "Ray is not importable by fetchpool's Python: the Ray variant is skipped (pip install 'fetchpool[ray]')"
            )
    return Engines(choices, ray, notes)


def aiohttp_version(python: str, install: bool) -> str | None:
    """aiohttp's version in `python`'s environment; with `install`, pip-install it there first."""
    probe = [python, "-c", "import aiohttp; print(aiohttp.__version__)"]
    found = subprocess.run(probe, capture_output=True, text=True, timeout=60, env=child_env())
    if found.returncode != 0 and install:
        log(f"installing aiohttp into {python}'s environment (benchmark only) ...")
        done = subprocess.run(
            [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "aiohttp"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise SystemExit(f"run.py: pip install aiohttp failed:\n{done.stderr[-2000:]}")
        found = subprocess.run(probe, capture_output=True, text=True, timeout=60, env=child_env())
    return found.stdout.strip() if found.returncode == 0 else None


def make_tools(
    fetchpool: str,
    wanted: list[str],
    python: str,
    engines: Engines,
    install_aiohttp: bool = False,
    engine_args: Sequence[str] = (),
) -> tuple[list[Tool], dict[str, str]]:
    """The tools; `python` runs the scripts (the interpreter of fetchpool's own environment).

    When fetchpool has `--engine`, its plain row passes `--engine threads` explicitly, so
    the engine ratios compare named engines, whatever the default becomes; `engine_args`
    (say `--processes 2`) go to the processes and Ray variants only.
    """
    versions: dict[str, str] = {}
    versions["fetchpool"] = subprocess.run(
        [fetchpool, "--version"], capture_output=True, text=True, timeout=30, env=child_env()
    ).stdout.strip()
    threads = ["--engine", "threads"] if "threads" in engines.choices else []
    tools: dict[str, Tool] = {
        "fetchpool": fetchpool_tool("fetchpool", fetchpool, threads, "threads"),
        "baseline": Tool(
            "baseline",
            lambda f, c, k: [python, str(HERE / "baseline_threadpool.py"), str(f), "-k", str(k)],
            "stdout",
            "codes",
        ),
    }
    if "processes" in engines.choices:
        tools["fetchpool-processes"] = fetchpool_tool(
            "fetchpool-processes", fetchpool, ["--engine", "processes", *engine_args], "processes"
        )
    if SPLIT_PARTS > 1 and shutil.which("split"):
        tools["fetchpool-split"] = Tool(
            "fetchpool-split",
            lambda f, c, k: (
                ["sh", "-c", SPLIT_SH, "sh", fetchpool, str(max(1, k // SPLIT_PARTS)), str(SPLIT_PARTS)]
                + [str(f), str(f.parent), *threads]
            ),
            "stdout",
            "json",
            engine=f"{SPLIT_PARTS} × threads, list split (reference)",
        )
    if engines.ray_version is not None:
        tools["fetchpool-ray"] = fetchpool_tool("fetchpool-ray", fetchpool, ["--engine", "ray", *engine_args], "ray")
        versions["ray"] = engines.ray_version
    if "aiohttp" in wanted:
        aiohttp = aiohttp_version(python, install_aiohttp)
        if aiohttp is None:
            loud(f"aiohttp is not importable by {python}: the aiohttp rows are skipped; {AIOHTTP_HINT}")
        else:
            versions["aiohttp"] = aiohttp
            tools["aiohttp"] = Tool(
                "aiohttp",
                lambda f, c, k: [python, str(HERE / "baseline_aiohttp.py"), str(f), "-k", str(k)],
                "stdout",
                "counts",
            )
    curl = shutil.which("curl")
    if curl is None:
        loud("curl not found: the curl columns are skipped (apt-get install curl)")
    else:
        version, line = curl_version(curl)
        versions["curl"] = " ".join(line.split()[:4])  # curl 7.88.1 (x86_64-pc-linux-gnu) libcurl/7.88.1
        if version >= CURL_PARALLEL_MIN:
            tools["curl-parallel"] = Tool(
                "curl-parallel",
                lambda f, c, k: [
                    curl,
                    "-s",
                    "--parallel",
                    "--parallel-max",
                    str(k),
                    "-w",
                    "%{http_code}\\n",
                    "-K",
                    str(c),
                ],
                "stdout",
                "codes",
            )
        else:
            loud(f"{line.split()[0:2]} has no --parallel (needs >= 7.66): curl-parallel skipped")
        if shutil.which("xargs"):
            # Each curl gets 50 URLs. One `-o /dev/null` covers only the first URL (the other 49
            # bodies would land in stdout among the status codes), so 50 are given, one per URL.
            # With stdout a file, curl buffers its -w lines and writes them in one go at exit,
            # so parallel curls do not interleave them (stderr is unbuffered and does).
            discard = ["-o", "/dev/null"] * XARGS_BATCH
            tools["xargs-curl"] = Tool(
                "xargs-curl",
                lambda f, c, k: [
                    "xargs",
                    "-P",
                    str(k),
                    "-n",
                    str(XARGS_BATCH),
                    curl,
                    "-s",
                    "-w",
                    "%{http_code}\\n",
                    *discard,
                ],
                "stdout",
                "codes",
                urls_on_stdin=True,
            )
    found = subprocess.run(
        [python, "-c", "from importlib.metadata import version as v; print(v('requests'), v('urllib3'))"],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(),
    )
    if found.returncode != 0:
        raise SystemExit(f"run.py: `requests` is not importable by {python}; run with the venv's python")
    versions["requests"], versions["urllib3"] = found.stdout.split()
    versions["python for the scripts and start-up references"] = (
        python if python == sys.executable else f"{python} (the snapshot's own venv, removed after the run)"
    )
    return [tools[name] for name in wanted if name in tools], versions
