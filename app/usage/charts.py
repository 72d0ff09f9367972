"""Geometry for the server-side SVG charts on the usage page (no JavaScript, no chart library).

A chart is a set of bars per day, optionally stacked in two series; templates/usage/_chart.html draws it.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

WIDTH = 720
HEIGHT = 220
LEFT = 64
RIGHT = 12
TOP = 12
BOTTOM = 30
MAX_X_LABELS = 8
Y_TICKS = 4


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: int  # 0 = first series, 1 = second (stacked on top)
    title: str


@dataclass(frozen=True)
class Tick:
    position: float
    text: str


@dataclass
class BarChart:
    id: str
    title: str
    description: str
    bars: list[Bar] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    legend: list[str] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^n that is ≥ value (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def bar_chart(chart_id: str, title: str, description: str, labels: Sequence[str],
              series: Sequence[Sequence[float]], fmt: Callable[[float], str],
              series_names: Sequence[str] = (), bar_title: Callable[[int], str] | None = None) -> BarChart:
    """Bars for each label; with two series the second is stacked on the first.

    fmt formats axis values; bar_title(i) gives the hover text of column i."""
    chart = BarChart(chart_id, title, description, legend=list(series_names))
    count = len(labels)
    if count == 0:
        return chart
    stacked = [sum(values[i] for values in series) for i in range(count)]
    top_value = nice_ceiling(max(stacked) if stacked else 0)
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = chart.bottom - TOP
    slot = plot_width / count
    width = max(slot * 0.7, 1)
    for i in range(count):
        base = 0.0
        for index, values in enumerate(series):
            value = values[i]
            if value <= 0:
                continue
            height = value / top_value * plot_height
            y = chart.bottom - (base + value) / top_value * plot_height
            title = bar_title(i) if bar_title else f"{labels[i]}: {fmt(value)}"
            x = LEFT + i * slot + (slot - width) / 2
            chart.bars.append(Bar(round(x, 2), round(y, 2), round(width, 2), round(max(height, 0.5), 2),
                                  index, title))
            base += value
    for step in range(Y_TICKS + 1):
        value = top_value * step / Y_TICKS
        chart.y_ticks.append(Tick(round(chart.bottom - value / top_value * plot_height, 2), fmt(value)))
    every = max(1, math.ceil(count / MAX_X_LABELS))
    for i in range(0, count, every):
        chart.x_ticks.append(Tick(round(LEFT + (i + 0.5) * slot, 2), labels[i]))
    return chart


def daily_charts(rows) -> list[BarChart]:
    """The three per-day charts of the dashboard: requests (ok/errors), tokens (input/output), credits."""
    from flask_babel import format_decimal, format_number
    from flask_babel import gettext as _

    if not rows:
        return []
    labels = [row.label for row in rows]
    span = _("from %(start)s to %(end)s", start=labels[0], end=labels[-1])

    def peak(values, fmt):
        best = max(range(len(values)), key=lambda i: values[i])
        return _("highest %(value)s on %(day)s", value=fmt(values[best]), day=labels[best])

    def num(value):
        return format_number(int(round(value)))

    def credits(value):
        return format_decimal(value, format="#,##0.##")

    requests = [row.requests for row in rows]
    errors = [row.errors for row in rows]
    tokens = [row.tokens for row in rows]
    credit_values = [row.credits for row in rows]
    return [
        bar_chart(
            "chart-requests", _("Requests per day"),
            _("Requests per day %(span)s: %(total)s in total, %(errors)s errors, %(peak)s.", span=span,
              total=num(sum(requests)), errors=num(sum(errors)), peak=peak(requests, num)),
            labels, [[r - e for r, e in zip(requests, errors, strict=True)], errors], num,
            series_names=[_("Successful"), _("Errors")],
            bar_title=lambda i: _("%(day)s: %(requests)s requests, %(errors)s errors", day=labels[i],
                                  requests=num(requests[i]), errors=num(errors[i]))),
        bar_chart(
            "chart-tokens", _("Tokens per day"),
            _("Tokens per day %(span)s: %(total)s in total, %(peak)s.", span=span, total=num(sum(tokens)),
              peak=peak(tokens, num)),
            labels, [[row.input_tokens for row in rows], [row.output_tokens for row in rows]], num,
            series_names=[_("Input tokens"), _("Output tokens")],
            bar_title=lambda i: _("%(day)s: %(input)s input and %(output)s output tokens", day=labels[i],
                                  input=num(rows[i].input_tokens), output=num(rows[i].output_tokens))),
        bar_chart(
            "chart-credits", _("Credits per day"),
            _("Credits per day %(span)s: %(total)s in total, %(peak)s.", span=span,
              total=credits(sum(credit_values)), peak=peak(credit_values, credits)),
            labels, [credit_values], credits, series_names=[_("Credits")],
            bar_title=lambda i: _("%(day)s: %(credits)s credits", day=labels[i],
                                  credits=credits(credit_values[i]))),
    ]
