"""`--engine ray` end to end: the CLI as a subprocess on a real local Ray, and on a cluster
started with `ray start --head` as the README says.

Every run's processes are the CLI's own session (`start_new_session`) and the processes
of the local Ray it starts, whose servers each lead a session of their own (a signal to
the job must not reach them), known by the run's Ray folder in a RAY_TMPDIR of the
test's: "nothing left behind" is "none of those is left", and "bound to loopback" is
checked on every listening socket those processes own. The
cluster is stopped by SIGTERM to its `ray start --block`: `ray stop` would stop every
Ray on the machine, other people's too.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import cli_env
from servers import Handler, TestServer, running

pytestmark = pytest.mark.ray
pytest.importorskip("ray", reason="the ray extra is not installed")

RAY = str(Path(sys.executable).with_name("ray"))
START_S = 120  # a local Ray starting on a loaded 2-core machine


class HoldHandler(Handler):
    def ep_hold(self, arg: str, query: dict[str, str]) -> None:
        with self.server.lock:
            self.server.held += 1  # type: ignore[attr-defined]
        self.server.release.wait(120)  # type: ignore[attr-defined]
        self.reply(200, b"released\n")


class HoldServer(TestServer):
    """/hold answers only once the test sets `release`; `held` counts the requests waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.RequestHandlerClass = HoldHandler
        self.release = threading.Event()
        self.held = 0


@pytest.fixture
def holding() -> Iterator[HoldServer]:
    with running(HoldServer()) as srv:
        try:
            yield srv  # type: ignore[misc]
        finally:
            srv.release.set()  # type: ignore[attr-defined]


def _held_input(srv: HoldServer, tmp_path: Path, held: int = 4) -> Path:
    path = tmp_path / "urls.txt"
    path.write_text(srv.url("/ok") + "\n" + "".join(srv.url(f"/hold?i={i}") + "\n" for i in range(held)))
    return path


def _env(**extra: str) -> dict[str, str]:
    """The CLI's environment with no RAY_ setting of this process's (a token, an address)."""
    return {k: v for k, v in cli_env(**extra).items() if not k.startswith("RAY_") or k in extra}


_RAY_TEMPS: dict[int, str] = {}  # a run's session -> the RAY_TMPDIR its local Ray's folder is made in


def _spawn(*args: str, **env: str) -> subprocess.Popen[bytes]:
    env.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="fp-", dir="/tmp"))  # short: Ray's socket paths
    command = [sys.executable, "-m", "fetchpool", "--engine", "ray", "--processes", "2", *args]
    proc = subprocess.Popen(  # unbuffered: a line read before communicate() must not take more with it
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(**env), start_new_session=True, bufsize=0
    )
    _RAY_TEMPS[proc.pid] = env["RAY_TMPDIR"]
    return proc


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _session(sid: int) -> dict[int, str]:
    """pid -> command line of every process (zombies too) of the run whose CLI leads session
    `sid`: that session, and the processes of the run's local Ray, each of its servers in a
    session of its own, known by the run's Ray folder (on their command line, or a file of
    it open)."""
    folder = _RAY_TEMPS.get(sid)
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[3]) == sid or (folder and _in_folder(entry, folder)):
                    found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, IndexError, ValueError):
                continue
    return found


def _in_folder(process: Path, folder: str) -> bool:
    if f"{folder}/".encode() in (process / "cmdline").read_bytes():
        return True
    for fd in (process / "fd").iterdir():
        try:
            if os.readlink(fd).startswith(f"{folder}/"):
                return True
        except OSError:
            continue
    return False


def _assert_session_empties(sid: int, within: float = 60) -> None:
    end = time.monotonic() + within
    while left := _session(sid):
        assert time.monotonic() < end, f"left behind: {left}"
        time.sleep(0.1)


def _listening(pids: set[int]) -> list[tuple[int, str]]:
    """(pid, local address) of every TCP socket in LISTEN that one of `pids` holds."""
    addresses: dict[str, str] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                addresses[fields[9]] = fields[1]  # inode -> hex address:port
    found = []
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in addresses:
                found.append((pid, _address(addresses[target[8:-1]])))
    return found


def _address(hexed: str) -> str:
    """/proc/net/tcp's little-endian hex address as text (IPv4-mapped IPv6 as IPv4)."""
    host, port = hexed.split(":")
    raw = bytes.fromhex(host)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    if len(words) == 16:
        if words[:12] == b"\0" * 10 + b"\xff\xff":
            words = words[12:]
        else:
            return f"[{socket.inet_ntop(socket.AF_INET6, words)}]:{int(port, 16)}"
    return f"{socket.inet_ntoa(words)}:{int(port, 16)}"


def _wait(predicate: Any, within: float, what: str) -> None:
    end = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < end, f"still waiting for {what}"
        time.sleep(0.05)


def _records(out: bytes) -> list[dict[str, Any]]:
    """Every stdout line is a JSON record: nothing of Ray's is mixed in."""
    return [json.loads(line) for line in out.decode().splitlines()]


# -- a local Ray started for the run --------------------------------------------------------------


@pytest.mark.slow
def test_a_killed_actor_gives_internal_records_and_ray_stays_off_stdout(holding, tmp_path) -> None:
    """kill -9 of a worker actor holding URLs: one record per line, the held ones
    `internal` naming its process; Ray's "(raylet) A worker died" never reaches stdout;
    every socket the run's Ray listens on is on 127.0.0.1; nothing is left afterwards."""
    home, temp = tmp_path / "home", Path(tempfile.mkdtemp(prefix="fp-", dir="/tmp"))  # short: Ray's socket paths
    home.mkdir()
    urls = str(_held_input(holding, tmp_path))
    proc = _spawn("-c", "4", "-t", "120", "--retries", "0", urls, HOME=str(home), RAY_TMPDIR=str(temp))
    assert proc.stdout is not None
    try:
        first = json.loads(proc.stdout.readline())
        assert first["url"] == holding.url("/ok") and first["ok"]
        _wait(lambda: holding.held == 4, 60, "4 held URLs")
        run = _session(proc.pid)
        assert any(f"--temp-dir={temp}/fetchpool-ray-" in command for command in run.values()), run
        sockets = _listening(set(run))
        assert sockets and all(address.startswith("127.0.0.1:") for _, address in sockets), sockets
        commands = " ".join(run.values())
        assert "gcs_server" in commands and "raylet" in commands  # the listing saw Ray's servers
        actors = sorted(pid for pid, command in run.items() if command.startswith("ray::PoolActor"))
        assert len(actors) == 2, run
        os.kill(actors[0], signal.SIGKILL)
        lost = [json.loads(proc.stdout.readline())]  # the killed actor's URLs come back at once
        holding.release.set()
        out, err = proc.communicate(timeout=120)
    finally:
        holding.release.set()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 1, err.decode()
    records = [first, *lost, *_records(out)]
    assert sorted(r["line"] for r in records) == [1, 2, 3, 4, 5]
    internal = [r for r in records if r["error"] == "internal"]
    assert internal and lost[0] in internal
    assert all(f"worker process {actors[0]} ended" in r["error_message"] for r in internal)
    assert all(r["ok"] for r in records if r["error"] is None)
    assert b"Traceback" not in err, err.decode()
    _assert_session_empties(proc.pid)
    assert not (home / ".ray").exists()  # the run's token was its own: nothing written to ~/.ray
    assert list(temp.iterdir()) == []  # the run's Ray folder is gone with it
    temp.rmdir()


def _stopped(
    proc: subprocess.Popen[bytes], holding: HoldServer, sig: int, to_group: bool
) -> tuple[bytes, bytes, float]:
    """Send `sig` once the first record is out and 4 URLs are held; stdout, stderr and
    the seconds from the signal to the exit."""
    assert proc.stdout is not None
    try:
        first = json.loads(proc.stdout.readline())
        assert first["url"] == holding.url("/ok")
        _wait(lambda: holding.held == 4, 60, "4 held URLs")
        sent = time.monotonic()
        if to_group:
            os.killpg(proc.pid, sig)  # a terminal's Ctrl-C, `timeout` and systemd reach the whole job
        else:
            proc.send_signal(sig)
        proc.wait(timeout=60)
        took = time.monotonic() - sent
        out, err = proc.communicate(timeout=60)
    finally:
        holding.release.set()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert _records(out) == []  # the held URLs are abandoned, not written half-done
    assert b"received at time" not in err and b"Traceback" not in err and b"logging.cc" not in err, err.decode()
    assert b"interrupted: 1 done, 4 not fetched" in err, err.decode()
    return out, err, took


@pytest.mark.slow
def test_sigterm_to_the_job_stops_the_run_and_its_local_ray_at_once(holding, tmp_path) -> None:
    """As on the other engines: 143, what finished written, no stack dump (Ray's core
    worker would print one and exit 15), and no raylet, gcs_server, agent or actor left.
    SIGTERM to the whole job (as `timeout` and systemd send it) also reaches Ray's
    servers: `ray.shutdown()` then waited 7 s for them; the run ends in well under 5."""
    proc = _spawn("-c", "4", "-t", "120", str(_held_input(holding, tmp_path)))
    _, err, took = _stopped(proc, holding, signal.SIGTERM, to_group=True)
    assert proc.returncode == 143, err.decode()
    assert took < 5, f"exited {took:.1f} s after SIGTERM"
    _assert_session_empties(proc.pid)


@pytest.mark.slow
def test_a_run_killed_with_sigkill_leaves_nothing_of_its_local_ray(holding, tmp_path) -> None:
    """kill -9 of fetchpool alone, mid-run: none of its code runs, so its watchdog (a
    process of its own session) kills the Ray it started and removes its folder. Ray's
    servers die with the run (Ray's fate sharing), not the agents or actors."""
    temp = Path(tempfile.mkdtemp(prefix="fp-", dir="/tmp"))
    proc = _spawn("-c", "4", "-t", "120", str(_held_input(holding, tmp_path)), RAY_TMPDIR=str(temp))
    assert proc.stdout is not None
    try:
        assert json.loads(proc.stdout.readline())["url"] == holding.url("/ok")
        _wait(lambda: holding.held == 4, 60, "4 held URLs")
        assert any(command.startswith("ray::PoolActor") for command in _session(proc.pid).values())
        proc.kill()
        proc.communicate(timeout=60)
    finally:
        holding.release.set()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    _assert_session_empties(proc.pid, within=30)
    _wait(lambda: list(temp.iterdir()) == [], 30, "the run's Ray folder to go")
    temp.rmdir()


# -- --ray-address: a cluster started with `ray start --head`, and addresses that are not one ------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _readme_head(port: int) -> tuple[dict[str, str], list[str]]:
    """The README's loopback `ray start --head` command: its environment, and its words
    with this test's port and this venv's `ray`."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    line = next(x for x in readme.splitlines() if "ray start --head --node-ip-address=127.0.0.1" in x)
    words = shlex.split(line)
    settings = dict(w.split("=", 1) for w in words[: words.index("ray")])
    assert settings == {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"}, line
    command = [RAY, *(f"--port={port}" if w == "--port=6379" else w for w in words[words.index("ray") + 1 :])]
    assert f"--port={port}" in command, line
    return settings, command


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A one-node cluster on 127.0.0.1 with token authentication, started as the README says.

    HOME is the test's, so `ray get-auth-token --generate` writes the token there and not
    into the user's ~/.ray.
    """
    root = Path(tempfile.mkdtemp(prefix="fph-", dir="/tmp"))  # short: Ray's socket paths are at most 107 bytes
    home = root / "home"
    home.mkdir()
    env = _env(HOME=str(home), RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0")  # stopping need not wait 30 s
    subprocess.run([RAY, "get-auth-token", "--generate"], env=env, check=True, capture_output=True, timeout=60)
    port = _free_port()
    settings, command = _readme_head(port)
    command += [f"--temp-dir={root / 'ray'}", "--block"]
    log = (root / "head.log").open("wb")
    proc = subprocess.Popen(
        command, env={**env, **settings}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        _wait(
            lambda: b"Ray runtime started" in (root / "head.log").read_bytes() or proc.poll() is not None,
            START_S,
            "the head",
        )
        assert proc.poll() is None, (root / "head.log").read_text()
        yield {"port": port, "home": home, "root": root, "session": proc.pid, "log": root / "head.log"}
    finally:
        proc.send_signal(signal.SIGTERM)  # `ray start --block` stops its own processes
        try:
            proc.wait(timeout=60)
        finally:
            log.close()
            for pid in _session(proc.pid):  # only what this fixture started
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
    _assert_session_empties(proc.pid)
    shutil.rmtree(root)


@pytest.mark.slow
def test_a_run_on_a_cluster_with_token_auth_sends_its_token(head, server) -> None:
    """The head's token in ~/.ray/auth_token is all the driver needs; the head is on 127.0.0.1."""
    proc = _spawn(
        "--ray-address",
        f"127.0.0.1:{head['port']}",
        server.url("/ok"),
        server.url("/status/404"),
        HOME=str(head["home"]),
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err.decode()
    assert sorted((r["line"], r["status"]) for r in _records(out)) == [(1, 200), (2, 404)]
    assert err == b"", err.decode()  # not a word of Ray's while joining
    assert "Local node IP: 127.0.0.1" in head["log"].read_text()
    sockets = _listening(set(_session(head["session"])))
    assert sockets and all(address.startswith("127.0.0.1:") for _, address in sockets), sockets
    _assert_session_empties(proc.pid)


@pytest.mark.slow
def test_auto_joins_the_cluster_ray_start_left_here(head, server) -> None:
    """`auto` is the cluster in RAY_TMPDIR/ray/ray_current_cluster, written by `ray start`."""
    proc = _spawn("--ray-address", "auto", server.url("/ok"), HOME=str(head["home"]), RAY_TMPDIR=str(head["root"]))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert [r["status"] for r in _records(out)] == [200]


@pytest.mark.slow
def test_head_one_exits_141_quietly_on_a_cluster(head, server, tmp_path) -> None:
    path = tmp_path / "many.txt"
    path.write_text("".join(server.url(f"/ok?i={i}") + "\n" for i in range(3000)))
    address = f"127.0.0.1:{head['port']}"
    cmd = f"{sys.executable} -m fetchpool --engine ray --processes 2 --ray-address {address} {path} | head -1"
    proc = subprocess.Popen(
        ["bash", "-c", cmd + "; exit ${PIPESTATUS[0]}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(HOME=str(head["home"])),
        start_new_session=True,
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 141 and err == b"", err.decode()
    assert len(_records(out)) == 1
    _assert_session_empties(proc.pid)


@pytest.mark.slow
def test_ctrl_c_on_a_cluster_stops_the_run_and_its_actors(head, holding, tmp_path) -> None:
    """130, and the run's actors gone from the cluster, which stays up."""
    address = f"127.0.0.1:{head['port']}"
    proc = _spawn(
        "-c", "4", "-t", "120", "--ray-address", address, str(_held_input(holding, tmp_path)), HOME=str(head["home"])
    )
    _, err, _ = _stopped(proc, holding, signal.SIGINT, to_group=True)
    assert proc.returncode == 130, err.decode()
    _assert_session_empties(proc.pid)
    _wait(lambda: not any(c.startswith("ray::PoolActor") for c in _session(head["session"]).values()), 60, "no actor")
    assert any("raylet" in c for c in _session(head["session"]).values())


@pytest.mark.slow
def test_a_run_without_the_token_is_refused_in_one_line(head, server, tmp_path) -> None:
    proc = _spawn("--ray-address", f"127.0.0.1:{head['port']}", server.url("/ok"), HOME=str(tmp_path))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 69 and out == b""
    assert err.decode().splitlines() == [
        f"fetchpool: cannot join the Ray cluster at 127.0.0.1:{head['port']}: its token authentication refused "
        "this run: give it the cluster's token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)"
    ]


@pytest.mark.slow
def test_more_processes_than_the_cluster_has_cpus_free_is_one_line(head, server) -> None:
    """Each worker holds a CPU: asking for more than are free would wait for them."""
    _idle(head)  # the CPUs of an earlier test's actors are free again
    proc = _spawn(
        "--processes", "3", "--ray-address", f"127.0.0.1:{head['port']}", server.url("/ok"), HOME=str(head["home"])
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 69 and out == b""
    assert err.decode().splitlines() == [
        f"fetchpool: the run asks for 3 worker processes, but the Ray cluster at 127.0.0.1:{head['port']} "
        "has 2 CPUs free (one per worker; ask for at most 2)"
    ]
    _assert_session_empties(proc.pid)


@pytest.mark.slow
def test_a_run_on_a_cluster_whose_cpus_another_run_holds_is_one_line(head, holding, tmp_path) -> None:
    """Each worker holds a CPU: a second run finds none free and says so (Ray's Pool would
    raise "Processes in the pool must be >0", or wait for CPUs with more asked)."""
    _idle(head)  # the CPUs of an earlier test's actors are free again
    address = f"127.0.0.1:{head['port']}"
    first = _spawn(
        "-c", "4", "-t", "120", "--ray-address", address, str(_held_input(holding, tmp_path)), HOME=str(head["home"])
    )
    try:
        _wait(lambda: holding.held == 4, 120, "4 held URLs")
        second = subprocess.run(
            [sys.executable, "-m", "fetchpool", "--engine", "ray", "--ray-address", address, holding.url("/ok")],
            capture_output=True,
            env=_env(HOME=str(head["home"])),
            timeout=120,
        )
    finally:
        holding.release.set()
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0 and len(_records(out)) == 5, err.decode()
    assert second.returncode == 69 and second.stdout == b""
    assert second.stderr.decode().splitlines() == [
        f"fetchpool: the Ray cluster at {address} has no CPU free for a worker process "
        "(its 2 CPUs are all held by other work)"
    ]


@pytest.mark.slow
def test_a_joined_clusters_workers_fetch_with_the_runs_proxies(head, server) -> None:
    """Workers start with their node's environment (here the head's `ray start`, which has
    no proxy): they take the run's proxy settings, so records match the other engines."""
    port = server.server_address[1]
    proc = _spawn(
        "--ray-address",
        f"127.0.0.1:{head['port']}",
        f"http://127.0.0.1:{port}/ok",
        f"http://localhost:{port}/ok",
        HOME=str(head["home"]),
        HTTP_PROXY=f"http://127.0.0.1:{_free_port()}",  # nothing listens there
        NO_PROXY="127.0.0.1",
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err.decode()
    records = sorted(_records(out), key=lambda r: r["line"])
    assert [(r["status"], r["error"]) for r in records] == [(200, None), (None, "connect")]


@pytest.mark.slow
def test_a_refusal_found_by_auto_names_the_address_auto_found(head, server, tmp_path) -> None:
    address = f"127.0.0.1:{head['port']}"
    proc = _spawn("--ray-address", "auto", server.url("/ok"), HOME=str(tmp_path), RAY_ADDRESS=address)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 69 and out == b""
    assert err.decode().startswith(
        f"fetchpool: cannot join the Ray cluster at {address} (found by auto): its token authentication refused"
    ), err.decode()


# A second node on this machine, as `ray start --address=HEAD --block` would start it, except
# that `ray start` refuses to add a node while RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 keeps Ray on
# 127.0.0.1 (and without it every node would listen on the machine's own address). It prints its
# line once its CPUs are in the cluster's free resources, which a run counts when it joins.
_SECOND_NODE = """
import signal, sys, time
import ray, ray._private.node, ray._private.state
from ray._private.parameter import RayParams

gcs, cpus, temp = sys.argv[1], int(sys.argv[2]), sys.argv[3]
params = RayParams(
    node_ip_address="127.0.0.1", node_name="second", num_cpus=cpus, temp_dir=temp,
    include_dashboard=False, gcs_address=gcs,
)
node = ray._private.node.Node(params, head=False, shutdown_at_exit=True, spawn_reaper=True)
ray.init(address=gcs, log_to_driver=False, configure_logging=False)
while ray._private.state.available_resources_per_node().get(node.node_id, {}).get("CPU", 0) < cpus:
    time.sleep(0.01)
ray.shutdown()
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("Ray node started", flush=True)
while True:
    time.sleep(1)
"""


@pytest.fixture
def second_node(head: dict[str, Any]) -> Iterator[int]:
    """A second node of 2 CPUs in the head's cluster, in a session of its own: its id."""
    env = {**_env(HOME=str(head["home"])), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"}
    gcs, temp = f"127.0.0.1:{head['port']}", str(head["root"] / "ray")
    proc = subprocess.Popen(
        [sys.executable, "-c", _SECOND_NODE, gcs, "2", temp],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"Ray node started\n"
        yield proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)  # its Node stops its own processes at exit
        try:
            proc.wait(timeout=60)
        finally:
            for pid in _session(proc.pid):
                os.kill(pid, signal.SIGKILL)
    _assert_session_empties(proc.pid)


def _idle(head: dict[str, Any]) -> None:
    _wait(lambda: not _actors(head["session"]), 60, "the actors of earlier runs to end")


def _actors(sid: int) -> int:
    return sum(command.startswith("ray::PoolActor") for command in _session(sid).values())


@pytest.mark.slow
def test_on_a_cluster_of_two_nodes_workers_run_on_both_one_per_free_cpu(head, second_node, holding, tmp_path) -> None:
    """Without --processes a join runs a worker per free CPU of the cluster (2 on the head,
    2 on the second node), and Ray places them by CPU, so the second node's workers
    fetch too: they reach the run at the address the cluster knows its machine by."""
    _idle(head)  # the CPUs of an earlier test's actors are free again
    proc = subprocess.Popen(
        [sys.executable, "-m", "fetchpool", "--engine", "ray", "--ray-address", f"127.0.0.1:{head['port']}"]
        + ["-c", "8", "-t", "120", str(_held_input(holding, tmp_path, held=7))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(HOME=str(head["home"])),
        start_new_session=True,
    )
    try:
        _wait(lambda: holding.held == 7, 120, "7 held URLs")
        # the actors of an earlier test's run may take a moment to go; the placement stays
        _wait(lambda: (_actors(head["session"]), _actors(second_node)) == (2, 2), 60, "2 workers on each node")
    finally:
        holding.release.set()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert sorted(r["line"] for r in _records(out) if r["ok"]) == list(range(1, 9))
    _assert_session_empties(proc.pid)


@pytest.mark.slow
def test_an_address_with_no_ray_is_one_line_within_seconds(server, tmp_path) -> None:
    """A closed port, and a port where something else answers (an HTTP server): Ray would
    retry for minutes (20 tries of a 30 s wait); the run gives up in seconds."""
    ports = [_free_port(), server.server_address[1]]
    procs = [_spawn("--ray-address", f"127.0.0.1:{port}", server.url("/ok"), HOME=str(tmp_path)) for port in ports]
    for port, proc in zip(ports, procs, strict=True):  # side by side: each waits the same 6 s
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 69 and out == b""
        assert err.decode().splitlines() == [
            f"fetchpool: cannot join the Ray cluster at 127.0.0.1:{port}: no Ray cluster answered there within 6 s"
        ]
        _assert_session_empties(proc.pid)


def test_an_address_whose_name_does_not_resolve_says_so_at_once(server, tmp_path) -> None:
    """Ray would retry the name for seconds and then say that nothing answered there."""
    proc = _spawn("--ray-address", "head.invalid:6379", server.url("/ok"), HOME=str(tmp_path))
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 69 and out == b""
    [line] = err.decode().splitlines()
    assert line.startswith(
        "fetchpool: cannot join the Ray cluster at head.invalid:6379: the name head.invalid does not resolve ("
    )
    _assert_session_empties(proc.pid)


@pytest.mark.parametrize("address", ["nonsense", "127.0.0.1:0", "127.0.0.1:", ":6379", "ray://127.0.0.1:10001"])
def test_a_malformed_address_is_a_one_line_usage_error(address: str) -> None:
    proc = _spawn("--ray-address", address, "http://127.0.0.1:9/")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and out == b""
    assert err.decode().splitlines() == [f"fetchpool: --ray-address must be auto or HOST:PORT, got {address!r}"]


def test_auto_with_no_ray_running_says_so_in_fetchpools_words() -> None:
    """Ray's own advice names its `--address` flag, which fetchpool does not have."""
    from fetchpool.pool.rayengine import _reason

    said = "Could not find any running Ray instance. Please specify the one to connect to by setting `--address` flag"
    reason = _reason(ConnectionError(said))
    assert "--address" not in reason and "ray start --head" in reason and "HOST:PORT" in reason


def test_a_ray_that_fails_to_import_is_one_line_and_exit_69(tmp_path) -> None:
    """Not exit 1 (which means URLs failed) with an internal error."""
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "__init__.py").write_text("import ray_core_that_is_missing\n")
    proc = subprocess.run(
        [sys.executable, "-m", "fetchpool", "--engine", "ray", "http://127.0.0.1:9/"],
        capture_output=True,
        env=_env(PYTHONPATH=str(tmp_path)),
        timeout=60,
    )
    assert proc.returncode == 69, proc.stderr.decode()
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and "cannot import Ray" in lines[0] and "pip install '.[ray]'" in lines[0], lines
    assert proc.stdout == b""


def test_without_ray_the_engine_is_a_one_line_usage_error(tmp_path) -> None:
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['ray'] = None  # as if not installed\n")
    proc = _spawn("http://127.0.0.1:9/", PYTHONPATH=str(tmp_path))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and out == b""
    assert err.decode().splitlines() == [
        "fetchpool: --engine ray needs Ray, which is not installed: "
        "fetchpool's ray extra: pip install '.[ray]' in its source folder"
    ]


def test_workers_that_cannot_connect_back_are_one_line_not_a_wait() -> None:
    """A worker that cannot reach the run's listener (a firewall between the machines)
    ends in its initializer: the run says so instead of an internal error."""
    from fetchpool import Options
    from fetchpool.pool import worker
    from fetchpool.pool.rayengine import RayPools, RayUnavailable

    pools = RayPools(None)
    try:
        host, processes = pools.join(1)
        nowhere = (host, _free_port())  # nothing listens there
        with pytest.raises(RayUnavailable, match=f"could not connect back to this machine at {host}:{nowhere[1]}"):
            pools(processes, worker.start, (Options(), nowhere, b"key", 1, False, {}))
    finally:
        pools.leave()


def test_the_environment_set_for_a_run_is_put_back() -> None:
    """A library caller's process keeps its environment: no run's token outlives the run."""
    from fetchpool.pool.rayengine import RayPools

    pools = RayPools(None)
    before = dict(os.environ)
    pools._set("RAY_AUTH_MODE", "token")
    pools._set("RAY_AUTH_TOKEN", "x" * 64)
    assert os.environ["RAY_AUTH_TOKEN"] == "x" * 64
    pools.leave()
    assert dict(os.environ) == before


def test_cluster_error_lines_are_not_echoed_during_a_run(capsys: pytest.CaptureFixture[str]) -> None:
    """The driver's listener prints "(raylet) A worker died" for any actor of the cluster,
    also for runs that ended before this one joined: a run drops those lines (its own
    workers' deaths are records) and puts Ray's printer back at its end."""
    import ray._private.worker as ray_worker

    from fetchpool.pool.rayengine import RayPools

    original, hook = ray_worker.print_to_stdstream, threading.excepthook
    raised: list[str] = []

    def callers(args: Any) -> None:  # the caller's own hook
        raised.append(args.thread.name)

    threading.excepthook = callers
    pools = RayPools(None)
    pools._silence_cluster_errors()
    try:
        ray_worker.print_to_stdstream({"lines": ["A worker died"], "pid": "raylet", "is_err": False}, True)
        ray_worker.print_to_stdstream({"lines": ["from an actor"], "pid": 42, "is_err": False}, True)
        for name in ("ray_listen_error_messages", "not-rays"):  # the listener, when the run kills its Ray
            thread = threading.Thread(target=_raise_rpc_error, name=name)
            thread.start()
            thread.join()
    finally:
        pools.leave()
        after, threading.excepthook = threading.excepthook, hook
    out = capsys.readouterr().out
    assert "A worker died" not in out and "from an actor" in out
    assert raised == ["not-rays"]  # Ray's listener's traceback dropped, the caller's threads' kept
    assert ray_worker.print_to_stdstream is original and after is callers  # both put back


def _raise_rpc_error() -> None:
    raise ConnectionResetError("recvmsg:Connection reset by peer")


@pytest.mark.slow
def test_ctrl_c_while_a_local_ray_starts_exits_130_at_once(tmp_path) -> None:
    """A terminal's Ctrl-C reaches Ray's servers too, so `ray.init` would wait for them for
    ever: the run exits at once instead (nothing was fetched), and removes its Ray folder."""
    temp = Path(tempfile.mkdtemp(prefix="fp-", dir="/tmp"))
    proc = _spawn("http://127.0.0.1:9/", RAY_TMPDIR=str(temp))
    try:
        _wait(lambda: any(p.name.startswith("fetchpool-ray-") for p in temp.iterdir()), START_S, "the run's Ray folder")
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err.decode()
    assert out == b"" and b"Traceback" not in err, err.decode()
    assert list(temp.iterdir()) == []
    temp.rmdir()


def _raylet(sid: int) -> int | None:
    return next((pid for pid, command in _session(sid).items() if "raylet/raylet" in command), None)


WAITING = {"x86_64": ("202", "230"), "aarch64": ("98", "115")}  # futex, clock_nanosleep


def _waiting(pid: int, reads: int = 50) -> bool:
    """The main thread of `pid` is in futex() or clock_nanosleep() at every read for a second:
    `ray.init` waiting for its raylet (in C++, where no Python signal handler runs)."""
    for _ in range(reads):
        try:
            if Path(f"/proc/{pid}/syscall").read_text().split()[0] not in WAITING[platform.machine()]:
                return False
        except (OSError, IndexError):
            return False
        time.sleep(0.02)
    return True


@pytest.mark.slow
@pytest.mark.parametrize("to_group", [False, True], ids=["fetchpool alone", "the whole job"])
def test_sigterm_while_a_local_ray_starts_ends_at_once_leaving_none_of_its_processes(tmp_path, to_group: bool) -> None:
    """SIGTERM before any record, while `ray.init` waits for its raylet (stopped here, so
    the wait lasts): to fetchpool alone (a service manager stopping just the main process),
    or to the whole job (`timeout 3 fetchpool ...`). Python's handler runs only once that
    wait ends, half a minute later; 143 comes within seconds, with no stack dump, and
    nothing of that Ray is left: not the raylet's agents, which outlive a raylet killed
    with the run, nor its folder."""
    temp = Path(tempfile.mkdtemp(prefix="fp-", dir="/tmp"))
    proc = _spawn("http://127.0.0.1:9/", RAY_TMPDIR=str(temp))
    try:
        _wait(lambda: _raylet(proc.pid) is not None, START_S, "the run's raylet")
        raylet = _raylet(proc.pid) or 0
        assert int(_stat(raylet)[3]) not in (proc.pid, os.getsid(0))  # a signal to the job does not reach it
        os.kill(raylet, signal.SIGSTOP)
        if platform.machine() in WAITING:
            _wait(lambda: _waiting(proc.pid), START_S, "ray.init waiting for its raylet")
        sent = time.monotonic()
        if to_group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        took = time.monotonic() - sent
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, err.decode()
    assert took < 5, f"exited {took:.1f} s after SIGTERM"
    assert out == b"" and b"Traceback" not in err and b"SIGTERM received" not in err, err.decode()
    _assert_session_empties(proc.pid)
    assert list(temp.iterdir()) == []
    temp.rmdir()


REGISTERED = """
import ctypes, os, signal, time
import ray._private.worker as worker

with open("/proc/self/cmdline", "rb") as me:
    if b"default_worker.py" in me.read():  # a worker that outlives its raylet: no death signal comes
        ctypes.CDLL(None).prctl(1, 0, 0, 0, 0)  # PR_SET_PDEATHSIG
        open(f"{os.environ['FP_STOPPED']}.{os.getpid()}", "w").close()

connect = worker.connect


def run(program):  # processes of this run's Ray running `program` (a path's end): the raylet
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as command:
                line = command.read()
            argv = line.split(bytes(1))[:2]
            if os.environ["RAY_TMPDIR"].encode() in line and any(arg.endswith(program) for arg in argv):
                found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


def gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def ready():  # workers past that line, by the files they left
    folder, name = os.path.split(os.environ["FP_STOPPED"])
    return [int(entry.rsplit(".", 1)[1]) for entry in os.listdir(folder) if entry.startswith(name + ".")]


def registered(*args, **kwargs):
    done = connect(*args, **kwargs)
    if worker.global_worker.mode == worker.SCRIPT_MODE:  # the run's driver, inside ray.init
        end = time.monotonic() + 120
        while not (workers := ready()) and time.monotonic() < end:
            time.sleep(0.05)
        for pid in workers:  # stuck, as the workers a SIGTERM left hanging in its handler
            os.kill(pid, signal.SIGSTOP)
        for pid in run(b"raylet/raylet"):  # ... which dies first
            os.kill(pid, signal.SIGKILL)
            while gone(pid) is False:  # until its children have a new parent
                time.sleep(0.01)
        with open(os.environ["FP_STOPPED"], "w") as file:
            file.write(" ".join(map(str, workers)))
        os.killpg(0, signal.SIGTERM)  # the whole job, as `timeout` sends it
        time.sleep(60)
    return done


worker.connect = registered
"""


@pytest.mark.slow
def test_sigterm_while_the_driver_registers_leaves_no_worker_behind(tmp_path) -> None:
    """SIGTERM to the whole job once the driver's core worker is up, still inside
    `ray.init`, and the raylet dead before workers it had started, which hang: the core
    worker's failure handler (a stack dump, then abort) must not take the signal, and
    those workers, re-parented when the raylet died, must not outlive the run."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(REGISTERED)
    temp = Path(tempfile.mkdtemp(prefix="fp-", dir="/tmp"))
    stopped = tmp_path / "stopped"
    proc = _spawn("http://127.0.0.1:9/", RAY_TMPDIR=str(temp), PYTHONPATH=str(site), FP_STOPPED=str(stopped))
    try:
        out, err = proc.communicate(timeout=START_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert stopped.read_text(), "no Ray worker had started when the driver registered"
    assert proc.returncode == 143, err.decode()
    assert out == b"" and b"Traceback" not in err and b"SIGTERM received" not in err, err.decode()
    _assert_session_empties(proc.pid)
    assert list(temp.iterdir()) == []
    temp.rmdir()
