"""`python -m bakeoff.stack up|down|status [--dir .stack] [--free-ports]` (`make stack`).

`up` starts, all on 127.0.0.1: PostgreSQL (cluster in `<dir>/pg`, databases `mlflow` and
`prefect`), an MLflow server on it with proxied artifacts in `<dir>/artifacts`, a Prefect
server on it, the `process` work pool `bakeoff` and one worker, a Dask scheduler and two
Dask workers (one thread each: one backbone at a time). It writes the URLs to `<dir>/env`
(MLFLOW_TRACKING_URI, PREFECT_API_URL, BAKEOFF_DASK_ADDRESS, BAKEOFF_POSTGRES_URL, ...) and the
pids to `<dir>/stack.json`. The data stays in `<dir>` across `down` and `up`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from bakeoff.errors import BakeoffError
from bakeoff.stack import procs
from bakeoff.stack.postgres import Cluster

# dask_dashboard: the scheduler's HTTP server (/health, /metrics; the dashboard pages need
# bokeh, which is not in the lock).
PORTS = {"postgres": 5432, "mlflow": 5000, "prefect": 4200, "dask": 8786, "dask_dashboard": 8787}
POOL = "bakeoff"
DASK_WORKERS = 2
_BIN = Path(sys.executable).parent
# For every process of the stack and its clients (in `<dir>/env`). MLflow's telemetry thread
# sets and pops an environment variable while other threads read the environment: offline,
# a Dask worker's MLflow request can fail with KeyError('_MLFLOW_TELEMETRY_SESSION_ID')
# mid-training. A private stack reports nothing anyway.
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true"}


def _ports(state_dir: Path, free: bool) -> dict[str, int]:
    """The ports of an earlier `up` (stable URLs), else the defaults, else free ones."""
    saved = state_dir / "ports.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    ports = {name: procs.free_port() for name in PORTS} if free else dict(PORTS)
    saved.write_text(json.dumps(ports))
    return ports


def _commands(state_dir: Path, ports: dict[str, int], pg: Cluster) -> dict[str, tuple]:
    """name -> (command, extra environment, health check URL or None)."""
    mlflow_uri = f"http://127.0.0.1:{ports['mlflow']}"
    prefect_api = f"http://127.0.0.1:{ports['prefect']}/api"
    dask = f"tcp://127.0.0.1:{ports['dask']}"
    prefect_home = {"PREFECT_HOME": str(state_dir / "prefect")}
    clients = {"MLFLOW_TRACKING_URI": mlflow_uri, "PREFECT_API_URL": prefect_api, **prefect_home}
    cmds: dict[str, tuple] = {
        "mlflow": (
            [str(_BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(ports["mlflow"]),
             "--workers", "1", "--backend-store-uri", pg.url("mlflow"),
             "--artifacts-destination", str(state_dir / "artifacts")],
            # No server-side jobs (GenAI scorers, prompt optimisation: bakeoff runs none):
            # else the server starts a job runner and 7 huey consumer processes.
            {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, f"{mlflow_uri}/health",
        ),
        "prefect-server": (
            [str(_BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
             "--port", str(ports["prefect"])],
            {**prefect_home, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
             "PREFECT_API_DATABASE_CONNECTION_URL": pg.url("prefect", "postgresql+asyncpg")},
            f"{prefect_api}/health",
        ),
        "dask-scheduler": (
            [str(_BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(ports["dask"]),
             "--dashboard-address", f"127.0.0.1:{ports['dask_dashboard']}"],
            {}, None,
        ),
    }  # fmt: skip
    for i in range(1, DASK_WORKERS + 1):
        cmds[f"dask-worker-{i}"] = (
            [str(_BIN / "dask"), "worker", dask, "--host", "127.0.0.1", "--no-dashboard",
             # Its HTTP server (/health, /metrics) runs even without a dashboard.
             "--dashboard-address", "127.0.0.1:0",
             "--nworkers", "1", "--nthreads", "1", "--name", f"stack-worker-{i}"],
            clients, None,
        )  # fmt: skip
    cmds["prefect-worker"] = (
        [str(_BIN / "prefect"), "worker", "start", "--pool", POOL, "--name", "stack-worker"],
        clients,
        None,
    )
    return cmds


def _env_file(state_dir: Path, ports: dict[str, int], pg: Cluster) -> dict[str, str]:
    env = {
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{ports['mlflow']}",
        "PREFECT_API_URL": f"http://127.0.0.1:{ports['prefect']}/api",
        "BAKEOFF_DASK_ADDRESS": f"tcp://127.0.0.1:{ports['dask']}",
        "BAKEOFF_POSTGRES_URL": pg.url("postgres"),
        **QUIET,
    }
    path = state_dir / "env"
    path.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    path.chmod(0o600)  # it holds the database password
    return env


def up(state_dir: Path, free_ports: bool = False) -> dict:
    """Start the stack (see the module docstring); on any failure stop what started.

    Returns:
        The state written to `<dir>/stack.json`: ports, pids, commands, URLs.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir = state_dir.resolve()
    if (state_dir / "stack.json").is_file():
        old = json.loads((state_dir / "stack.json").read_text())
        if any(procs.alive(pid, old["cmds"][name]) for name, pid in old["pids"].items()):
            raise BakeoffError(f"a stack already runs from {state_dir}: `make stack-down` first")
        (state_dir / "stack.json").unlink()  # left by a reboot or a killed `up`
    ports = _ports(state_dir, free_ports)
    busy = [f"{name} {port}" for name, port in ports.items() if procs.port_in_use(port)]
    if busy:
        raise BakeoffError(
            f"ports in use on 127.0.0.1: {', '.join(busy)}; stop what uses them, or remove "
            f"{state_dir / 'ports.json'} and run `make stack STACK_ARGS=--free-ports`"
        )
    pg = Cluster(state_dir / "pg", ports["postgres"])
    pg.init()
    pg.start()
    state: dict = {"ports": ports, "pids": {}, "cmds": {}}
    try:
        pg.create_database("mlflow")
        pg.create_database("prefect")
        cmds = _commands(state_dir, ports, pg)
        logs = state_dir / "logs"
        env = _env_file(state_dir, ports, pg)

        def start(name: str) -> None:
            cmd, extra, _ = cmds[name]
            pid = procs.spawn(cmd, logs / f"{name}.log", {**os.environ, **QUIET, **extra})
            state["pids"][name], state["cmds"][name] = pid, cmd
            _save(state_dir, state)

        # The servers boot in parallel; the Prefect worker needs the server and the pool.
        for name in cmds:
            if name != "prefect-worker":
                start(name)
        for name, (cmd, _, health) in cmds.items():
            if health:
                procs.wait_until(lambda h=health: procs.http_ok(h), name, logs / f"{name}.log",
                                 state["pids"][name], cmd, timeout=180)  # fmt: skip
        _wait_for_dask(env["BAKEOFF_DASK_ADDRESS"])
        _create_pool(cmds["prefect-worker"][1])
        start("prefect-worker")
    except BaseException:
        _stop_all(state_dir, state, pg)
        raise
    state["urls"] = env
    _save(state_dir, state)
    return state


def _wait_for_dask(address: str) -> None:
    from distributed import Client

    with Client(address, timeout=120) as client:
        client.wait_for_workers(DASK_WORKERS, timeout=120)


def _create_pool(env: dict[str, str]) -> None:
    cmd = [str(_BIN / "prefect"), "work-pool", "create", POOL, "--type", "process"]
    done = subprocess.run(cmd, env={**os.environ, **QUIET, **env}, capture_output=True, text=True)
    if done.returncode != 0 and "already exists" not in done.stdout + done.stderr:
        raise BakeoffError(f"creating the work pool failed: {done.stdout}{done.stderr}")


def _save(state_dir: Path, state: dict) -> None:
    (state_dir / "stack.json").write_text(json.dumps(state, indent=1))


def _stop_all(state_dir: Path, state: dict, pg: Cluster) -> None:
    # PostgreSQL last: the others write to it while they shut down.
    procs.stop([(pid, state["cmds"][name]) for name, pid in state["pids"].items()])
    pg.stop()
    (state_dir / "stack.json").unlink(missing_ok=True)


def down(state_dir: Path) -> None:
    """Stop every server `up` started from `state_dir` (the data stays)."""
    path = state_dir / "stack.json"
    if not path.is_file():
        print(f"no stack runs from {state_dir}")
        return
    state = json.loads(path.read_text())
    _stop_all(state_dir, state, Cluster(state_dir.resolve() / "pg", state["ports"]["postgres"]))
    print(f"stack stopped; its data stays in {state_dir}")


def status(state_dir: Path) -> bool:
    """Print which servers of the stack run; True when all of them do."""
    path = state_dir / "stack.json"
    if not path.is_file():
        print(f"no stack runs from {state_dir}")
        return False
    state = json.loads(path.read_text())
    pg = Cluster(state_dir.resolve() / "pg", state["ports"]["postgres"])
    running = {"postgres": pg.running()}
    running |= {n: procs.alive(pid, state["cmds"][n]) for n, pid in state["pids"].items()}
    for name, ok in running.items():
        print(f"{name:16} {'running' if ok else 'STOPPED'}")
    return all(running.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bakeoff.stack", description=__doc__)
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--dir", type=Path, default=Path(".stack"), help="state folder")
    parser.add_argument("--free-ports", action="store_true", help="pick free ports (first up)")
    args = parser.parse_args(argv)
    try:
        if args.action == "down":
            down(args.dir)
            return 0
        if args.action == "status":
            return 0 if status(args.dir) else 1
        state = up(args.dir, args.free_ports)
    except BakeoffError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    urls, ports, where = state["urls"], state["ports"], args.dir
    print(
        f"bakeoff stack up (state in {where}, logs in {where}/logs):\n"
        f"  PostgreSQL  127.0.0.1:{ports['postgres']} (user bakeoff, password in {where}/env)\n"
        f"  MLflow      {urls['MLFLOW_TRACKING_URI']}\n"
        f"  Prefect     {urls['PREFECT_API_URL'].removesuffix('/api')} (pool {POOL}, 1 worker)\n"
        f"  Dask        {urls['BAKEOFF_DASK_ADDRESS']} ({DASK_WORKERS} workers; /health on "
        f"127.0.0.1:{ports['dask_dashboard']})\n"
        f"Use it from this shell:  set -a; . {where}/env; set +a"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
