"""A real PostgreSQL server for tests and benchmarks: Debian's binaries, a temporary cluster, a unix socket.

PostgreSQL refuses to run as root; when the harness runs as root (CI does), the cluster belongs to the
unprivileged user `nobody` and every server command runs as that user through `runuser`. fsync and
synchronous_commit stay on: the tests prove durability against the real thing.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from chan_store.postgres import PostgresChannelStore

__all__ = ["PostgresServer", "find_bin", "fresh_pg_engine"]

RUN_AS = "nobody"


def find_bin(name: str) -> str | None:
    """The path of a PostgreSQL server binary (Debian keeps them in /usr/lib/postgresql/N/bin)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class PostgresServer:
    """One throw-away cluster: `start()`, use `dsn`, `stop()` (or `kill()`/`stop('immediate')` for faults)."""

    def __init__(self, base: Path | None = None, *, database: str = "paychan") -> None:
        self.base = Path(tempfile.mkdtemp(prefix="paychan-pg-")) if base is None else base
        self.data = self.base / "data"
        self.socket_dir = self.base / "sock"
        self.log = self.base / "postgres.log"
        self.database = database
        self._as_root = os.geteuid() == 0
        initdb = find_bin("initdb")
        if initdb is None:
            raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
        self._bin = Path(initdb).parent

    @property
    def dsn(self) -> str:
        """A libpq/asyncpg DSN over the unix socket (trust auth inside the temporary cluster)."""
        return f"postgresql://postgres@/{self.database}?host={self.socket_dir}"

    def _run(self, *argv: str, check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        cmd = [str(self._bin / argv[0]), *argv[1:]]
        if self._as_root:
            cmd = ["runuser", "-u", RUN_AS, "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=timeout)

    def start(self) -> None:
        """initdb on first start, then start the server and wait until it accepts connections."""
        if not self.data.exists():
            self.base.mkdir(parents=True, exist_ok=True)
            self.socket_dir.mkdir(exist_ok=True)
            if self._as_root:
                os.chmod(self.base, 0o755)
                for path in (self.base, self.socket_dir):
                    shutil.chown(path, RUN_AS)
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--no-instructions")
            with (self.data / "postgresql.conf").open("a") as conf:
                conf.write(f"\nlisten_addresses = ''\nunix_socket_directories = '{self.socket_dir}'\n"
                           "fsync = on\nsynchronous_commit = on\nmax_connections = 200\n"
                           "shared_buffers = 128MB\n")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
        if not self._database_exists():
            self._run("createdb", "-h", str(self.socket_dir), "-U", "postgres", self.database)

    def _database_exists(self) -> bool:
        out = self._run("psql", "-h", str(self.socket_dir), "-U", "postgres", "-d", "postgres", "-tAc",
                        f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'")
        return out.stdout.strip() == "1"

    def psql(self, sql: str, *, database: str | None = None, timeout: float = 60.0) -> str:
        """Run one SQL command with psql; return its unaligned output."""
        return self._run("psql", "-h", str(self.socket_dir), "-U", "postgres", "-d", database or self.database,
                         "-v", "ON_ERROR_STOP=1", "-tAc", sql, timeout=timeout).stdout

    def psql_from(self, sql: str, source: Path, *, timeout: float = 7200.0) -> None:
        """Run one SQL command with psql reading `source` on its stdin (e.g. COPY ... FROM STDIN)."""
        cmd = [str(self._bin / "psql"), "-h", str(self.socket_dir), "-U", "postgres", "-d", self.database,
               "-v", "ON_ERROR_STOP=1", "-qc", sql]
        if self._as_root:
            cmd = ["runuser", "-u", RUN_AS, "--", *cmd]
        with source.open("rb") as data:
            subprocess.run(cmd, check=True, stdin=data, timeout=timeout)

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop (`immediate` is a crash: no checkpoint, recovery from the WAL at the next start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def kill(self) -> None:
        """SIGKILL the postmaster (its children exit on their own)."""
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.05)

    def remove(self) -> None:
        """Stop the server and delete the cluster."""
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


async def fresh_pg_engine(server: PostgresServer) -> PostgresChannelStore:
    """An open PostgreSQL channel engine on an empty channels table."""
    engine = PostgresChannelStore(server.dsn)
    await engine.open()
    server.psql("TRUNCATE channels")
    await engine.refresh_counts()
    return engine
