"""A private redis-server for the breaker benchmarks, so their counters and
the machine's Redis never mix. Not a benchmark itself (bench/run.sh skips
files starting with an underscore)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time

import redis

PORTS = range(16450, 16500)


def free_port() -> int:
    for port in PORTS:
        with contextlib.closing(socket.socket()) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


def start_redis(port: int) -> subprocess.Popen:
    """Start redis-server on `port` (nothing kept on disk) and wait until it answers."""
    process = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    probe = redis.Redis(port=port)
    for _ in range(100):
        with contextlib.suppress(redis.RedisError):
            if probe.ping():
                return process
        time.sleep(0.05)
    raise SystemExit("redis-server did not start")
