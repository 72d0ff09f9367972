"""A tiny in-process metrics registry rendered in the Prometheus text format (version 0.0.4).

The values belong to this process. With several `pforte serve` processes, Prometheus scrapes each one
(docs/operations.md). The functions at the bottom are what the rest of the application calls; each
costs a dictionary update under a lock, so they are cheap enough for the request path.
"""
from __future__ import annotations

import threading
import time
from bisect import bisect_left

# One lock for every metric: observe_request() updates three of them under a single acquisition.
_LOCK = threading.Lock()

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_text(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    parts = [f'{name}="{_escape(str(value))}"' for name, value in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labelnames: tuple[str, ...] = ()):
        self.name = name
        self.help = help_text
        self.labelnames = labelnames
        self._lock = _LOCK

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, labelnames: tuple[str, ...] = ()):
        super().__init__(name, help_text, labelnames)
        self._values: dict[tuple[str, ...], float] = {}

    def inc(self, labels: tuple[str, ...] = (), amount: float = 1.0) -> None:
        with self._lock:
            self._inc(labels, amount)

    def _inc(self, labels: tuple[str, ...], amount: float = 1.0) -> None:
        self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, labels: tuple[str, ...] = ()) -> float:
        return self._values.get(labels, 0.0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        lines = [f"{self.name}{_label_text(self.labelnames, k)} {_number(v)}" for k, v in items]
        return self.header() + lines


class Gauge(Counter):
    kind = "gauge"

    def set(self, value: float, labels: tuple[str, ...] = ()) -> None:
        with self._lock:
            self._values[labels] = value

    def render(self) -> list[str]:
        lines = super().render()
        if not self.labelnames and len(lines) == 2:
            lines.append(f"{self.name} 0")
        return lines


class Histogram(Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, labelnames: tuple[str, ...] = (),
                 buckets: tuple[float, ...] = LATENCY_BUCKETS):
        super().__init__(name, help_text, labelnames)
        self.buckets = tuple(sorted(buckets))
        # per label set: [count per bucket (non-cumulative, last = +Inf), sum]
        self._series: dict[tuple[str, ...], list] = {}

    def observe(self, value: float, labels: tuple[str, ...] = ()) -> None:
        with self._lock:
            self._observe(value, labels)

    def _observe(self, value: float, labels: tuple[str, ...]) -> None:
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = [[0] * (len(self.buckets) + 1), 0.0]
        series[0][bisect_left(self.buckets, value)] += 1
        series[1] += value

    def count(self, labels: tuple[str, ...] = ()) -> int:
        series = self._series.get(labels)
        return sum(series[0]) if series else 0

    def render(self) -> list[str]:
        with self._lock:
            items = sorted((k, (list(v[0]), v[1])) for k, v in self._series.items())
        lines = self.header()
        for labels, (counts, total) in items:
            running = 0
            for bound, count in zip((*self.buckets, float("inf")), counts, strict=True):
                running += count
                le = f'le="{_number(bound)}"'
                lines.append(f"{self.name}_bucket{_label_text(self.labelnames, labels, le)} {running}")
            lines.append(f"{self.name}_sum{_label_text(self.labelnames, labels)} {_number(total)}")
            lines.append(f"{self.name}_count{_label_text(self.labelnames, labels)} {running}")
        return lines


class Registry:
    def __init__(self):
        self.metrics: list[Metric] = []

    def add(self, metric):
        self.metrics.append(metric)
        return metric

    def render(self) -> str:
        lines: list[str] = []
        for metric in self.metrics:
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"


REGISTRY = Registry()
REQUESTS = REGISTRY.add(Counter(
    "pforte_requests_total", "API requests answered, by endpoint, model and status.",
    ("endpoint", "model", "status")))
LATENCY = REGISTRY.add(Histogram(
    "pforte_request_duration_seconds", "Time from request to the last byte of the answer.",
    ("endpoint", "model")))
TTFB = REGISTRY.add(Histogram(
    "pforte_time_to_first_byte_seconds", "Time from request to the first byte of the answer body.",
    ("endpoint", "model")))
OPEN_STREAMS = REGISTRY.add(Gauge("pforte_open_streams", "Streaming answers being sent right now."))
UPSTREAM_ERRORS = REGISTRY.add(Counter(
    "pforte_upstream_errors_total", "Failed upstream calls, by kind (error, unavailable, timeout, ...).",
    ("kind",)))
START_TIME = REGISTRY.add(Gauge(
    "pforte_process_start_time_seconds", "Start time of this process (Unix time)."))
START_TIME.set(time.time())


def observe_request(endpoint: str, model: str | None, status: int, latency_s: float,
                    ttfb_s: float | None = None) -> None:
    """Count one answered API request and record its latency (and time to first byte, when known)."""
    labels = (endpoint, model or "")
    with _LOCK:
        REQUESTS._inc((endpoint, model or "", str(status)))
        LATENCY._observe(latency_s, labels)
        if ttfb_s is not None:
            TTFB._observe(ttfb_s, labels)


def stream_opened() -> None:
    OPEN_STREAMS.inc()


def stream_closed() -> None:
    OPEN_STREAMS.inc(amount=-1.0)


def upstream_error(kind: str) -> None:
    """An upstream call failed; kind is the error code's tail: error | unavailable | timeout | …"""
    UPSTREAM_ERRORS.inc((kind,))


def render() -> str:
    return REGISTRY.render()
