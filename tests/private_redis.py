"""A redis-server of a test's or a benchmark's own, on a loopback port, that
it may freeze (SIGSTOP: connections accepted, nothing answered), thaw and
kill without touching the machine's Redis.

The one helper for this (tests/resilience and bench/ use it). Starting fails
loudly: a redis-server that never answers raises instead of leaving a test to
run against nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import redis

# Ports tried for private servers; callers running several at once may pass a narrower range.
PORTS = range(16400, 16600)
START_TIMEOUT_SECONDS = 5.0


def free_port(ports: range | None = PORTS) -> int:
    """A loopback port that nothing listens on right now: the first free one in
    `ports`, or, with ports=None, one the OS picks (a different one on each call,
    for several servers chosen before any of them binds)."""
    if ports is None:
        with contextlib.closing(socket.socket()) as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]
    for port in ports:
        with contextlib.closing(socket.socket()) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1} for a private redis-server")


def start_redis(port: int) -> subprocess.Popen:
    """Start redis-server on 127.0.0.1:`port`, nothing kept on disk (and any file
    it would write goes to the temporary directory, never the working one), and wait
    until it answers PING. Raises RuntimeError (after killing the process) when
    the binary is missing or the server does not answer within START_TIMEOUT_SECONDS."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(binary):
        raise RuntimeError("redis-server is not installed; a private Redis cannot start")
    process = subprocess.Popen(
        [
            binary,
            *("--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
            *("--dir", tempfile.gettempdir(), "--dbfilename", f"calliq-private-redis-{port}.rdb"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    probe = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2, socket_timeout=0.5)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                error = process.stderr.read().decode(errors="replace").strip() if process.stderr else ""
                raise RuntimeError(f"redis-server on port {port} exited at once: {error or 'no message'}")
            with contextlib.suppress(redis.RedisError):
                if probe.ping():
                    return process
            time.sleep(0.05)
    finally:
        probe.close()
    process.kill()
    process.wait(5)
    raise RuntimeError(f"redis-server on port {port} did not answer within {START_TIMEOUT_SECONDS} s")


class PrivateRedis:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = start_redis(self.port)

    def freeze(self) -> None:
        """SIGSTOP: Redis keeps its data and accepts connections but answers nobody."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.thaw()  # a stopped process would not die until continued
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)


@contextlib.contextmanager
def running_redis(ports: range = PORTS) -> Iterator[PrivateRedis]:
    """A started PrivateRedis, killed on exit whatever state the test left it in."""
    server = PrivateRedis(free_port(ports))
    server.start()
    try:
        yield server
    finally:
        server.kill()
