"""Template filters of the calls pages: recording timestamps, sentiment words, rep names.
Durations and percentages come from the shared `formatting` library."""

from __future__ import annotations

from django import template

from calls.models import sentiment_band

register = template.Library()


@register.filter
def timestamp_ms(milliseconds: int | None) -> str:
    """Offset into a recording, as a player shows it: 65_000 → "1:05", 3_725_000 → "1:02:05"."""
    hours, rest = divmod((milliseconds or 0) // 1000, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@register.filter
def sentiment_word(value: float | None) -> str:
    return "—" if value is None else sentiment_band(value)


@register.filter
def two_places(value: float | None) -> str:
    """0.4 → "0.40"; a plain format, far cheaper than floatformat in a 200-row table."""
    return "—" if value is None else f"{value:.2f}"


@register.filter
def rep_name(call: object) -> str:
    """The rep's name from the table's annotations (or the related user)."""
    first = getattr(call, "rep_first_name", None)
    last = getattr(call, "rep_last_name", None)
    if first is None and last is None:
        rep = getattr(call, "rep", None)
        return rep.get_full_name() or rep.get_username() if rep else "—"
    return f"{first or ''} {last or ''}".strip() or "—"
