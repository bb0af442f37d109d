"""The ray engine: the processes engine on `ray.util.multiprocessing.Pool`, for a cluster.

Ray is imported only here, only when `--engine ray` is chosen; without it the user gets
one line naming the extra to install. Facts of Ray's Pool this relies on (checked in its
source, `python/ray/util/multiprocessing/pool.py`): the initializer runs in the actor's
`__init__`, which the Pool waits for (`ping`), so it must return (here it starts serving
on a thread); it cannot set module globals (#37705), which nothing here needs; and the
Pool never calls `ray.shutdown()`, so a Ray this run started is shut down here. Ray does
not restart a dead actor: the run goes on with the others.

What `ray.init` does to the process that this module undoes or prevents (Ray 2.x source):
- it prints to stdout: `listen_error_messages` in `_private/worker.py` writes "(raylet) A
  worker died..." to `sys.stdout`, and the processes it starts inherit fd 1. So fd 1 is
  given to stderr for the whole run and the records get a copy of stdout of their own;
- it takes SIGTERM: `ray.init` sets a handler that exits 15, and the driver's core worker
  installs absl's failure handler, which dumps a stack and aborts. Neither is let in;
- its servers are in the run's process group, so a signal to the job killed them under
  `ray.init`'s waits: here each starts a session of its own (`_servers_apart`);
- its processes outlive a raylet that died first, and all of them a run that ended
  without shutting Ray down: a local run finds them by its folder and kills them, and so
  does its watchdog once the run has ended (`raywatch`);
- it turns 127.0.0.1 into the machine's address (`services.resolve_ip_for_localhost`,
  unless `ray_constants.ENABLE_RAY_CLUSTER` is off), so its servers would listen on every
  interface; with it off for a local or loopback run they listen on 127.0.0.1 only;
- it retries an unreachable address for minutes (20 tries of a 30 s wait in
  `Node._init_gcs_client`); a join here gives up after a few seconds;
- for a local cluster it writes a token to ~/.ray/auth_token, and a driver joining an
  address sends none (`_private/authentication/authentication_token_setup.py`): a local
  run uses a token of its own, in its environment only, and a join refused for want of
  a token tries once more with the one Ray's loader finds;
- its Pool's actors reserve no CPU, so Ray would crowd them onto one node, also onto a
  head kept free of work (`--num-cpus=0`): here each reserves one and Ray spreads them.
  They may run on any machine of the cluster and connect back to this one at the address
  the cluster knows it by (its node's address: a driver always runs on a node).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from ..options import Options, OptionsError
from . import raywatch

EXTRA = "fetchpool's ray extra: pip install '.[ray]' in its source folder"  # not on PyPI: the name could be anyone's
CONNECT_TIMEOUT_S = 2  # each of Ray's connect steps when joining; about 3x this in all
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
PLACE_TIMEOUT = 30  # for the cluster to give the workers their CPUs


_FOLDERS: set[str] = set()  # temp folders of local Rays not yet shut down: removed by a command's exit


def remove_folders() -> None:
    """A command exiting without shutting down its local Ray (a stop during its start):
    kill every process of it, then remove its folder (its watchdog checks again after)."""
    while _FOLDERS:
        folder = _FOLDERS.pop()
        raywatch.kill_marked(folder, _ray_dir())
        shutil.rmtree(folder, ignore_errors=True)


class RayUnavailable(RuntimeError):
    """No Ray to run on: the cluster of `--ray-address` cannot be joined, or a local Ray
    cannot start. The run cannot begin."""


def check_ray() -> None:
    """Raise a usage-level error when Ray is not installed."""
    if importlib.util.find_spec("ray") is None:
        raise OptionsError(f"--engine ray needs Ray, which is not installed: {EXTRA}")


def check_address(address: str | None) -> None:
    """`auto`, or HOST:PORT with a port of 1 to 65535; else a usage error."""
    if address is None or address == "auto":
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in address:
        raise OptionsError(f"must be auto or HOST:PORT, got {address!r}", "ray_address")


def records_stdout(stream: TextIO) -> TextIO:
    """A stream on a copy of stdout for the records; fd 1 then goes to stderr, for Ray.

    Whatever Ray or its processes write to stdout (Python's `sys.stdout` or fd 1) lands
    on stderr, so stdout carries only records. A stream that is not the process's fd 1
    (a test's buffer, `-o FILE`) is returned as it is.
    """
    try:
        if stream.fileno() != 1:
            return stream
        stream.flush()
        records = os.dup(1)
    except (AttributeError, OSError, ValueError):
        return stream
    try:
        os.dup2(2, 1)
    except OSError:  # no stderr: Ray's output goes nowhere
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    return open(records, "w", encoding=stream.encoding, errors=stream.errors, closefd=True)


class RayPools:
    """A Pool-API factory over Ray, and the cluster it runs on: `join` starts a local Ray
    for the run or joins `address`, the call starts the Pool, `leave` ends both."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self.started = False
        self.temp_dir: str | None = None
        self.joined = address  # the HOST:PORT joined, as the user will know it
        self._group: Any = None  # the placement group holding the workers' CPUs
        self._kept: dict[str, str | None] = {}  # the environment as it was before the run
        self._restore_output: Callable[[], None] | None = None
        self._watchdog: Any = None  # what ends the local Ray if this process cannot

    def join(self, processes: int) -> tuple[str, int]:
        """Start a local Ray for `processes` workers, or join the cluster of `address`.

        Returns the address the cluster knows this machine by, where its workers on any
        machine connect back, and the number of worker processes: `processes`, or for 0
        (a join without `--processes`) the CPUs the cluster has free.
        """
        if "RAY_USAGE_STATS_ENABLED" not in os.environ:
            self._set("RAY_USAGE_STATS_ENABLED", "0")  # no usage report from a run
        if self.address is None and "RAY_AUTH_MODE" not in os.environ:
            # token authentication with a token only this process and its children know
            # (Ray would otherwise write one to ~/.ray/auth_token)
            self._set("RAY_AUTH_MODE", "token")
            self._set("RAY_AUTH_TOKEN", secrets.token_hex(32))
        try:
            with _settings(self._settings()), _run_keeps_signals():
                import ray

                if not ray.is_initialized():
                    _reread_settings()
                    self._silence_cluster_errors()
                    self._init(ray, processes)
        except ImportError as exc:  # installed but broken: a half-done upgrade, a stray `ray` module
            raise RayUnavailable(f"cannot import Ray: {_reason(exc)} (reinstall it: {EXTRA})") from exc
        return str(ray.util.get_node_ip_address()), self._processes(ray, processes)

    def _processes(self, ray: Any, asked: int) -> int:
        """`asked`, or the cluster's free CPUs: each worker holds one, so Ray places them
        where CPUs are free, and a run never waits for CPUs that other work holds. (A
        refusal leaves the cluster through the engine's shutdown, as every failed start.)"""
        free = int(ray.available_resources().get("CPU", 0))
        if free and asked <= free:
            return asked or free
        total = int(ray.cluster_resources().get("CPU", 0))
        where = self._where()
        if not free:
            held = f"its {total} CPUs are all held by other work" if total else "it has no CPU"
            raise RayUnavailable(f"{where} has no CPU free for a worker process ({held})")
        raise RayUnavailable(
            f"the run asks for {asked} worker processes, but {where} has {free} CPU{'s' if free > 1 else ''} free "
            f"(one per worker; ask for at most {free})"
        )

    def __call__(self, processes: int, initializer: Any, initargs: tuple[Any, ...]) -> Any:
        """The Pool: `processes` actors of one CPU each, spread over the cluster's machines.

        Their CPUs are reserved first, within PLACE_TIMEOUT: Ray's Pool waits for its
        actors without a limit, and the CPUs counted free may be taken meanwhile (or be
        fractions on several machines, none of which holds a whole one).
        """
        import ray
        from ray.util.multiprocessing import Pool
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        self._group = ray.util.placement_group([{"CPU": 1}] * processes, strategy="SPREAD")
        try:
            ray.get(self._group.ready(), timeout=PLACE_TIMEOUT)
        except ray.exceptions.GetTimeoutError as exc:
            raise RayUnavailable(
                f"{self._where()} could not give {processes} worker processes one CPU each "
                f"within {PLACE_TIMEOUT:.0f} s (other work holds them)"
            ) from exc
        remote = {"num_cpus": 1, "scheduling_strategy": PlacementGroupSchedulingStrategy(self._group)}
        try:
            return Pool(processes, initializer, initargs, ray_remote_args=remote)
        except ValueError as exc:  # more processes than the cluster has CPUs
            raise RayUnavailable(f"the Ray cluster cannot take the run: {_reason(exc)}") from exc
        except ray.exceptions.RayActorError as exc:  # a worker ended in its initializer
            host, port = initargs[1]
            raise RayUnavailable(
                f"a worker process could not start, or could not connect back to this machine at {host}:{port} "
                "(can every machine of the cluster reach it on any port?)"
            ) from exc

    def _where(self) -> str:
        return f"the Ray cluster at {self.joined}" if self.address else "the local Ray"

    def _silence_cluster_errors(self) -> None:
        """Drop the error lines the driver's listener prints for the whole cluster, and the
        tracebacks of Ray's own threads in this process.

        `listen_error_messages` (`_private/worker.py`) prints every "(raylet) A worker
        died..." it hears, including for actors of runs that ended before this one
        (their messages carry no job id). A worker of this run that dies is already an
        `internal` record naming its process; the rest is Ray's logs' business. That
        listener dies with an `RpcError` traceback when the run kills its local Ray (a
        stop while Ray starts): `ray.shutdown()` joins it before the hook is put back.
        """
        import ray._private.worker as ray_worker

        echo = ray_worker.print_to_stdstream
        hook = threading.excepthook

        def restore() -> None:
            ray_worker.print_to_stdstream = echo
            threading.excepthook = hook

        self._restore_output = restore

        def quiet(data: dict[str, Any], ignore_prefix: bool) -> None:
            if data.get("pid") != "raylet":
                echo(data, ignore_prefix)

        def unraised(args: Any) -> None:
            if args.thread is None or not args.thread.name.startswith("ray_"):
                hook(args)

        ray_worker.print_to_stdstream = quiet
        threading.excepthook = unraised

    def _settings(self) -> dict[str, str]:
        """Environment for `ray.init` only: loopback when local, short waits when joining.

        The driver's core worker, at `ray.shutdown()`, waits up to 5 s to send its task
        events (for Ray's dashboard) to a GCS that a signal to the whole job may have
        killed already: a tenth of a second is its due.
        """
        flush = {"RAY_task_events_shutdown_flush_timeout_ms": "100"}
        if self.address is None:  # the processes it starts read it too
            return {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", **flush}
        wait = str(CONNECT_TIMEOUT_S)
        return {
            **flush,
            "RAY_gcs_rpc_server_connect_timeout_s": wait,
            "RAY_py_gcs_connect_timeout_s": wait,
            "RAY_gcs_server_port_wait_time_s": "1",  # one try of the connect, not 20
        }

    def _init(self, ray: Any, processes: int) -> None:
        try:
            if self.address is None:
                self.temp_dir = tempfile.mkdtemp(prefix="fetchpool-ray-", dir=_temp_root())
                _FOLDERS.add(self.temp_dir)
                self._watchdog = raywatch.start(self.temp_dir, _ray_dir())
                self._set(raywatch.MARK, self.temp_dir)  # every process of this Ray inherits it
                with _loopback(True), _servers_apart():
                    # "local", not None: a RAY_ADDRESS in the environment must not make this a join
                    ray.init(
                        address="local",
                        num_cpus=processes,
                        include_dashboard=False,
                        _node_ip_address="127.0.0.1",
                        _temp_dir=self.temp_dir,
                        log_to_driver=False,
                        configure_logging=False,
                    )
                self.started = True
            else:
                self._join(ray)
        except BaseException as exc:
            self.leave()
            if isinstance(exc, Exception) and not isinstance(exc, RayUnavailable):
                raise RayUnavailable(f"cannot start a local Ray: {_reason(exc)}") from exc  # the cause for --traceback
            raise

    def _join(self, ray: Any) -> None:
        """Join `address`; what Ray says while failing is replaced by one line naming it.

        A cluster started with token authentication refuses a driver without
        RAY_AUTH_MODE=token, and one without it loses the actors of a driver with it: so
        the first try goes as the environment says, and a refused one once more with the
        token Ray's loader finds (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token).
        """
        with _stderr_captured() as said:
            try:
                target = _target(self.address)
                self.joined = f"{target} (found by auto)" if self.address == "auto" else target
                _resolves(_host(target))
                init = dict(address=target, log_to_driver=False, configure_logging=False)
                with _loopback(_host(target) in LOOPBACK):
                    try:
                        ray.init(**init)
                    except Exception as exc:
                        if "RAY_AUTH_MODE" in os.environ or not _refused(exc):
                            raise
                        said.forget()
                        self._set("RAY_AUTH_MODE", "token")
                        _reread_settings()
                        ray.init(**init)
                self.started = True  # to disconnect at the end: the cluster stays up
            except Exception as exc:  # noqa: BLE001 - every way of failing is "cannot join"
                said.wanted = False
                raise RayUnavailable(f"cannot join the Ray cluster at {self.joined}: {_reason(exc)}") from exc

    def leave(self) -> None:
        """Shut down the local Ray this run started (or leave the cluster it joined), and
        remove the run's temporary files.

        A local Ray's processes are SIGKILLed by their mark, also those of a start that
        failed half-way: `ray.shutdown()` would SIGTERM its servers one by one with a
        second's wait each (3 s or more once a SIGTERM to the whole job reached them), and
        not the agents or workers of a raylet that died first. It then only disconnects.
        """
        if self.temp_dir is not None:
            raywatch.kill_marked(self.temp_dir, _ray_dir())
        if self.started:
            import ray

            if self.address is not None and self._group is not None:  # a joined cluster frees the run's CPUs at once
                try:
                    ray.util.remove_placement_group(self._group)
                except Exception:  # noqa: BLE001 - the cluster may be gone; it frees them with the job
                    pass
            self._group = None
            ray.shutdown()
            self.started = False
        if self._restore_output is not None:
            self._restore_output()
            self._restore_output = None
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            _FOLDERS.discard(self.temp_dir)
            self.temp_dir = None
        raywatch.stop(self._watchdog)
        self._watchdog = None
        for name, value in self._kept.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._kept = {}

    def _set(self, name: str, value: str) -> None:
        """Set an environment variable for the run (Ray's children read it), as it was after."""
        self._kept.setdefault(name, os.environ.get(name))
        os.environ[name] = value


def _ray_dir() -> str:
    """Ray's package folder: where every program and script of a Ray process lives."""
    spec = importlib.util.find_spec("ray")
    return os.path.dirname(spec.origin) if spec is not None and spec.origin else os.sep + "nonexistent"


def _temp_root() -> str:
    """Where Ray itself would put its folder: its socket paths must stay short (107 bytes)."""
    if "RAY_TMPDIR" in os.environ:
        return os.environ["RAY_TMPDIR"]
    if sys.platform.startswith("linux") and "TMPDIR" in os.environ:
        return os.environ["TMPDIR"]
    return "/tmp" if sys.platform.startswith(("linux", "darwin")) else tempfile.gettempdir()


def _target(address: str | None) -> str:
    """The HOST:PORT to join; for `auto`, the one Ray finds (RAY_ADDRESS, else the cluster
    `ray start` last started here, else any Ray running here)."""
    if address != "auto":
        return str(address)
    from ray._private.services import get_ray_address_from_environment

    return str(get_ray_address_from_environment("auto", None))


@contextmanager
def _loopback(on: bool) -> Iterator[None]:
    """With `on`, Ray keeps 127.0.0.1 as this node's address instead of the machine's."""
    from ray._private import ray_constants

    kept = ray_constants.ENABLE_RAY_CLUSTER
    said = os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")  # read once, when Ray was imported
    usual = said.lower() in ("1", "true") if said is not None else not ray_constants.IS_WINDOWS_OR_OSX
    ray_constants.ENABLE_RAY_CLUSTER = False if on else usual
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = kept


def _host(address: str) -> str:
    return address.rpartition(":")[0]


def _resolves(host: str) -> None:
    """Fail a join at once, in its own words, when the host's name does not resolve
    (Ray would retry it for seconds and then say that nothing answered)."""
    try:
        socket.getaddrinfo(host.strip("[]"), None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConnectionError(f"the name {host} does not resolve ({exc.strerror})") from exc
    except (OSError, UnicodeError):  # no resolver to ask, or an odd name: Ray says what it finds
        pass


def _chain(exc: BaseException) -> str:
    """The text of `exc` and of what caused it (Ray wraps the auth error in two others)."""
    texts: list[str] = []
    while exc is not None and len(texts) < 10:
        texts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return "\n".join(texts)


def _refused(exc: BaseException) -> bool:
    return any(word in _chain(exc) for word in ("InvalidAuthToken", "AuthenticationError", "Unauthenticated"))


def _reason(exc: BaseException) -> str:
    """What went wrong, in a few words."""
    if _refused(exc):
        return (
            "its token authentication refused this run: give it the cluster's token "
            "(RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)"
        )
    text = str(exc).strip()
    if isinstance(exc, ConnectionError) and text.startswith("Failed to connect"):
        return f"no Ray cluster answered there within {3 * CONNECT_TIMEOUT_S} s"
    if text.startswith("Could not find any running Ray instance"):  # `auto`; Ray's advice names its own flag
        return "no running Ray found on this machine (start one with `ray start --head`, or give HOST:PORT)"
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def _reread_settings() -> None:
    """Make Ray's core read the environment set here again (Ray does so in
    `_enable_token_auth`): an earlier `import ray` read it already."""
    import ray._raylet

    core: Any = ray._raylet
    if not hasattr(core, "AuthenticationTokenLoader"):  # a Ray without token authentication
        return
    core.Config.initialize("")
    core.AuthenticationTokenLoader.instance().reset_cache()


@contextmanager
def _settings(settings: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block, as they were after it."""
    kept = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in kept.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _run_keeps_signals() -> Iterator[None]:
    """Ctrl-C and SIGTERM stay the run's while `ray.init` runs and after it.

    The driver's core worker would install absl's failure handler for SIGTERM (a stack
    dump, then abort: exit 134), and ray.init its own "exit 15" one. A SIGTERM to the
    whole job in the seconds the driver registers then aborted the command before its
    stop could kill the workers Ray had started, which lived on. Without them the
    signal reaches Python's handler, whose wakeup byte the stop watcher acts on at once.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kept = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    utils = _ray_utils()
    setter = getattr(utils, "set_sigterm_handler", None)
    if setter is not None:
        utils.set_sigterm_handler = lambda handler: None  # ray.init's "exit 15" handler
    from ray._private import ray_constants

    failure_handler = ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER
    ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = True  # the driver's only: read as its core worker starts
    try:
        yield
    finally:
        ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = failure_handler
        if setter is not None:
            utils.set_sigterm_handler = setter
        for signum, handler in kept.items():
            if handler is not None:
                signal.signal(signum, handler)


@contextmanager
def _servers_apart() -> Iterator[None]:
    """Each process `ray.init` starts goes in a session of its own.

    A signal to the job's process group (a terminal's Ctrl-C, `timeout`) then reaches the
    run alone, which stops its Ray itself. Before, a SIGTERM to the job also killed the
    raylet that the driver was registering with, inside `ray.init`, where Ray holds the
    GIL: nothing of the run could act, and Ray exited 1 some 10-30 s later (as it still
    does when systemd signals every process of a service at that moment). The servers
    still die with the run (Ray's PR_SET_PDEATHSIG, set in the pre-exec hook wrapped
    here), and what they start (agents, workers) shares their session.
    """
    utils = _ray_utils()
    shared = getattr(utils, "set_kill_on_parent_death_linux", None)
    if shared is None:  # another Ray: its processes stay in the run's session
        yield
        return

    def apart() -> None:
        shared()
        os.setsid()

    utils.set_kill_on_parent_death_linux = apart
    try:
        yield
    finally:
        utils.set_kill_on_parent_death_linux = shared


def _ray_utils() -> Any:
    import ray._private.utils

    return ray._private.utils


class _Said:
    """What went to fd 2 while it was captured; written out at the end if still wanted."""

    def __init__(self, file: Any) -> None:
        self.file, self.wanted = file, True

    def forget(self) -> None:
        """Drop what was said so far (fd 2 shares the file's offset, so it starts over)."""
        self.file.truncate(0)
        self.file.seek(0)


@contextmanager
def _stderr_captured() -> Iterator[_Said]:
    """fd 2 into a temporary file for the block; written out after it unless unwanted.

    Ray's core logs a line per failed connect attempt straight to fd 2.
    """
    sys.stderr.flush()
    kept = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        said = _Said(capture)
        try:
            yield said
        finally:
            os.dup2(kept, 2)
            os.close(kept)
            if said.wanted:
                capture.seek(0)
                _write_all(2, capture.read())


def _write_all(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data) :]
    except OSError:
        pass


def ray_engine(options: Options) -> Any:
    check_ray()
    from .engines import PoolEngine

    pools = RayPools(options.ray_address)
    return PoolEngine(options, pools, cluster=pools, respawns=False)  # Ray does not restart the Pool's actors
