"""Formatting of analytics figures in templates: numbers, KPI values and changes, sort links.
Durations and percentages come from the shared `formatting` library (calls/templatetags)."""

from __future__ import annotations

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma

from calls.templatetags.formatting import duration, percent

register = template.Library()

SORT_COLUMNS = [
    ("name", "Rep", False),
    ("calls", "Calls", True),
    ("talk_time", "Talk time", True),
    ("score", "Avg score", True),
    ("talk_ratio", "Talk ratio", True),
    ("win_rate", "Win rate", True),
]


@register.filter
def number(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


@register.filter
def kpi_value(kpi: dict) -> str:
    value, unit = kpi["value"], kpi["unit"]
    if value is None:
        return "—"
    if unit == "count":
        return intcomma(value)
    if unit == "duration":
        return duration(value)
    if unit == "percent":
        return percent(value)
    if unit == "sentiment":
        return f"{value:+.2f}"
    return f"{value:.1f}"


@register.filter
def kpi_change(kpi: dict) -> str:
    """Rates change in percentage points, sentiment in absolute terms, the rest relative to before."""
    if kpi["change"] is None:
        return "no data to compare"
    if kpi["unit"] == "percent":
        return f"{kpi['change'] * 100:+.1f} pts"
    if kpi["unit"] == "sentiment":
        return f"{kpi['change']:+.2f}"
    if kpi["change_ratio"] is None:
        return "new" if kpi["change"] else "±0"
    return f"{kpi['change_ratio'] * 100:+.1f}%"


@register.simple_tag
def leaderboard_columns(current: str) -> list[dict]:
    """Header cells: the next sort of each column (toggling direction) and its aria-sort."""
    columns = []
    for key, label, numeric in SORT_COLUMNS:
        state = "none"
        if current == key:
            state = "ascending"
        elif current == f"-{key}":
            state = "descending"
        next_sort = key if state == "descending" else f"-{key}"
        if state == "none" and not numeric:
            next_sort = key
        columns.append({"key": key, "label": label, "numeric": numeric, "aria_sort": state, "next_sort": next_sort})
    return columns
