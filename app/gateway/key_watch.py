"""Ending the streams of a key that is revoked or disabled while they run, in every process.

The verification at the start of a request (app.keys.verify) reads the key's status afresh, but a stream
can run for many minutes after it. While this process relays streams, one greenlet reads the status of
their keys every CHECK_SECONDS (one indexed query for all of them, nothing per chunk), and the relay
looks the key up in what it found at each turn (a dictionary lookup): so a change made by any process,
through the admin pages or the CLI, ends the key's streams within about a second.
"""
from __future__ import annotations

import logging
import time

import gevent

from app.keys.verify import ended_keys

log = logging.getLogger(__name__)

CHECK_SECONDS = 0.4
EXTENSION_KEY = "pforte_key_watch"


class KeyWatch:
    """One per app: the keys of the open streams and which of them were found revoked or disabled."""

    def __init__(self, app):
        self.app = app
        self.open: dict[int, int] = {}  # key id → number of open streams
        self.ended: dict[int, str] = {}  # key id → status, as of checked_at
        self.checked_at = 0.0  # time.perf_counter() when the last check began
        self._greenlet = None

    def watch(self, key_id: int):
        """Count one open stream of the key; returns the (idempotent) function that ends the count."""
        self.open[key_id] = self.open.get(key_id, 0) + 1
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            left = self.open.get(key_id, 0) - 1
            if left > 0:
                self.open[key_id] = left
            else:
                self.open.pop(key_id, None)
                self.ended.pop(key_id, None)

        return release

    def ended_since(self, key_id: int, started: float) -> str | None:
        """The key's status when a check begun after `started` (perf_counter) found it no longer active."""
        if not self.ended or self.checked_at <= started:
            return None
        return self.ended.get(key_id)

    def _run(self) -> None:
        try:
            with self.app.app_context():
                while self.open:
                    gevent.sleep(CHECK_SECONDS)
                    if not self.open:
                        break
                    began = time.perf_counter()
                    try:
                        found = ended_keys(tuple(self.open))
                    except Exception:  # the database is away: the streams go on, the next check retries
                        log.warning("checking the keys of open streams failed", exc_info=True)
                        continue
                    self.ended = {key_id: status for key_id, status in found.items() if key_id in self.open}
                    self.checked_at = began
        finally:
            self._greenlet = None
            if self.open:  # a stream opened just as the loop ended
                self._greenlet = gevent.spawn(self._run)


def key_watch(app) -> KeyWatch:
    """The app's watch (made on first use)."""
    watch = app.extensions.get(EXTENSION_KEY)
    if watch is None:
        watch = app.extensions.setdefault(EXTENSION_KEY, KeyWatch(app))
    return watch
