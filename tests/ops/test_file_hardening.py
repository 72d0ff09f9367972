"""Files and logs that must not leak or be hijacked: two first starts racing for secrets.json, a symlink
planted where a backup goes, and a failed insert whose parameters (a key's hash) would reach the log."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

from support.processes import ROOT, run_cli

RACER = """
import json, os, sys, time
from pathlib import Path
from app.config import load_or_create_secrets
folder, go = Path(sys.argv[1]), Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    pass
print(json.dumps(load_or_create_secrets(folder)), flush=True)
"""
ROUNDS = 12


def race_once(folder, go) -> list[dict]:
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(folder), str(go)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for racer in racers:
            assert racer.stdout.readline().strip() == "ready", racer.stderr.read()
        go.touch()
        results = []
        for racer in racers:
            out, err = racer.communicate(timeout=60)
            assert racer.returncode == 0, err
            results.append(json.loads(out))
        return results
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
                racer.wait()


def test_two_first_starts_racing_end_with_the_same_secrets(tmp_path):
    for n in range(ROUNDS):
        folder, go = tmp_path / f"instance-{n}", tmp_path / f"go-{n}"
        folder.mkdir()
        one, two = race_once(folder, go)
        on_disk = json.loads((folder / "secrets.json").read_text())
        assert one == two == on_disk, f"round {n}: the two starts hold different secrets"
        assert sorted(p.name for p in folder.iterdir()) == ["secrets.json"]  # no temporary file is left


def sqlite_instance(tmp_path):
    folder = tmp_path / "instance"
    folder.mkdir()
    env = {"PFORTE_DATABASE_URL": f"sqlite:///{folder / 'pforte.db'}"}
    run_cli(folder, "init", env=env)
    return folder, env


def test_a_symlink_planted_at_the_backup_file_is_refused(tmp_path):
    folder, env = sqlite_instance(tmp_path)
    victim = tmp_path / "somewhere-else.db"
    planted = tmp_path / "backup.db"
    planted.symlink_to(victim)  # dangling: the backup would create the file it points to
    result = run_cli(folder, "backup", str(planted), env=env, check=False)
    assert result.returncode != 0
    assert f"{planted} is a symbolic link; a backup is never written through one." in result.stderr
    assert not victim.exists() and planted.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.db", "instance"]  # no partial copy left


def test_a_symlink_to_an_earlier_backup_is_refused_with_replace_too(tmp_path):
    folder, env = sqlite_instance(tmp_path)
    earlier = tmp_path / "earlier.db"
    run_cli(folder, "backup", str(earlier), env=env)
    before = earlier.read_bytes()
    planted = tmp_path / "backup.db"
    planted.symlink_to(earlier)
    result = run_cli(folder, "backup", str(planted), "--replace", env=env, check=False)
    assert result.returncode != 0 and "is a symbolic link" in result.stderr
    assert earlier.read_bytes() == before


def test_backups_are_written_with_mode_0600_and_replace_only_an_earlier_backup(tmp_path):
    folder, env = sqlite_instance(tmp_path)
    target = tmp_path / "backup.db"
    run_cli(folder, "backup", str(target), env=env)
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    again = run_cli(folder, "backup", str(target), env=env, check=False)
    assert again.returncode != 0 and "exists already" in again.stderr
    run_cli(folder, "backup", str(target), "--replace", env=env)
    assert sqlite3.connect(target).execute("SELECT count(*) FROM audit_events").fetchone()[0] >= 1


def test_a_failed_insert_never_logs_its_parameters(tmp_path):
    folder, env = sqlite_instance(tmp_path)
    conn = sqlite3.connect(folder / "pforte.db")
    conn.execute("CREATE TRIGGER refuse_keys BEFORE INSERT ON api_keys BEGIN SELECT RAISE(ABORT, 'refused'); END")
    conn.commit()
    conn.close()
    result = run_cli(folder, "keys", "create", "--name", "Distinctive-Name-7f3a", env=env, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "IntegrityError" in output and "refused" in output
    assert "SQL parameters hidden" in output
    assert "Distinctive-Name-7f3a" not in output
