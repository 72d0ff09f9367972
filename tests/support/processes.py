"""Real processes for tests: `pforte serve` and the fake upstream, each on a free loopback port."""
from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import requests

from support.database import fresh_database_url
from support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
PFORTE = str(Path(sys.executable).parent / "pforte")


PORTS_PER_WORKER = 1000
FIRST_PORT = 20000  # below the kernel's ephemeral range (32768 on): no client connection can take one
WORKER_SLOTS = 12  # 20000-31999


def worker_index() -> int:
    """0 in a plain pytest run, n in pytest-xdist's worker gw<n>; plus PFORTE_TEST_PORT_SLOT, which gives a
    second test run side by side (.ci/run) port blocks of its own."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return (int(name[2:]) if name[2:].isdigit() else 0) + int(os.environ.get("PFORTE_TEST_PORT_SLOT", "0"))


_next_offset = itertools.count(random.randrange(PORTS_PER_WORKER))


def free_port() -> int:
    """A loopback port nobody listens on, from this worker's own block of ports, so that parallel workers
    (and the ephemeral ports of outgoing connections) never hand out the same one. The ports are handed
    out in turn, so a port given out but not yet bound is not given out again soon."""
    start = FIRST_PORT + (worker_index() % WORKER_SLOTS) * PORTS_PER_WORKER
    for _ in range(PORTS_PER_WORKER):
        port = start + next(_next_offset) % PORTS_PER_WORKER
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {start}-{start + PORTS_PER_WORKER - 1}")


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    """Poll url until it answers; fail early if the process died."""

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            requests.get(url, timeout=1)
        except requests.RequestException:
            return False
        return True

    wait_until(answers, timeout, f"{url} to answer")


def run_cli(instance: Path, *args: str, env: dict | None = None, input: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
    """Run the real `pforte` command against an instance folder."""
    full_env = {**os.environ, "PFORTE_INSTANCE_PATH": str(instance), **(env or {})}
    result = subprocess.run([PFORTE, *args], env=full_env, input=input, capture_output=True, text=True,
                            timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"pforte {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


class CliWorker:
    """One tests/support/cli_worker.py process for an instance folder: runs `pforte` commands one after
    another for a fixture's set-up, without starting Python and importing the app for each."""

    def __init__(self, instance: Path, env: dict[str, str]):
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "support" / "cli_worker.py")],
            env={**os.environ, "PFORTE_INSTANCE_PATH": str(instance), **env}, cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        self.process.stdin.write(json.dumps({"args": list(args), "input": input}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the CLI worker exited ({self.process.wait()}) during pforte {' '.join(args)}")
        answer = json.loads(line)
        result = subprocess.CompletedProcess(["pforte", *args], answer["returncode"], answer["stdout"],
                                             answer["stderr"])
        if check and result.returncode != 0:
            raise AssertionError(f"pforte {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n"
                                 f"{result.stderr}")
        return result

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class LiveServer:
    def __init__(self, instance: Path, port: int, env: dict[str, str]):
        self.instance = instance
        self.port = port
        self.env = env
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None
        self.log_path = instance / "server.log"
        self._worker: CliWorker | None = None

    def cli(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        env = {**self.env, **kwargs.pop("env", {})}
        return run_cli(self.instance, *args, env=env, **kwargs)

    def setup_cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        """A set-up command (catalog, keys, users) for this server's instance, checked, through one CLI
        worker process kept for the server: what `cli` does, without a new process for each command."""
        if self._worker is None:
            self._worker = CliWorker(self.instance, self.env)
        return self._worker.run(*args, input=input)

    def start(self) -> None:
        self.cli("init")
        env = {**os.environ, "PFORTE_INSTANCE_PATH": str(self.instance), **self.env}
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen([PFORTE, "serve", "--port", str(self.port)], env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT)
        wait_until_up(f"{self.url}/healthz", self.process)

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def live_servers(base: Path):
    """Yield start(env=None, name='a', instance=None) → LiveServer (initialised, running), each in its own
    folder under `base` with a fresh database unless an instance is given; all of them stop at the end."""
    servers: list[LiveServer] = []

    def start(env: dict | None = None, name: str = "a", instance: Path | None = None) -> LiveServer:
        inst = instance or (base / f"live-{name}")
        inst.mkdir(exist_ok=True)
        server_env = {}
        if instance is None:
            with fresh_database_url(inst, keep=True) as url:
                server_env["PFORTE_DATABASE_URL"] = url
            if not url.startswith("sqlite"):
                # Parallel tests share one PostgreSQL (max_connections 100): 8 connections per server at most.
                server_env.update(PFORTE_DATABASE_POOL_SIZE="2", PFORTE_DATABASE_MAX_OVERFLOW="6")
        storage = os.environ.get("PFORTE_TEST_RATELIMIT_STORAGE_URI")
        if storage:
            server_env["PFORTE_RATELIMIT_STORAGE_URI"] = storage
        server_env.update(env or {})
        server = LiveServer(inst, free_port(), server_env)
        server.start()
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


class FakeUpstream:
    """tests/fake_upstream.py in its own process. Failure modes are chosen per request (see that file)."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fake_upstream.py"), "--port",
                                         str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until_up(f"{self.url}/health", self.process)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
