"""Checkpoints of SQLite's write-ahead log in a background thread, for `pforte serve`.

With synchronous=NORMAL a commit only appends to the write-ahead log; the checkpoint that copies the log
into the database file is what waits for the disk (fsync). SQLite runs it inside whichever commit pushes
the log past 1000 pages, and since sqlite3 blocks the OS thread, every request of the process would wait
for it (measured: p99 latency 12.8 ms instead of 2.9 ms at concurrency 1). So the gateway's connections
(app.rawsql) leave checkpoints to a native thread that runs a PASSIVE checkpoint every second; PASSIVE
never waits for readers or writers. Other databases need nothing of this.
"""
from __future__ import annotations

import logging
import sqlite3

from app import rawsql

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 1.0


class WalCheckpointer:
    """Owns the checkpoint connection; a greenlet schedules, a threadpool thread checkpoints."""

    def __init__(self, path: str):
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                          timeout=rawsql.BUSY_TIMEOUT_SECONDS)

    def checkpoint(self):
        """One PASSIVE checkpoint; runs in a native thread."""
        return self.connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def run_forever(self, interval_seconds: float) -> None:
        """Checkpoint every interval until killed; the connection is closed only once no thread uses it."""
        import gevent
        from gevent import get_hub

        pool = get_hub().threadpool
        running = None
        try:
            while True:
                gevent.sleep(interval_seconds)
                running = pool.spawn(self.checkpoint)
                try:
                    running.get()
                except sqlite3.Error:
                    log.exception("checkpointing the SQLite write-ahead log failed")
        finally:
            # Killed while a checkpoint runs: closing now would free the connection under the native
            # thread (a segfault), so the close waits for that checkpoint to end.
            if running is not None and not running.ready():
                running.rawlink(lambda _result: self.connection.close())
            else:
                self.connection.close()


def start_wal_checkpoints(engine, interval_seconds: float = INTERVAL_SECONDS):
    """Spawn the checkpoint greenlet for a file-based SQLite engine (None for other databases)."""
    import gevent

    connections = rawsql.sqlite_connections(engine)
    if connections is None:
        return None
    connections.checkpoints_elsewhere = True
    return gevent.spawn(WalCheckpointer(connections.path).run_forever, interval_seconds)
