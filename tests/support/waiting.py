"""The one way tests wait for something another process or thread does: poll a condition with a deadline."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = 10.0, what: str | Callable[[], str] = "the condition",
               interval: float = 0.05, sleep: Callable[[float], None] = time.sleep) -> T:
    """Call `condition()` until it returns something truthy and return that; fail with an AssertionError
    naming `what` (or what it returns, when it is callable) once `timeout` seconds have passed. The
    condition is always tried once more at the deadline, so a slow machine gets the full time. Code that
    runs in a gevent hub of this process needs sleep=gevent.sleep."""
    deadline = time.monotonic() + timeout
    while True:
        last_try = time.monotonic() >= deadline
        value = condition()
        if value:
            return value
        if last_try:
            raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")
        sleep(interval)  # polling with a deadline, not synchronising on a guess
