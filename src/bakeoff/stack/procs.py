"""Start long-running servers detached, wait until they answer, stop them by pid.

Each server runs in its own session (process group), so stopping it also stops the
processes it started (uvicorn workers, Dask nannies, Prefect flow runs), and the pid file
records its command line, so a stale pid that the system gave to another program is
never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bakeoff.errors import BakeoffError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    """Whether something already listens on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def spawn(cmd: list[str], log: Path, env: dict[str, str], cwd: Path | None = None) -> int:
    """Start `cmd` detached (its own session), output appended to `log`.

    Args:
        cmd: The command line.
        log: Its log file (created with its folder).
        env: Its full environment.
        cwd: Its working directory (default: ours).

    Returns:
        Its pid.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=cwd, start_new_session=True,
        )  # fmt: skip
    return proc.pid


def alive(pid: int, cmd: list[str]) -> bool:
    """Whether `pid` runs and is still the program started as `cmd` (not a reused pid)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        # Console scripts re-exec as `python .../mlflow ...`: compare the arguments' tail.
        return proc.cmdline()[-len(cmd) + 1 :] == cmd[1:]
    except psutil.Error:
        return False


def stop(servers: list[tuple[int, list[str]]], timeout: float = 30.0) -> None:
    """SIGTERM the process groups of `servers` ((pid, cmd) of each, if it is still `cmd`) all
    at once, then wait for them; SIGKILL what is left after `timeout`.

    The processes are taken, by identity, before any signal: a group's pid can be reused by
    a new session (pids wrap quickly on a busy machine), which a second `killpg` would hit.
    """
    import psutil

    groups = [pid for pid, cmd in servers if alive(pid, cmd)]
    members = [p for p in psutil.process_iter() if _in_group(p, groups)]
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
    _, left = psutil.wait_procs(members, timeout=timeout)
    for proc in left:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()  # psutil checks it is still the same process, not a reused pid
    psutil.wait_procs(left, timeout=5)


def _in_group(proc: Any, pgids: int | list[int]) -> bool:
    import psutil

    pgids = [pgids] if isinstance(pgids, int) else pgids
    try:
        return os.getpgid(proc.pid) in pgids and proc.status() != psutil.STATUS_ZOMBIE
    except (ProcessLookupError, psutil.Error):
        return False


def group_listens(pgid: int) -> list[tuple[str, int]]:
    """The (address, port) pairs that the processes of group `pgid` listen on (TCP)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid"]):
        if not _in_group(proc, pgid):
            continue
        with contextlib.suppress(psutil.Error):
            for conn in proc.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    found.append((conn.laddr.ip, conn.laddr.port))
    return found


# The servers bakeoff starts listen on 127.0.0.1: asking them through the user's HTTP(S)_PROXY
# would fail (or reach another machine), and urllib's global opener keeps the proxies it saw
# first for the life of the process.
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def open_local(request: str | urllib.request.Request, timeout: float):
    """`urllib.request.urlopen` of a server on this machine, never through a proxy."""
    return _LOCAL.open(request, timeout=timeout)


def http_ok(url: str) -> bool:
    """Whether GET `url` answers 200."""
    try:
        with open_local(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def wait_until(
    check: Callable[[], bool], what: str, log: Path, pid: int, cmd: list[str], timeout: float
) -> float:
    """Poll `check` until it holds; fail with the log's tail if the process dies or times out.

    Returns:
        The seconds it took.
    """
    start = time.monotonic()
    while time.monotonic() < start + timeout:
        if check():
            return time.monotonic() - start
        if not alive(pid, cmd):
            raise BakeoffError(f"{what} exited while starting; {log}:\n{tail(log)}")
        time.sleep(0.5)
    raise BakeoffError(f"{what} did not answer within {timeout:.0f} s; {log}:\n{tail(log)}")


def tail(log: Path, chars: int = 3000) -> str:
    """The end of a log file."""
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"
