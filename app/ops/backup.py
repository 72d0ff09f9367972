"""Consistent copies of the SQLite database and putting one back.

A backup uses SQLite's online backup API in a single step: it reads one snapshot of the database while
the server keeps answering (WAL mode lets writers go on), so the copy is consistent. A restore needs the
server stopped (the instance lock tells), keeps the current database beside it, puts the copy in place
and applies pending migrations. PostgreSQL is backed up with its own tools (docs/operations.md).
"""
from __future__ import annotations

import os
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from app.ops.instance_lock import InstanceBusy, hold_exclusive_lock

REQUIRED_TABLES = ("alembic_version", "api_keys", "request_logs")
SQLITE_MAGIC = b"SQLite format 3\x00"


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass
class BackupSummary:
    path: Path
    size_bytes: int
    keys: int
    request_logs: int
    revision: str


def sqlite_path(database_url: str) -> Path:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise BackupError(
            f"The database is {url.get_backend_name()}, not SQLite. Back it up with the database's own "
            "tools, for PostgreSQL pg_dump and pg_restore (see docs/operations.md)."
        )
    if not url.database or url.database == ":memory:":
        raise BackupError("The database is in memory; there is nothing to back up.")
    return Path(url.database).resolve()


def _connect(path: Path, read_only: bool = False) -> sqlite3.Connection:
    target = f"file:{path}?mode=ro" if read_only else f"file:{path}"
    conn = sqlite3.connect(target, uri=True, timeout=30)
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _create_exclusive(path: Path) -> None:
    """Create an empty file at path (mode 0600); refuse anything already there, a symlink included."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))


def _copy(source: sqlite3.Connection, destination: Path) -> None:
    """Write one consistent snapshot of source to destination as a self-contained file (no -wal beside it).
    The copy is made in a new file of its own (O_EXCL|O_NOFOLLOW) and renamed over destination."""
    tmp = destination.with_name(f"{destination.name}.partial-{secrets.token_hex(4)}")
    _create_exclusive(tmp)
    try:
        target = sqlite3.connect(tmp)
        try:
            source.backup(target)  # pages=-1: the whole database from one read snapshot
            target.execute("PRAGMA journal_mode=DELETE")
            check = target.execute("PRAGMA integrity_check").fetchone()[0]
            if check != "ok":
                raise BackupError(f"The copy failed its integrity check: {check}")
        finally:
            target.close()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, destination)  # replaces the name itself, never what a link there points to
    finally:
        tmp.unlink(missing_ok=True)


def inspect(path: Path) -> BackupSummary:
    """Check that path is an intact Pforte database and count what it holds."""
    if not path.is_file():
        raise BackupError(f"{path} does not exist or is not a file.")
    try:
        conn = _connect(path, read_only=True)
        try:
            check = conn.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            missing = [name for name in REQUIRED_TABLES if name not in tables]
            if check != "ok" or missing:
                raise BackupError(f"{path} is not an intact Pforte database "
                                  f"({'missing tables: ' + ', '.join(missing) if missing else check}).")
            keys = conn.execute("SELECT count(*) FROM api_keys").fetchone()[0]
            logs = conn.execute("SELECT count(*) FROM request_logs").fetchone()[0]
            revision = ",".join(row[0] for row in conn.execute("SELECT version_num FROM alembic_version"))
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a SQLite database ({exc}).") from None
    return BackupSummary(path, path.stat().st_size, keys, logs, revision)


def _is_sqlite_file(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


def backup_database(database_url: str, destination: Path, replace: bool = False) -> BackupSummary:
    """Copy the live database to destination (mode 0600). An existing destination is replaced only when
    replace is set and it is itself a SQLite file, so a slip of the hand cannot overwrite another file."""
    source_path = sqlite_path(database_url)
    if not source_path.exists():
        raise BackupError(f"There is no database at {source_path}; run `pforte init` first.")
    destination = destination.parent.resolve() / destination.name  # the file itself is never followed
    if destination == source_path:
        raise BackupError("The backup file must not be the database itself.")
    if not destination.parent.is_dir():
        raise BackupError(f"The folder {destination.parent} does not exist.")
    if destination.is_symlink():
        raise BackupError(f"{destination} is a symbolic link; a backup is never written through one.")
    if destination.exists():
        if not replace:
            raise BackupError(f"{destination} exists already; choose a new name or pass --replace.")
        if not destination.is_file() or not _is_sqlite_file(destination):
            raise BackupError(f"{destination} exists and is not a SQLite database; it is left alone.")
    claimed = not destination.exists()
    if claimed:
        try:  # claim the name, so that nothing planted there meanwhile is written through
            _create_exclusive(destination)
        except FileExistsError:
            raise BackupError(f"{destination} appeared while the backup started; choose a new name.") from None
    source = _connect(source_path)
    try:
        _copy(source, destination)
    except BaseException:
        if claimed:
            destination.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    return inspect(destination)


def restore_database(database_url: str, instance_path: str, backup_file: Path,
                     migrate=None) -> tuple[BackupSummary, Path | None]:
    """Replace the (stopped) instance's database with backup_file, then call migrate() while still holding
    the instance lock. Returns the backup's summary and where the previous database was kept."""
    target = sqlite_path(database_url)
    backup_file = backup_file.resolve()
    if backup_file == target:
        raise BackupError("That is the live database itself; name a backup file.")
    summary = inspect(backup_file)
    try:
        lock = hold_exclusive_lock(instance_path)
    except InstanceBusy as exc:
        raise BackupError(str(exc)) from None
    try:
        kept: Path | None = None
        owner = None
        if target.exists():
            stat = target.stat()
            owner = (stat.st_uid, stat.st_gid)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            kept = target.with_name(f"{target.name}.before-restore-{stamp}")
            current = _connect(target)
            try:
                _copy(current, kept)
            finally:
                current.close()
        source = _connect(backup_file, read_only=True)
        try:
            staged = target.with_name(target.name + ".restoring")
            _copy(source, staged)
        finally:
            source.close()
        for suffix in ("-wal", "-shm"):
            target.with_name(target.name + suffix).unlink(missing_ok=True)
        os.replace(staged, target)
        if owner and os.geteuid() == 0:
            os.chown(target, *owner)
            if kept:
                os.chown(kept, *owner)
        if migrate is not None:
            migrate()
    finally:
        lock.close()
    return summary, kept
