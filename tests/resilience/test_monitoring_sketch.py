"""The latency sketch: within 1 % relative error of the exact percentiles on a
million heavy-tailed samples, and mergeable by adding bucket counts."""

import random
from collections import Counter

from resilience.monitoring import sketch


def exact(values_sorted, q):
    return values_sorted[int(q * (len(values_sorted) - 1))]


def test_percentiles_of_a_million_pareto_samples_are_within_one_percent():
    rng = random.Random(20261129)
    samples = [rng.paretovariate(1.2) * 3.0 for _ in range(1_000_000)]  # ms, heavy tail
    counts = Counter(sketch.bucket_of(v) for v in samples)
    samples.sort()
    qs = (0.5, 0.9, 0.95, 0.99, 0.999)
    found = sketch.quantiles(counts, qs)
    for q in qs:
        truth = exact(samples, q)
        assert abs(found[q] - truth) / truth <= 0.01, (q, found[q], truth)


def test_sketches_from_four_workers_merge_into_the_sketch_of_all_samples():
    rng = random.Random(7)
    samples = [rng.lognormvariate(3, 1.5) for _ in range(40_000)]
    parts = [Counter(sketch.bucket_of(v) for v in samples[i::4]) for i in range(4)]
    whole = Counter(sketch.bucket_of(v) for v in samples)
    assert sketch.merge(parts) == dict(whole)
    samples.sort()
    assert (
        abs(sketch.quantiles(sketch.merge(parts), (0.99,))[0.99] - exact(samples, 0.99)) / exact(samples, 0.99) <= 0.01
    )


def test_an_empty_sketch_has_no_percentiles_and_sub_microsecond_times_count_as_zero():
    assert sketch.quantiles({}, (0.5,)) == {0.5: None}
    assert sketch.quantiles({sketch.bucket_of(0.0): 3}, (0.5,)) == {0.5: 0.0}
