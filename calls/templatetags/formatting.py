"""Template filters for figures, shared by every app's pages so a duration or
a rate reads the same wherever it appears: `{% load formatting %}`."""

from __future__ import annotations

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma

register = template.Library()


@register.filter
def duration(seconds: float | None) -> str:
    """185 → "3m 05s"; 3725 → "1h 02m"; 98765 → "27h 26m"; None → "—"."""
    if seconds is None:
        return "—"
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{intcomma(hours)}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    """A 0-1 share as a percentage: 0.4235 → "42.4%", with `|percent:0` → "42%"."""
    return "—" if value is None else f"{value * 100:.{digits}f}%"
