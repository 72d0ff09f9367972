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


def start_wal_checkpoints(engine, interval_seconds: float = INTERVAL_SECONDS):
    """Spawn the checkpoint greenlet for a file-based SQLite engine (None for other databases)."""
    import gevent
    from gevent import get_hub

    connections = rawsql.sqlite_connections(engine)
    if connections is None:
        return None
    connections.checkpoints_elsewhere = True
    checkpointer = sqlite3.connect(connections.path, isolation_level=None, check_same_thread=False,
                                   timeout=rawsql.BUSY_TIMEOUT_SECONDS)

    def checkpoint():
        return checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def run_forever():
        pool = get_hub().threadpool
        try:
            while True:
                gevent.sleep(interval_seconds)
                try:
                    pool.apply(checkpoint)
                except sqlite3.Error:
                    log.exception("checkpointing the SQLite write-ahead log failed")
        finally:
            checkpointer.close()

    return gevent.spawn(run_forever)
