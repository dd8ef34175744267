"""Server-side SVG line charts for the monitoring pages: no script, so they
work under a CSP that allows none, and every chart has its table beside it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

WIDTH, HEIGHT, PAD = 600, 140, 24


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str
    labels: list[str]
    values: list[float | None]
    polyline: str
    maximum: float
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def rows(self) -> list[tuple[str, float | None]]:
        return list(zip(self.labels, self.values, strict=True))


def line_chart(title: str, unit: str, points: list[tuple[int, float | None]]) -> Chart:
    """`points` are (unix time, value); None leaves a gap at zero height."""
    values = [v for _, v in points]
    maximum = max((v for v in values if v is not None), default=0.0) or 1.0
    step = (WIDTH - 2 * PAD) / max(len(points) - 1, 1)
    coords = []
    for i, value in enumerate(values):
        y = HEIGHT - PAD - ((value or 0.0) / maximum) * (HEIGHT - 2 * PAD)
        coords.append(f"{PAD + i * step:.1f},{y:.1f}")
    labels = [dt.datetime.fromtimestamp(at, tz=dt.UTC).strftime("%H:%M") for at, _ in points]
    return Chart(
        title, unit, labels, [None if v is None else round(v, 3) for v in values], " ".join(coords), round(maximum, 3)
    )
