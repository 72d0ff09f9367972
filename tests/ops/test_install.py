"""install.sh on this machine (--no-systemd --prefix): a real, non-editable install that serves, takes a
key made with the installed CLI, and survives a second run (the upgrade path) with data and secrets kept."""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
import requests
from support.processes import free_port, wait_until_up

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def run_install(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PFORTE_") and k != "VIRTUAL_ENV"}
    result = subprocess.run(["bash", str(ROOT / "install.sh"), *args], env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, f"install.sh failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


class Installed:
    def __init__(self, prefix: Path, port: int):
        self.prefix = prefix
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PFORTE_")}

    def cli(self, *args: str, input: str | None = None) -> str:
        result = subprocess.run([str(self.prefix / "bin" / "pforte"), *args], env=self.env, input=input,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"pforte {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def start(self) -> None:
        log = (self.prefix / "serve.log").open("ab")
        self.process = subprocess.Popen([str(self.prefix / "bin" / "pforte"), "serve"], env=self.env,
                                        stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_until_up(f"{self.url}/healthz", self.process, timeout=60)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # what systemd sends
            try:
                assert self.process.wait(timeout=40) == 0
            finally:
                if self.process.poll() is None:
                    self.process.kill()


def chat(installed: Installed, key: str) -> requests.Response:
    body = {"model": "demo", "messages": [{"role": "user", "content": "Guten Tag"}]}
    return requests.post(f"{installed.url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                         json=body, timeout=30)


def stop_timeout(prefix: Path) -> int:
    """TimeoutStopSec of the systemd unit install.sh rendered (beside the code, also with --no-systemd)."""
    unit = (prefix / "pforte.service").read_text()
    assert f"ExecStart={prefix / 'venv' / 'bin' / 'pforte'} serve" in unit
    return int(next(line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("TimeoutStopSec=")))


def resource_files(base: Path, names=("templates", "static", "migrations")) -> set[str]:
    return {str(p.relative_to(base)) for name in names for p in (base / name).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def test_install_serve_and_upgrade_in_place(tmp_path):
    prefix = tmp_path / "pforte"
    port = free_port()
    first = run_install("--no-systemd", "--prefix", str(prefix), "--port", str(port))
    assert "Setup token:" in first.stdout and f"http://127.0.0.1:{port}/" in first.stdout

    # A real install: the package and its templates, static files and migrations live in the venv.
    venv = prefix / "venv"
    probe = "import app, app.paths as p; print(app.__file__); print(p.resource_dir('migrations'))"
    where = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True,
                           check=True, cwd=tmp_path).stdout.split()
    assert where[0].startswith(str(venv)) and where[1].startswith(str(venv))
    share = venv / "share" / "pforte"
    missing = resource_files(ROOT) - resource_files(share)
    assert not missing, f"not installed: {sorted(missing)[:10]}"

    settings = (prefix / "etc" / "pforte.env").read_text()
    assert f"PFORTE_PORT='{port}'" in settings and f"PFORTE_INSTANCE_PATH='{prefix / 'var'}'" in settings
    secrets = prefix / "var" / "secrets.json"
    assert secrets.stat().st_mode & 0o077 == 0, "secrets are private to the service user"
    secrets_before = secrets.read_text()

    assert stop_timeout(prefix) == 30 + 20, "the default shutdown grace plus 20 s for settling"

    installed = Installed(prefix, port)
    try:
        installed.cli("connections", "add", "--name", "demo", "--kind", "demo", "--base-url", "")
        installed.cli("models", "add", "--id", "demo", "--connection", "demo")
        key = json.loads(installed.cli("keys", "create", "--name", "Fachverfahren", "--json"))
        installed.start()
        assert requests.get(f"{installed.url}/v1/models", headers={"Authorization": f"Bearer {key['key']}"},
                            timeout=10).json()["data"][0]["id"] == "demo"
        assert chat(installed, key["key"]).status_code == 200
        installed.stop()

        # The upgrade: the same command again, without the options of the first run. The shutdown grace
        # set in pforte.toml since then reaches the unit's stop timeout.
        toml = prefix / "etc" / "pforte.toml"
        toml.write_text(toml.read_text() + "shutdown_grace_seconds = 75\n")
        second = run_install("--no-systemd", "--prefix", str(prefix))
        assert stop_timeout(prefix) == 75 + 20
        assert f"http://127.0.0.1:{port}/" in second.stdout, "the port of the first run is kept"
        assert secrets.read_text() == secrets_before, "secrets are kept"
        assert (prefix / "etc" / "pforte.env").read_text() == settings, "settings are kept"

        installed.start()
        answer = chat(installed, key["key"])
        assert answer.status_code == 200, answer.text
        listed = installed.cli("keys", "list", "--json")
        assert key["id"] in listed
    finally:
        installed.stop()


def test_install_rejects_bad_options(tmp_path):
    for args, message in ((["--port", "eighty"], "--port must be a number"),
                          (["--database-url", "mysql://x"], "--database-url"),
                          (["--frobnicate"], "unknown option")):
        command = ["bash", str(ROOT / "install.sh"), "--no-systemd", "--prefix", str(tmp_path / "p"), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert result.returncode != 0 and message in result.stderr, (args, result.stderr)
    assert not (tmp_path / "p" / "venv").exists(), "nothing is installed after a refused option"
    help_text = subprocess.run(["bash", str(ROOT / "install.sh"), "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "--no-systemd" in help_text.stdout
