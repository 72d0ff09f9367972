"""Reads and short write transactions on DBAPI connections, below SQLAlchemy's Connection layer.

The gateway checks a key, may reserve credits and settles usage on every API request. For statements
that small, SQLAlchemy's Connection and Result layers and the pool's checkout and reset cost more than
the statements themselves (measured: checkout plus reset about 40 µs, Core execution about 100 µs).

On file-based SQLite each OS thread keeps one connection of its own, in autocommit mode: every read is
its own read transaction and sees the latest commit of any process (a revoked key is refused on the very
next request), and a write transaction is `BEGIN IMMEDIATE … COMMIT`. Under gevent the thread's greenlets
share that connection; that is safe because sqlite3 calls never yield, so no other greenlet can run
between BEGIN and COMMIT. Other databases use a pooled DBAPI connection per transaction.

Statements are SQLAlchemy Core statements on the models' tables, so the schema has one source of truth;
each is compiled once per dialect, and its parameters are bound with the dialect's own type processors.
"""
from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter

import gevent
from gevent import get_hub
from gevent.event import Event
from gevent.hub import Waiter
from gevent.monkey import get_original
from sqlalchemy.dialects import postgresql, sqlite

thread_id = get_original("_thread", "get_ident")  # the OS thread, also when gevent has patched threading

BUSY_TIMEOUT_SECONDS = 15.0


class SqliteConnections:
    """One autocommit connection per OS thread to one SQLite file, with the pragmas of app.database.

    checkpoints_elsewhere (set by app.ops.wal before the first request): these connections never
    checkpoint the write-ahead log themselves. A checkpoint ends with an fsync, which on a commit would
    stall the whole process (sqlite3 blocks the thread) for milliseconds, once every few hundred requests."""

    def __init__(self, path: str):
        self.path = path
        self.checkpoints_elsewhere = False
        self._connections: dict[int, sqlite3.Connection] = {}

    def get(self) -> sqlite3.Connection:
        thread = thread_id()
        connection = self._connections.get(thread)
        if connection is None:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                         timeout=BUSY_TIMEOUT_SECONDS)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA synchronous=NORMAL")
            if self.checkpoints_elsewhere:
                connection.execute("PRAGMA wal_autocheckpoint=0")
            self._connections[thread] = connection
        return connection


_sqlite: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # engine → SqliteConnections | None


def sqlite_connections(engine) -> SqliteConnections | None:
    """The thread connections for a file-based SQLite engine; None for other databases and in-memory SQLite."""
    try:
        return _sqlite[engine]
    except KeyError:
        url = engine.url
        found = None
        if engine.dialect.name == "sqlite" and not url.query and url.database not in (None, "", ":memory:"):
            found = SqliteConnections(url.database)
        return _sqlite.setdefault(engine, found)


class CompiledStatement:
    """A SQLAlchemy Core statement compiled for one dialect: its SQL, the order of its parameters, and the
    dialect's bind and result processors for their types (on SQLite, for example, DateTime is bound as
    SQLAlchemy's text format and Boolean as 0/1). Parameters without a value in the statement must be given
    by name; parameters with one (column defaults, literal values) may be."""

    __slots__ = ("sql", "positional", "names", "fixed", "pick", "processors", "results")

    def __init__(self, statement, dialect, column_keys: Sequence[str] | None = None):
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("statements with parameters rendered at execution time are not supported")
        self.sql = compiled.string
        self.positional = compiled.positional
        names = compiled.positiontup if compiled.positional else dict.fromkeys(compiled.bind_names.values())
        self.names = tuple(names)
        binds = [compiled.binds[name] for name in self.names]
        self.fixed = {name: bind.effective_value for name, bind in zip(self.names, binds, strict=True)
                      if not bind.required}
        self.pick = _picker(self.names)
        processors = (bind.type.dialect_impl(dialect).bind_processor(dialect) for bind in binds)
        self.processors = tuple((i, process) for i, process in enumerate(processors) if process is not None)
        self.results = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None)
                             for column in getattr(statement, "exported_columns", ()))

    def params(self, values: Mapping):
        """The driver's parameters (a tuple or a dict, as its parameter style wants) from values by name;
        KeyError for a missing one."""
        if self.fixed:
            values = {**self.fixed, **values}
        if not self.processors:  # a named style takes the mapping itself (the driver ignores other keys)
            return self.pick(values) if self.positional else values
        bound = list(self.pick(values))
        for i, process in self.processors:
            bound[i] = process(bound[i])
        return tuple(bound) if self.positional else dict(zip(self.names, bound, strict=True))

    def row(self, raw: Sequence | None) -> tuple | None:
        """A fetched row with the result processors applied (SQLite's DateTime text → datetime)."""
        if raw is None:
            return None
        return tuple(value if process is None or value is None else process(value)
                     for process, value in zip(self.results, raw, strict=True))


def _picker(names: tuple[str, ...]) -> Callable[[Mapping], tuple]:
    """values → the tuple of values[name] for names, in order (itemgetter, which runs in C)."""
    if len(names) == 1:
        only = names[0]
        return lambda values: (values[only],)
    return itemgetter(*names) if names else lambda _values: ()


_compiled: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # dialect → {key: (statement, compiled)}


def compiled(statement, dialect, column_keys: tuple[str, ...] | None = None) -> CompiledStatement:
    """The statement compiled for the dialect, once: keep statements in module-level constants."""
    found = _compiled.get(dialect)
    if found is None:
        found = _compiled.setdefault(dialect, {})
    entry = found.get((id(statement), column_keys))
    if entry is None:
        entry = found[(id(statement), column_keys)] = (statement, CompiledStatement(statement, dialect,
                                                                                    column_keys))
    return entry[1]


# The dialects' own insert() constructs, which have ON CONFLICT (by dialect name).
DIALECT_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def fetch_one(engine, statement, values: Mapping) -> tuple | None:
    """One row of a Core statement (a tuple, with the dialect's result processors) or None."""
    query = compiled(statement, engine.dialect)
    params = query.params(values)
    connections = sqlite_connections(engine)
    if connections is not None:
        # fetchall: stepping to the end finishes the statement, which ends its read transaction
        rows = connections.get().execute(query.sql, params).fetchall()
        return query.row(rows[0]) if rows else None
    connection = engine.raw_connection()  # from the pool; close() hands it back (and ends the transaction)
    try:
        cursor = connection.cursor()
        try:
            cursor.execute(query.sql, params)
            return query.row(cursor.fetchone())
        finally:
            cursor.close()
    finally:
        connection.close()


class RawTransaction:
    """One short write transaction. execute() takes a SQLAlchemy Core statement and its parameters by name
    (compiled once per dialect, see `compiled`), execute_sql() the driver's own SQL and parameter tuple;
    both return the DBAPI cursor (rowcount, fetchone). Nothing inside the `with` block may yield to another
    greenlet."""

    def __init__(self, engine):
        self.engine = engine

    def __enter__(self) -> RawTransaction:
        connections = sqlite_connections(self.engine)
        self.pooled = connections is None or connections.get().in_transaction  # (never, but be safe)
        if self.pooled:
            self.connection = self.engine.raw_connection()
            self.cursor = self.connection.cursor()
        else:
            self.connection = connections.get()
            self.cursor = self.connection.cursor()
            self.cursor.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, exc_type, _exc, _tb) -> None:
        try:
            if exc_type is None:
                self.connection.commit() if self.pooled else self.cursor.execute("COMMIT")
            elif self.pooled:
                self.connection.rollback()
            elif self.connection.in_transaction:
                self.cursor.execute("ROLLBACK")
        finally:
            self.cursor.close()
            if self.pooled:
                self.connection.close()  # back to the pool

    @property
    def dialect(self):
        return self.engine.dialect

    def execute(self, statement, values: Mapping, column_keys: tuple[str, ...] | None = None):
        """Run a Core statement; column_keys names the columns of an insert() without values()."""
        query = compiled(statement, self.engine.dialect, column_keys)
        self.cursor.execute(query.sql, query.params(values))
        return self.cursor

    def execute_sql(self, sql: str, params: tuple):
        self.cursor.execute(sql, params)
        return self.cursor


class GroupWriter:
    """Greenlets of one OS thread that write to one SQLite file at about the same moment share one
    transaction: a commit costs about three times a few small statements. The first to arrive waits
    (`wait()`: one turn of the loop, or until it is idle), then runs the work of everyone that arrived
    meanwhile, each in a SAVEPOINT of its own, and commits once; the others wait for that commit. A work
    that raises is rolled back alone and its caller gets the exception. SQLite only (`for_engine` gives
    None elsewhere): its transactions lock the whole file, so batches cannot deadlock each other as row
    locks on other databases could."""

    _writers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # engine → {(name, thread): writer}

    def __init__(self, engine, wait: Callable[[], None]):
        self.engine = engine
        self.wait = wait
        self.pending: list[list] = []  # [work, result, error]
        self.committed = Event()  # set when the batch now being gathered is committed
        self.leading = False

    @classmethod
    def for_engine(cls, engine, name: str, wait: Callable[[], None]) -> GroupWriter | None:
        if sqlite_connections(engine) is None:
            return None
        writers = cls._writers.get(engine)
        if writers is None:
            writers = cls._writers[engine] = {}
        key = (name, thread_id())
        writer = writers.get(key)
        if writer is None:
            writer = writers[key] = cls(engine, wait)
        return writer

    def run(self, work: Callable[[RawTransaction], object]):
        """work(transaction) inside the shared transaction; its result once committed, or its exception."""
        entry = [work, None, None]
        self.pending.append(entry)
        if self.leading:
            self.committed.wait()
        else:
            self.leading = True
            try:
                self.wait()
            finally:
                try:
                    while self.pending:
                        batch, self.pending = self.pending, []
                        committed, self.committed = self.committed, Event()
                        try:
                            self._commit(batch)
                        finally:
                            committed.set()
                finally:
                    self.leading = False
        if entry[2] is not None:
            raise entry[2]
        return entry[1]

    def _commit(self, batch: list[list]) -> None:
        try:
            with RawTransaction(self.engine) as transaction:
                if len(batch) == 1:  # alone: no savepoint, its own transaction is rolled back whole
                    batch[0][1] = batch[0][0](transaction)
                    return
                cursor = transaction.cursor
                for entry in batch:
                    cursor.execute("SAVEPOINT work")
                    try:
                        entry[1] = entry[0](transaction)
                    except Exception as exc:
                        cursor.execute("ROLLBACK TO work")
                        entry[2] = exc
                    cursor.execute("RELEASE work")
        except Exception as exc:  # a lone work failed, or the transaction did: nothing of the batch was written
            for entry in batch:
                entry[1] = None
                entry[2] = entry[2] or exc


def next_turn() -> None:
    """Let the greenlets that are ready run once."""
    gevent.sleep(0)


def until_idle(max_seconds: float) -> Callable[[], None]:
    """A wait for GroupWriter: until the event loop has no other event pending, or max_seconds."""
    return lambda: wait_until_idle(max_seconds)


def wait_until_idle(max_seconds: float) -> None:
    """Let every other greenlet that can run go first: return when the event loop has no other event
    pending (libev's idle watcher, at the lowest priority), or after max_seconds."""
    hub = get_hub()
    waiter = Waiter(hub)
    idle = hub.loop.idle()
    if hasattr(idle, "priority"):  # libev; libuv has no priorities
        idle.priority = -2  # EV_MINPRI: only when nothing of any priority is pending
    timer = hub.loop.timer(max_seconds)
    idle.start(waiter.switch, None)
    timer.start(waiter.switch, None)
    try:
        waiter.get()
    finally:
        idle.stop()
        timer.stop()
        idle.close()
        timer.close()
