"""The rate-limit response headers: X-RateLimit-*, OpenAI's x-ratelimit-*-requests, retry-after and the
warning from 80 % of a monthly limit or of a credit quota."""
from __future__ import annotations

import math

from app.api_errors import MAX_RETRY_AFTER
from app.policy.windows import Window

WARNING_HEADER = "X-RateLimit-Warning"
WARNING_VALUE = "approaching-limit"


def duration_text(seconds: float) -> str:
    """OpenAI-style duration of x-ratelimit-reset-requests: '7s', '1m0s', '2h5m0s' (whole seconds, ≥ 1)."""
    total = max(1, math.ceil(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def retry_after(window: Window | None, now: float) -> int:
    """Whole seconds until the window ends, at least 1 and at most MAX_RETRY_AFTER (1 for the concurrency cap)."""
    if window is None:
        return 1
    return max(1, min(MAX_RETRY_AFTER, math.ceil(window.reset - now)))


def tightest(windows: list[Window], counts: tuple[int, ...]) -> int | None:
    """Index of the window with the fewest requests left; on a tie the one that resets last."""
    best = None
    for i, window in enumerate(windows):
        rank = (window.limit - counts[i], -window.reset)
        if best is None or rank < best[0]:
            best = (rank, i)
    return None if best is None else best[1]


def near_limit(used: int, limit: int) -> bool:
    """True from 80 % of the limit on."""
    return used * 5 >= limit * 4


def rate_headers(windows: list[Window], counts: tuple[int, ...], now: float, quota_warning: bool = False,
                 focus: int | None = None) -> dict[str, str]:
    """X-RateLimit-* and x-ratelimit-*-requests for the window `focus` (default: the tightest one), plus
    X-RateLimit-Warning from 80 % of a monthly request limit or (quota_warning) of a credit quota."""
    headers: dict[str, str] = {}
    index = focus if focus is not None and focus < len(windows) else tightest(windows, counts)
    if index is not None:
        window = windows[index]
        limit = str(window.limit)
        remaining = str(max(0, window.limit - counts[index]))
        headers = {
            "X-RateLimit-Limit": limit,
            "X-RateLimit-Remaining": remaining,
            "X-RateLimit-Reset": str(window.reset),
            "X-RateLimit-Window": str(window.seconds),
            "x-ratelimit-limit-requests": limit,
            "x-ratelimit-remaining-requests": remaining,
            "x-ratelimit-reset-requests": duration_text(window.reset - now),
        }
    monthly = any(w.kind == "month" and near_limit(counts[i], w.limit) for i, w in enumerate(windows))
    if quota_warning or monthly:
        headers[WARNING_HEADER] = WARNING_VALUE
    return headers
