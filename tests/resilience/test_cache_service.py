"""The cache service against the real Redis: tags, races, stampedes, outages."""

from __future__ import annotations

import multiprocessing
import threading

import pytest
from django.conf import settings
from django.db import transaction
from django_redis import get_redis_connection

from resilience.cache.entries import EPOCH_TAG, Preset, build_key
from resilience.cache.service import CacheService, Result
from tests.resilience import cache_fixtures

fresh_cache_state = cache_fixtures.fresh_cache_state
private_redis = cache_fixtures.private_redis
private_alias = cache_fixtures.private_alias
closed_alias = cache_fixtures.closed_alias


@pytest.fixture
def service():
    return CacheService(wait_timeout=5.0)


def counting(value, counter: list[int]):
    def compute():
        counter.append(1)
        return value

    return compute


def test_a_cached_value_is_served_until_one_of_its_tags_is_invalidated(service):
    computed: list[int] = []
    first = service.get_or_set("k", counting("v1", computed), tags=["org:1"], preset="short")
    second = service.get_or_set("k", counting("v2", computed), tags=["org:1"], preset="short")
    service.invalidate_tags("org:1", on_commit=False)
    third = service.get_or_set("k", counting("v3", computed), tags=["org:1"], preset="short")

    assert (first.status, second.status, third.status) == ("MISS", "HIT", "MISS")
    assert (second.value, third.value) == ("v1", "v3")
    assert len(computed) == 2


def test_invalidating_an_unrelated_tag_keeps_the_entry(service):
    service.get_or_set("k", lambda: "v1", tags=["org:1"])
    service.invalidate_tags("org:2", on_commit=False)
    assert service.get_or_set("k", lambda: "v2", tags=["org:1"]).status == "HIT"


def test_get_set_and_delete_respect_tags(service):
    service.set("plain", {"a": 1}, tags=["call:7"], preset="long")
    assert service.get("plain", tags=["call:7"]) == {"a": 1}
    service.invalidate_tags("call:7", on_commit=False)
    assert service.get("plain", tags=["call:7"]) is None
    service.set("plain", 2, tags=["call:7"])
    service.delete("plain")
    assert service.get("plain", tags=["call:7"]) is None


def test_an_unknown_preset_is_refused_with_the_known_ones_named(service):
    with pytest.raises(ValueError, match="short, medium, long, per_user"):
        service.get_or_set("k", lambda: 1, preset="forever")


def test_keys_are_bounded_in_length_and_stable():
    long_key = build_key("calls", "x" * 1000)
    assert len(long_key) < 200
    assert long_key == build_key("calls", "x" * 1000)
    assert build_key("calls", "x" * 1000) != build_key("calls", "x" * 999)
    assert build_key("a:b", "c") != build_key("a", "b:c")


def test_an_invalidation_during_a_computation_makes_its_result_stale_at_once(service):
    started, invalidated = threading.Event(), threading.Event()

    def slow_compute():
        started.set()
        assert invalidated.wait(5)
        return "computed from old data"

    worker = threading.Thread(target=lambda: service.get_or_set("k", slow_compute, tags=["org:1"], preset="long"))
    worker.start()
    assert started.wait(5)
    service.invalidate_tags("org:1", on_commit=False)
    invalidated.set()
    worker.join(5)

    after = service.get_or_set("k", lambda: "computed from new data", tags=["org:1"], preset="long")
    assert after == Result("computed from new data", "MISS")


@pytest.mark.django_db(transaction=True)
def test_an_uncommitted_invalidation_cannot_be_undone_by_a_concurrent_reader(service):
    inside, reader_done = threading.Event(), threading.Event()

    def writer():
        with transaction.atomic():
            service.invalidate_tags("org:1")  # runs on commit
            inside.set()
            assert reader_done.wait(5)
        # committed here: the bump lands now

    thread = threading.Thread(target=writer)
    thread.start()
    assert inside.wait(5)
    # A reader that sees pre-commit data caches it under the current version...
    assert service.get_or_set("k", lambda: "pre-commit data", tags=["org:1"]).status == "MISS"
    reader_done.set()
    thread.join(5)
    # ...and the commit's bump makes it stale.
    assert service.get_or_set("k", lambda: "committed data", tags=["org:1"]).value == "committed data"


def test_many_threads_on_a_cold_key_compute_it_once(service):
    computed: list[int] = []
    barrier = threading.Barrier(12)
    results = []

    def slow():
        computed.append(1)
        threading.Event().wait(0.3)
        return "value"

    def worker():
        barrier.wait()
        results.append(service.get_or_set("cold", slow, tags=["org:1"]))

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)

    assert len(computed) == 1
    assert [r.value for r in results] == ["value"] * 12
    assert sorted(r.status for r in results).count("MISS") == 1


def _process_worker(counter_key, barrier, queue):
    svc = CacheService(wait_timeout=5.0)
    counter = svc.client

    def slow():
        counter.incr(counter_key)
        threading.Event().wait(0.3)
        return "value"

    barrier.wait()
    result = svc.get_or_set("cold-process", slow, tags=["org:1"])
    queue.put((result.value, result.status))


def test_several_processes_on_a_cold_key_compute_it_once():
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(4)
    queue = context.Queue()
    counter_key = f"{settings.CACHE_KEY_PREFIX}:test:computations"
    processes = [context.Process(target=_process_worker, args=(counter_key, barrier, queue)) for _ in range(4)]
    for p in processes:
        p.start()
    results = [queue.get(timeout=20) for _ in processes]
    for p in processes:
        p.join(10)

    assert int(get_redis_connection().get(counter_key)) == 1
    assert [value for value, _ in results] == ["value"] * 4


def test_an_expired_entry_is_served_stale_while_another_process_recomputes(service):
    expired_at_once = Preset(ttl=0)
    service.get_or_set("k", lambda: "old", tags=["org:1"], preset=expired_at_once)
    # Another process holds the computation lock.
    service.client.set(f"{service.prefix}l:default:k", "someone-else", px=5000)

    result = service.get_or_set("k", lambda: "new", tags=["org:1"], preset=expired_at_once)
    assert result == Result("old", "STALE")


def test_a_tag_invalidated_entry_is_never_served_stale(service):
    service.get_or_set("k", lambda: "old", tags=["org:1"], preset=Preset(ttl=0))
    service.invalidate_tags("org:1", on_commit=False)
    service.client.set(f"{service.prefix}l:default:k", "someone-else", px=300)

    result = service.get_or_set("k", lambda: "new", tags=["org:1"])
    assert result.value == "new"


def test_a_waiter_computes_itself_when_the_lock_holder_died(service):
    # The holder took the lock and died: its lock expires, the waiter takes over.
    service.client.set(f"{service.prefix}l:default:k", "dead-holder", px=200)
    result = service.get_or_set("k", lambda: "computed by the waiter", tags=["org:1"])
    assert result == Result("computed by the waiter", "MISS")
    assert service.get_or_set("k", lambda: "again", tags=["org:1"]).status == "HIT"


def test_a_closed_port_means_bypass_not_errors(closed_alias):
    svc = CacheService(closed_alias)
    computed: list[int] = []
    first = svc.get_or_set("k", counting("v", computed), tags=["org:1"])
    second = svc.get_or_set("k", counting("v", computed), tags=["org:1"])
    svc.invalidate_tags("org:1", on_commit=False)
    assert (first.status, second.status) == ("BYPASS", "BYPASS")
    assert len(computed) == 2
    assert svc.get("k") is None


def test_a_killed_redis_gives_bypass_and_the_cache_recovers_when_it_returns(private_redis, private_alias):
    svc = CacheService(private_alias)
    assert svc.get_or_set("k", lambda: "v1", tags=["org:1"]).status == "MISS"
    assert svc.get_or_set("k", lambda: "v1", tags=["org:1"]).status == "HIT"

    private_redis.kill()
    assert svc.get_or_set("k", lambda: "down", tags=["org:1"]) == Result("down", "BYPASS")

    private_redis.start()
    # The probe thread finds it again and bumps the epoch; then the cache serves again.
    statuses = []
    for _ in range(100):
        statuses.append(svc.get_or_set("k", lambda: "v2", tags=["org:1"]).status)
        if statuses[-1] == "HIT":
            break
        threading.Event().wait(0.02)
    assert statuses[-2:] == ["MISS", "HIT"]


def test_an_invalidation_lost_to_a_frozen_redis_is_replayed_when_it_answers_again(private_redis, private_alias):
    writer = CacheService(private_alias)
    reader = CacheService(private_alias)
    reader.get_or_set("page", lambda: "before the change", tags=["org:1"], preset="long")

    private_redis.freeze()  # keeps its data, answers nobody
    writer.invalidate_tags("org:1", on_commit=False)  # times out: kept as pending
    private_redis.thaw()

    # The writer's next invalidation carries the lost one (and the outage epoch).
    writer.invalidate_tags("org:2", on_commit=False)
    assert not writer.outage.pending
    assert reader.get_or_set("page", lambda: "after the change", tags=["org:1"]).value == "after the change"


def _idle_writer(frozen, invalidated, done):
    writer = CacheService("private")
    assert frozen.wait(10)
    writer.invalidate_tags("org:1", on_commit=False)  # times out: kept as pending
    invalidated.set()
    done.wait(10)  # idle: no request ever comes to replay it


def test_an_invalidation_lost_by_a_process_that_then_stays_idle_still_reaches_the_readers(private_redis, private_alias):
    context = multiprocessing.get_context("fork")
    frozen, invalidated, done = context.Event(), context.Event(), context.Event()
    writer = context.Process(target=_idle_writer, args=(frozen, invalidated, done))
    writer.start()
    reader = CacheService(private_alias)  # another process's view: it never sees the outage
    reader.get_or_set("page", lambda: "before the change", tags=["org:1"], preset="long")

    private_redis.freeze()
    frozen.set()
    assert invalidated.wait(10)
    private_redis.thaw()

    seen = []
    for _ in range(100):
        seen.append(reader.get_or_set("page", lambda: "after the change", tags=["org:1"]).value)
        if seen[-1] == "after the change":
            break
        threading.Event().wait(0.05)
    done.set()
    writer.join(10)
    assert seen[-1] == "after the change"
    assert private_redis.client().get(f"{reader.prefix}t:{EPOCH_TAG}") is not None


def test_statistics_count_hits_misses_and_errors_per_namespace_and_view(service, closed_alias):
    service.get_or_set("k", lambda: 1, namespace="reports", view="reports.monthly")
    service.get_or_set("k", lambda: 1, namespace="reports", view="reports.monthly")
    CacheService(closed_alias).get_or_set("k", lambda: 1, namespace="reports")

    stats = service.stats()
    assert stats["namespaces"]["reports"]["hits"] == 1
    assert stats["namespaces"]["reports"]["misses"] == 1
    assert stats["namespaces"]["reports"]["errors"] >= 1
    assert stats["views"]["reports.monthly"]["hit_rate"] == 0.5


def test_flush_drops_only_our_namespace(service):
    foreign = get_redis_connection()
    foreign.set("someone-else:key", "kept")
    service.get_or_set("k", lambda: "v", tags=["org:1"])

    removed = service.flush_namespace()
    assert removed == 1
    assert foreign.get("someone-else:key") == b"kept"
    assert service.get_or_set("k", lambda: "v2", tags=["org:1"]).status == "MISS"


class Hostile:
    def __reduce__(self):
        return (open, (HOSTILE_MARK, "w"))


HOSTILE_MARK = "/tmp/calliq-cache-hostile-ran"


def test_a_pickle_written_straight_into_redis_is_a_miss_and_never_runs(service, tmp_path):
    import os
    import pickle

    from django.core.cache import cache

    if os.path.exists(HOSTILE_MARK):
        os.remove(HOSTILE_MARK)
    payload = pickle.dumps(Hostile())
    service.client.set(service.entry_key("default", "k"), payload)
    service.client.set(cache.make_key("django-key"), payload)

    assert service.get_or_set("k", lambda: "computed", tags=["org:1"]) == Result("computed", "MISS")
    with pytest.raises(ValueError, match="unpack"):  # Django's cache API: msgpack refuses it, nothing runs
        cache.get("django-key")
    assert not os.path.exists(HOSTILE_MARK)
    # The hostile bytes were replaced by a msgpack entry.
    assert service.client.get(service.entry_key("default", "k"))[:1] != b"\x80"


def test_entries_and_djangos_cache_share_one_store_in_msgpack(service):
    from django.core.cache import cache
    from django_redis import get_redis_connection

    assert service.client is get_redis_connection("default")
    cache.set("shared", {"calls": 3, "body": b"bytes"})
    raw = service.client.get(cache.make_key("shared"))
    import msgpack

    assert msgpack.unpackb(raw) == {"calls": 3, "body": b"bytes"}
    service.set("plain", {"a": [1, 2]}, tags=["org:1"])
    assert cache.get("shared") == {"calls": 3, "body": b"bytes"}
    assert service.get("plain", tags=["org:1"]) == {"a": [1, 2]}


def test_a_value_msgpack_cannot_carry_is_served_but_never_stored(service):
    assert service.get_or_set("k", lambda: {1, 2}, tags=["org:1"]).value == {1, 2}
    assert service.client.get(service.entry_key("default", "k")) is None


def test_the_analytics_report_is_stored_as_msgpack_and_served_from_the_cache(service, org, member, call):
    # Data-level caching must not silently skip a value msgpack cannot carry.
    import datetime

    from django.utils import timezone

    from analytics.report import AnalyticsParams, cached_comprehensive_analytics

    today = timezone.localdate()
    params = AnalyticsParams(first=today - datetime.timedelta(days=29), last=today)
    first = cached_comprehensive_analytics(org, params)
    stats_before = service.stats()["namespaces"]["analytics"]
    second = cached_comprehensive_analytics(org, params)
    service.flush_stats(force=True)
    stats_after = service.stats()["namespaces"]["analytics"]
    assert second == first
    assert (stats_before["errors"], stats_after["hits"] - stats_before["hits"]) == (0, 1)


def test_locks_a_process_could_not_release_during_an_outage_are_released_when_redis_answers(service):
    # What get_or_set records when an acquire or release fails (a stalled Redis
    # may still run the SET NX when it resumes): the lock name and our token.
    ours, theirs = service.lock_key("default", "ours"), service.lock_key("default", "theirs")
    service.client.lock(ours, timeout=60).acquire(token="our-token")
    service.client.lock(theirs, timeout=60).acquire(token="their-token")
    service.outage.orphan(ours, "our-token")
    service.outage.orphan(theirs, "our-token")  # since taken by another process: not ours to drop

    assert service.replay()  # what the probe does once Redis answers
    assert service.client.get(ours) is None
    assert service.client.get(theirs) == b"their-token"
    assert not service.outage.pending
