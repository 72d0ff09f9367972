"""A read connection for the key lookup on SQLite, outside SQLAlchemy's pool.

Checking a connection out of the pool and resetting it on return costs about 40 µs, twice the lookup
itself. The key check runs on every API request, so on SQLite it reads through one connection per OS
thread in autocommit mode instead: every SELECT is its own read transaction and sees the latest commit,
so a key revoked by any process is refused on the very next request, as through the pool. Under gevent
all greenlets share the thread's connection; a lookup never yields between execute and fetchone.
"""
from __future__ import annotations

import sqlite3

from gevent.monkey import get_original

_thread_id = get_original("_thread", "get_ident")  # the OS thread, also when gevent has patched threading

BUSY_TIMEOUT_SECONDS = 15.0


class SqliteReader:
    def __init__(self, path: str):
        self.path = path
        self._connections: dict[int, sqlite3.Connection] = {}

    @classmethod
    def for_engine(cls, engine) -> SqliteReader | None:
        """A reader for a file-based SQLite engine; None for other databases and in-memory SQLite."""
        url = engine.url
        if engine.dialect.name != "sqlite" or url.query or url.database in (None, "", ":memory:"):
            return None
        return cls(url.database)

    def connection(self) -> sqlite3.Connection:
        thread = _thread_id()
        connection = self._connections.get(thread)
        if connection is None:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                         timeout=BUSY_TIMEOUT_SECONDS)
            self._connections[thread] = connection
        return connection
