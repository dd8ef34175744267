"""Mergeable latency sketches with a 1 % relative-error bound.

A duration (in milliseconds) goes into the bucket that ddsketch's
LogarithmicMapping gives it; a sketch is just {bucket: count}, so sketches from
any number of workers, minutes or hours merge by adding counts (which is what
HINCRBY does in Redis). A quantile walks the buckets in order and answers the
bucket's representative value, which is within `RELATIVE_ACCURACY` of every
value the bucket holds: that is the DDSketch guarantee, from its own mapping.
Durations under MIN_MS share bucket ZERO_BUCKET (reported as 0)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ddsketch.mapping import LogarithmicMapping

RELATIVE_ACCURACY = 0.01
MIN_MS = 0.001  # one microsecond: anything faster is "0"
ZERO_BUCKET = -(2**31)

_mapping = LogarithmicMapping(RELATIVE_ACCURACY)


def bucket_of(ms: float) -> int:
    return ZERO_BUCKET if ms < MIN_MS else _mapping.key(ms)


def value_of(bucket: int) -> float:
    return 0.0 if bucket == ZERO_BUCKET else _mapping.value(bucket)


def merge(sketches: Iterable[Mapping[int, int]]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for sketch in sketches:
        for bucket, count in sketch.items():
            merged[bucket] = merged.get(bucket, 0) + count
    return merged


def quantiles(sketch: Mapping[int, int], qs: Iterable[float]) -> dict[float, float | None]:
    """The q-quantiles (0 ≤ q ≤ 1) of a sketch, in ms: the value of rank
    floor(q·(n−1)) within 1 % (None for an empty sketch)."""
    wanted = sorted(set(qs))
    total = sum(sketch.values())
    if total == 0:
        return dict.fromkeys(wanted)
    found: dict[float, float | None] = {}
    buckets = sorted(sketch.items())
    seen = 0
    index = 0
    for q in wanted:
        rank = int(q * (total - 1))
        while seen + buckets[index][1] <= rank:
            seen += buckets[index][1]
            index += 1
        found[q] = value_of(buckets[index][0])
    return found


def from_redis(row: Mapping[bytes, bytes]) -> dict[int, int]:
    """A sketch from a Redis hash of bucket → count (other fields ignored)."""
    sketch: dict[int, int] = {}
    for field, count in row.items():
        name = field.decode()
        if name.lstrip("-").isdigit():
            sketch[int(name)] = int(count)
    return sketch
