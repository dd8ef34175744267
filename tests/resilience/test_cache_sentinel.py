"""Redis Sentinel is configuration only: a process started with
CALLIQ_REDIS_SENTINELS and REDIS_URL=redis://<service>/<db> (and no other
change) runs the cache through django-redis's SentinelClient, and keeps
working while Sentinel fails the primary over to its replica: reads miss or
bypass at worst, never an exception, and the cache serves hits again from the
new primary.

Everything is real and private: a primary, a replica and a sentinel
(`redis-server --sentinel`) on loopback ports of our own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tests.private_redis import PrivateRedis, free_port

pytestmark = pytest.mark.slow

SERVICE = "calliqcache"
ROOT = Path(__file__).resolve().parents[2]

# Runs in a child process configured by the environment only.
CHILD = """
import json, os, sys, time
import django
django.setup()
from django.core.cache import cache
from resilience.cache import cache_service

stop = os.environ["STOP_FILE"]
events = []
errors = []
service = cache_service()
while not os.path.exists(stop):
    try:
        result = service.get_or_set("k", lambda: "value", tags=["org:1"], ttl=300)
        events.append((time.time(), result.status))
        if result.status == "HIT" and not os.path.exists(os.environ["READY_FILE"]):
            open(os.environ["READY_FILE"], "w").close()
    except Exception as exc:  # the point of the test: there must be none
        errors.append(repr(exc))
    time.sleep(0.01)
cache.set("after-failover", {"ok": True})
after = [service.get_or_set("k", lambda: "value", tags=["org:1"], ttl=300).status for _ in range(2)]
print(json.dumps({
    "client": type(service.client.connection_pool).__name__,
    "events": events, "errors": errors, "after": after,
    "django_cache": cache.get("after-failover"),
}))
"""


def start_sentinel(tmp_path: Path, port: int, primary_port: int) -> subprocess.Popen:
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 1\n"
        f"sentinel down-after-milliseconds {SERVICE} 300\n"
        f"sentinel failover-timeout {SERVICE} 2000\n"
    )
    process = subprocess.Popen(
        ["redis-server", str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    client = redis.Redis(port=port, socket_timeout=0.5)
    for _ in range(100):
        try:
            if client.sentinel_master(SERVICE)["num-slaves"] >= 1:
                return process
        except (redis.RedisError, KeyError):
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("the sentinel never saw the replica")


def master_port(sentinel_port: int) -> int:
    return int(redis.Redis(port=sentinel_port).sentinel_get_master_addr_by_name(SERVICE)[1])


def test_the_cache_keeps_working_through_a_sentinel_failover(tmp_path):
    primary = PrivateRedis(free_port())
    primary.start()
    replica = PrivateRedis(free_port())
    replica.start()
    sentinel = None
    child = None
    try:
        replica.client().replicaof("127.0.0.1", primary.port)
        sentinel_port = free_port()
        sentinel = start_sentinel(tmp_path, sentinel_port, primary.port)
        stop_file = tmp_path / "stop"
        env = {
            **os.environ,
            "REDIS_URL": f"redis://{SERVICE}/0",
            "CALLIQ_REDIS_SENTINELS": f"127.0.0.1:{sentinel_port}",
            "STOP_FILE": str(stop_file),
            "READY_FILE": str(tmp_path / "ready"),
        }
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(600):  # Django's start-up on a busy machine
            if (tmp_path / "ready").exists() or child.poll() is not None:
                break
            time.sleep(0.05)
        time.sleep(0.5)
        killed_at = time.time()
        primary.kill()  # SIGKILL: the sentinel promotes the replica
        for _ in range(150):
            if master_port(sentinel_port) == replica.port:
                break
            time.sleep(0.1)
        assert master_port(sentinel_port) == replica.port, "no failover happened"
        time.sleep(1.5)
        stop_file.write_text("stop")
        out, err = child.communicate(timeout=30)
        assert child.returncode == 0, err[-2000:]
        report = json.loads(out.strip().splitlines()[-1])
    finally:
        if child is not None and child.poll() is None:
            child.kill()
        if sentinel is not None:
            sentinel.kill()
        primary.kill()
        replica.kill()

    assert report["client"] == "SentinelConnectionPool"
    assert report["errors"] == []
    before = [status for at, status in report["events"] if at < killed_at]
    during_and_after = [status for at, status in report["events"] if at >= killed_at]
    assert "HIT" in before
    assert "BYPASS" in during_and_after  # it did notice the primary go
    assert report["after"][-1] == "HIT"  # and serves hits from the new primary
    assert report["django_cache"] == {"ok": True}
