"""A PostgreSQL and a Redis of a test's own, on free ports in a temporary folder, that the test may stop and
start again (fault injection). The machine's shared servers (5432, 6379) are never touched."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import redis

from support.processes import free_port
from support.waiting import wait_until

POSTGRES_USER = "postgres"  # initdb and postgres refuse to run as root


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", POSTGRES_USER, "--", *args] if os.geteuid() == 0 else args


class PrivatePostgres:
    """initdb'd into a folder of its own under the system's temporary folder (the postgres user must reach
    it; a test's tmp_path is root's alone), trust authentication, superuser `root`; start() and stop() at
    will, close() to remove it."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="pforte-pg-"))
        self.data = self.folder / "pgdata"
        self.port = free_port()
        self.url = f"postgresql+psycopg://root@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.folder, POSTGRES_USER)
        subprocess.run(_as_postgres(["initdb", "-D", str(self.data), "-A", "trust", "-U", "root", "--no-sync"]),
                       check=True, capture_output=True, timeout=120)

    def _ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(_as_postgres(["pg_ctl", "-D", str(self.data), "-o", options, "-l",
                                     str(self.folder / "postgres.log"), "-w", *args]),
                       check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        """Fast shutdown: open connections are cut, as when a database server goes away."""
        self._ctl("-m", "fast", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def close(self) -> None:
        if self.running():
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivateRedis:
    """A redis-server without persistence on a free port; start() and stop() at will (same port)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(answers, 15, f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
