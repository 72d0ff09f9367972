"""A lock file in the instance folder: every `pforte serve` holds it shared, `pforte restore` exclusively.

The kernel drops the lock when a process ends, however it ends, so a crashed server never blocks a restore.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "pforte.lock"


class InstanceBusy(Exception):
    pass


class _Lock:
    def __init__(self, fd: int):
        self.fd = fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the descriptor releases the lock
            self.fd = -1


def _take(instance_path: str | Path, mode: int) -> _Lock:
    fd = os.open(Path(instance_path) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise
    return _Lock(fd)


def hold_serving_lock(instance_path: str | Path) -> _Lock:
    """Shared lock for a running server; refused only while a restore holds the folder."""
    try:
        return _take(instance_path, fcntl.LOCK_SH)
    except BlockingIOError:
        raise InstanceBusy(f"a restore is running in {instance_path}; start the server when it has finished")\
            from None


def hold_exclusive_lock(instance_path: str | Path) -> _Lock:
    """Exclusive lock for a restore; refused while any server on this instance folder runs."""
    try:
        return _take(instance_path, fcntl.LOCK_EX)
    except BlockingIOError:
        raise InstanceBusy(
            "Pforte is running on this instance folder. Stop it first (systemctl stop pforte), "
            "then run the restore again."
        ) from None
