"""A PostgreSQL cluster in a folder, on 127.0.0.1 only: init, start, create databases, stop.

Debian's `postgresql` package (`apt-get install postgresql`) puts its programs in
/usr/lib/postgresql/<version>/bin, off the PATH. The server refuses to run as root, so
when bakeoff runs as root the cluster belongs to, and runs as, the `postgres` user that
package creates. Unix sockets are off: clients connect over TCP on loopback with a
password (scram-sha-256), kept in a 0600 file next to the cluster.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bakeoff.errors import BakeoffError

USER = "bakeoff"  # the cluster's superuser; MLflow and Prefect connect as it
_INSTALL = "install it with `sudo apt-get install postgresql` (or `make setup`)"


def bin_dir() -> Path:
    """Where PostgreSQL's server programs are: the newest Debian version, else the PATH."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3])
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise BakeoffError(f"PostgreSQL's initdb was not found: {_INSTALL}")


def _as_owner() -> dict[str, str]:
    """subprocess kwargs to run a server program as `postgres` when we are root."""
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise BakeoffError(f"running as root needs the `postgres` user: {_INSTALL}") from None
    # extra_groups=[]: drop root's supplementary groups too.
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


def _check_reachable(folder: Path) -> None:
    """As root, every parent of the cluster must be searchable by `postgres`."""
    if os.geteuid() != 0:
        return
    uid = pwd.getpwnam("postgres").pw_uid
    for parent in [folder, *folder.parents]:
        st = parent.stat()
        if st.st_uid != uid and not st.st_mode & 0o001:
            raise BakeoffError(
                f"the postgres user cannot reach {folder}: {parent} is not searchable by "
                f"others (mode {oct(st.st_mode & 0o777)}); `chmod o+x {parent}` or put "
                "the stack in another folder (STACK_DIR=...)"
            )


def _run(cmd: list[str], what: str, **kwargs) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, **_as_owner(), **kwargs)
    if done.returncode != 0:
        raise BakeoffError(f"{what} failed: {(done.stderr or done.stdout).strip()[-2000:]}")
    return done.stdout


@dataclass(frozen=True)
class Cluster:
    """A PostgreSQL cluster: `folder/data` (the cluster), `folder/server.log`, the password."""

    folder: Path  # absolute
    port: int

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    @property
    def password_file(self) -> Path:
        return self.folder.parent / f"{self.folder.name}.password"

    def url(self, database: str, driver: str = "postgresql") -> str:
        """A connection URL, e.g. `postgresql://bakeoff:...@127.0.0.1:5432/mlflow`.

        Args:
            database: The database name.
            driver: The scheme: `postgresql` (psycopg 3, what SQLAlchemy 2.1 and MLflow
                pick for it) or `postgresql+asyncpg` (Prefect).
        """
        password = self.password_file.read_text().strip()
        return f"{driver}://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        """Create the cluster if `folder/data` does not hold one yet (keeps existing data)."""
        if (self.data / "PG_VERSION").is_file():
            return
        owner = _as_owner()  # first: says to install PostgreSQL when its user is missing
        self.folder.mkdir(parents=True, exist_ok=True)
        _check_reachable(self.folder)
        if owner:
            shutil.chown(self.folder, owner["user"], owner["group"])
        self.folder.chmod(0o700)
        self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
        self.password_file.chmod(0o600)
        # initdb reads the password from a file the server's user can read; it is removed
        # right after.
        pwfile = self.folder / "initdb.pw"
        pwfile.write_text(self.password_file.read_text())
        if owner:
            shutil.chown(pwfile, owner["user"], owner["group"])
        try:
            _run(
                [str(bin_dir() / "initdb"), "-D", str(self.data), "-U", USER,
                 f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8", "--no-instructions"],
                "initdb",
            )  # fmt: skip
        finally:
            pwfile.unlink()
        with open(self.data / "postgresql.conf", "a") as conf:
            # Loopback only and no Unix socket (its default folder needs root to create).
            conf.write(
                "\n# bakeoff\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
            )

    def start(self, timeout: int = 60) -> None:
        """Start the server on 127.0.0.1:port and wait until it accepts connections."""
        _run(
            [str(bin_dir() / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
             "-o", f"-p {self.port}", "-w", "-t", str(timeout), "start"],
            f"starting PostgreSQL (log: {self.log})",
            # pg_ctl's own children (the server) must not share our terminal's signals.
            start_new_session=True,
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the server (fast shutdown: ends sessions, keeps the data)."""
        if not self.running():  # also after a reboot left a stale postmaster.pid
            return
        _run([str(bin_dir() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
             "stopping PostgreSQL")  # fmt: skip

    def running(self) -> bool:
        """Whether the server of this cluster runs."""
        done = subprocess.run(
            [str(bin_dir() / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True, **_as_owner(),
        )  # fmt: skip
        return done.returncode == 0

    def create_database(self, name: str) -> None:
        """Create database `name` unless it exists."""
        import psycopg

        # CREATE DATABASE cannot run in a transaction.
        conn = psycopg.connect(self.url("postgres"), autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
