"""Real processes for tests: `pforte serve` and the fake upstream, each on a free loopback port."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from support.database import fresh_database_url

ROOT = Path(__file__).resolve().parents[2]
PFORTE = str(Path(sys.executable).parent / "pforte")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    """Poll url until it answers; fail early if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.05)  # polling a port until it listens, not synchronising on a guess
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def run_cli(instance: Path, *args: str, env: dict | None = None, input: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
    """Run the real `pforte` command against an instance folder."""
    full_env = {**os.environ, "PFORTE_INSTANCE_PATH": str(instance), **(env or {})}
    result = subprocess.run([PFORTE, *args], env=full_env, input=input, capture_output=True, text=True,
                            timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"pforte {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


class LiveServer:
    def __init__(self, instance: Path, port: int, env: dict[str, str]):
        self.instance = instance
        self.port = port
        self.env = env
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None
        self.log_path = instance / "server.log"

    def cli(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        env = {**self.env, **kwargs.pop("env", {})}
        return run_cli(self.instance, *args, env=env, **kwargs)

    def start(self) -> None:
        self.cli("init")
        env = {**os.environ, "PFORTE_INSTANCE_PATH": str(self.instance), **self.env}
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen([PFORTE, "serve", "--port", str(self.port)], env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT)
        wait_until_up(f"{self.url}/healthz", self.process)

    def stop(self) -> None:
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
