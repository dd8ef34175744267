"""Geometry of the dashboard's SVG charts, computed on the server.

The templates draw what these functions return; colours come from classes in
static/css/analytics.css, so the SVG carries no inline style and needs no
script (strict CSP). Plain arithmetic instead of a chart library: the charts
are five simple shapes, and a library would mean client-side JavaScript.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH = 720
HEIGHT = 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 28


@dataclass
class Tick:
    value: str
    y: float


@dataclass
class Chart:
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM
    ticks: list[Tick] = field(default_factory=list)
    labels: list[dict] = field(default_factory=list)
    items: list[dict] = field(default_factory=list)


def nice_max(value: float) -> float:
    """The smallest 1/2/5 x 10^n at or above value (at least 1)."""
    if value <= 1:
        return 1
    exponent = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * exponent:
            return step * exponent
    return 10 * exponent


def _x_labels(chart: Chart, days: list[str], slot: float) -> list[dict]:
    every = max(1, math.ceil(len(days) / 8))
    return [
        {"x": round(chart.left + slot * (i + 0.5), 1), "text": day[5:]} for i, day in enumerate(days) if i % every == 0
    ]


def stacked_bars(rows: list[dict], keys: list[str]) -> Chart:
    """One bar per row (a day), stacked by `keys` in order; drawn full width."""
    chart = Chart(width=1200, height=260, right=1200 - RIGHT, bottom=260 - BOTTOM)
    top = nice_max(max((row["total"] for row in rows), default=0))
    plot_height = chart.bottom - chart.top
    slot = (chart.right - chart.left) / max(1, len(rows))
    bar_width = max(1.0, slot * 0.8)
    for i, row in enumerate(rows):
        y = chart.bottom
        segments = []
        for key in keys:
            height = plot_height * row[key] / top
            if height > 0:
                y -= height
                segments.append({"key": key, "y": round(y, 2), "height": round(height, 2), "calls": row[key]})
        chart.items.append(
            {"x": round(chart.left + slot * i + (slot - bar_width) / 2, 2), "width": round(bar_width, 2),
             "day": row["day"], "total": row["total"], "segments": segments}
        )  # fmt: skip
    chart.ticks = [Tick(f"{top * f:g}", round(chart.bottom - plot_height * f, 1)) for f in (0, 0.5, 1)]
    chart.labels = _x_labels(chart, [row["day"] for row in rows], slot)
    return chart


def line(rows: list[dict], low: float, high: float, tick_format: str = "{:g}") -> Chart:
    """A line through rows' "average" (None breaks the line), on a fixed low..high scale."""
    chart = Chart(height=200, bottom=200 - BOTTOM)
    plot_height = chart.bottom - chart.top
    slot = (chart.right - chart.left) / max(1, len(rows))
    segment: list[str] = []
    for i, row in enumerate(rows):
        value = row["average"]
        if value is None:
            if segment:
                chart.items.append({"points": " ".join(segment)})
            segment = []
            continue
        x = chart.left + slot * (i + 0.5)
        y = chart.bottom - plot_height * (value - low) / (high - low)
        segment.append(f"{x:.1f},{y:.1f}")
    if segment:
        chart.items.append({"points": " ".join(segment)})
    chart.ticks = [
        Tick(tick_format.format(low + (high - low) * f), round(chart.bottom - plot_height * f, 1)) for f in (0, 0.5, 1)
    ]
    chart.labels = _x_labels(chart, [row["day"] for row in rows], slot)
    return chart


def horizontal_bars(rows: list[dict], value_key: str = "calls") -> Chart:
    chart = Chart(height=30 * max(1, len(rows)) + 10, left=120, right=WIDTH - 70)
    top = max((row[value_key] for row in rows), default=0) or 1
    for i, row in enumerate(rows):
        width = (chart.right - chart.left) * row[value_key] / top
        chart.items.append(
            {"y": 8 + 30 * i, "width": round(width, 2), "row": row, "text_x": round(chart.left + width + 6, 2)}
        )
    return chart


HEAT_LEVELS = 6
CELL = 26


def heatmap(weekdays: list[str], matrix: list[list[int]]) -> Chart:
    """Weekday rows by hour columns; each cell's class heat-0..heat-5 scales with its share of the busiest cell."""
    chart = Chart(width=50 + 24 * CELL + 4, height=24 + 7 * CELL, left=50, top=20)
    busiest = max((max(row) for row in matrix), default=0)
    for r, (name, row) in enumerate(zip(weekdays, matrix, strict=True)):
        for hour, calls in enumerate(row):
            level = 0 if not calls else 1 + min(HEAT_LEVELS - 2, int((HEAT_LEVELS - 1) * calls / (busiest + 1)))
            chart.items.append(
                {"x": chart.left + hour * CELL, "y": chart.top + r * CELL, "size": CELL - 2, "level": level,
                 "calls": calls, "weekday": name, "hour": hour}
            )  # fmt: skip
        chart.labels.append({"text": name, "x": chart.left - 8, "y": chart.top + r * CELL + CELL / 2 + 4})
    chart.ticks = [Tick(f"{hour:02d}", chart.left + hour * CELL + CELL / 2 - 1) for hour in range(0, 24, 3)]
    return chart


def sparkline(values: list[int], width: int = 120, height: int = 28) -> str:
    """Polyline points of a small trend line, scaled to its own maximum."""
    if not values:
        return ""
    top = max(values) or 1
    step = width / max(1, len(values) - 1)
    return " ".join(f"{i * step:.1f},{height - 2 - (height - 4) * v / top:.1f}" for i, v in enumerate(values))


def dashboard_charts(data: dict) -> dict:
    """Every chart of the analytics page, from comprehensive_analytics()'s result."""
    outcome_keys = [o["key"] for o in data["outcomes"]]
    calls_per_day = stacked_bars(data["calls_per_day"], outcome_keys)
    heat = heatmap(data["heatmap"]["weekdays"], data["heatmap"]["calls"])
    return {
        "calls_per_day": calls_per_day,
        "calls_per_day_bars": bars_markup(calls_per_day),
        "heatmap_cells": heat_markup(heat),
        "tables": dashboard_tables(data),
        "score_trend": line(data["score_trend"], 0, 100),
        "sentiment_trend": line(data["sentiment_trend"], -1, 1, "{:+.1f}"),
        "sentiment_distribution": horizontal_bars(data["sentiment_distribution"]),
        "heatmap": heat,
        "topics": [topic | {"points": sparkline(topic["daily"])} for topic in data["topics"]],
    }


# --- Markup of the many-element parts --------------------------------------------------
# A 90-day page has about 2,000 bars, cells and table cells; building them here
# with escape() costs a fraction of the template loops they replace (measured
# in bench/analytics.py). Every text value passes through escape().


def _number(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def table_body(rows: list[list[object]]) -> SafeString:
    """<tr>s whose first cell is a row header and the others numbers."""
    parts = []
    for row in rows:
        head, *cells = row
        parts.append(
            f'<tr><th scope="row">{escape(head)}</th>'
            + "".join(f'<td class="num">{escape(cell)}</td>' for cell in cells)
            + "</tr>"
        )
    return mark_safe("".join(parts))  # every value was escaped above


def bars_markup(chart: Chart) -> SafeString:
    parts = []
    for bar in chart.items:
        parts.append(f"<g><title>{escape(bar['day'])}: {bar['total']} calls</title>")
        parts.extend(
            f'<rect class="bar outcome-{escape(s["key"])}" x="{bar["x"]}" y="{s["y"]}" '
            f'width="{bar["width"]}" height="{s["height"]}"/>'
            for s in bar["segments"]
        )
        parts.append("</g>")
    return mark_safe("".join(parts))  # numbers and escaped text only


def heat_markup(chart: Chart) -> SafeString:
    return mark_safe(  # numbers and escaped text only
        "".join(
            f'<rect class="heat heat-{c["level"]}" x="{c["x"]}" y="{c["y"]}" width="{c["size"]}" '
            f'height="{c["size"]}" rx="3"><title>{escape(c["weekday"])} {c["hour"]:02d}:00: '
            f"{c['calls']} calls</title></rect>"
            for c in chart.items
        )
    )


def dashboard_tables(data: dict) -> dict[str, SafeString]:
    """The "show as table" bodies of the long charts."""
    outcome_keys = [o["key"] for o in data["outcomes"]]
    return {
        "calls_per_day": table_body(
            [[row["day"], *(row[k] for k in outcome_keys), row["total"]] for row in data["calls_per_day"]]
        ),
        "score_trend": table_body([[r["day"], _number(r["average"], 1), r["calls"]] for r in data["score_trend"]]),
        "sentiment_trend": table_body(
            [[r["day"], _number(r["average"], 3), r["calls"]] for r in data["sentiment_trend"]]
        ),
        "heatmap": table_body(
            [[day, *row] for day, row in zip(data["heatmap"]["weekdays"], data["heatmap"]["calls"], strict=True)]
        ),
    }
