"""Read replicas (calliq/db_router.py).

Routing, on a "replica" alias that mirrors the test database on the same
server: analytics pages and CSV exports read from it, other pages and all
writes go to the primary, and a browser that just wrote reads the primary until
its pin expires. The lag guard, on a REAL streaming replica (a private primary
made with initdb and its replica made with pg_basebackup, on private ports
under /tmp, started and stopped here by PID): the router uses the replica while
it is caught up, the primary while its replay is paused behind a write for
longer than CALLIQ_REPLICA_MAX_LAG, the replica again once it has caught up,
and the primary when the replica is stopped."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from calliq import db_router
from calliq.db_router import PIN_COOKIE, REPLICA, ReplicaRouter, RequestReads, measure_replica_lag, replica_lag
from calls.models import Call
from calls.selection import set_calls_selected
from tests.calls.helpers import bulk_calls
from tests.private_redis import free_port


def add_replica_alias(**overrides) -> None:
    connections.settings[REPLICA] = dict(connections.settings["default"]) | overrides
    replica_lag.forget()


def remove_replica_alias() -> None:
    if REPLICA in connections.settings:
        connections[REPLICA].close()
        del connections[REPLICA]
        del connections.settings[REPLICA]
    replica_lag.forget()


@pytest.fixture
def mirror_replica(transactional_db):
    """A replica alias on the test database itself: rows the primary committed are there at once."""
    add_replica_alias()
    # Connected here: Django's test case only lets aliases it knew at its start connect lazily.
    connections[REPLICA].connect()
    yield connections[REPLICA]
    remove_replica_alias()


@pytest.fixture
def signed_in(client, member):
    client.force_login(member.user)
    return client


@pytest.fixture
def some_calls(org, member):
    return bulk_calls(org, [{"title": f"Call {n}", "rep": member.user, "score": 40 + n} for n in range(5)])


def replica_queries(client_call) -> list[str]:
    with CaptureQueriesContext(connections[REPLICA]) as queries:
        client_call()
    return [q["sql"] for q in queries.captured_queries]


def test_the_analytics_page_reads_from_the_replica(mirror_replica, signed_in, some_calls):
    responses = []
    sql = replica_queries(lambda: responses.append(signed_in.get(reverse("analytics:dashboard"))))
    assert any("analytics_dailyrollup" in q for q in sql), sql
    assert responses[0].status_code == 200
    assert PIN_COOKIE not in responses[0].cookies  # reading pins nobody to the primary


@pytest.fixture
def failing_replica(transactional_db):
    """A "replica" that answers the lag check but fails every query of ours (a database without our tables)."""
    add_replica_alias(NAME="postgres")
    connections[REPLICA].connect()
    yield connections[REPLICA]
    remove_replica_alias()


def test_a_replica_failing_a_query_costs_a_retry_on_the_primary_not_a_500(failing_replica, signed_in, some_calls):
    first = signed_in.get(reverse("analytics:dashboard"))

    assert first.status_code == 200
    assert "Call 0" in first.text or first.context["data"]  # the page has the primary's figures
    assert replica_lag.seconds(interval=3600) == float("inf")  # marked down until the next measurement
    assert connections[REPLICA].connection is None  # closed after the failure
    assert signed_in.get(reverse("analytics:dashboard")).status_code == 200
    assert connections[REPLICA].connection is None  # the next request did not go back to it


def test_the_calls_dashboard_never_reads_from_the_replica(mirror_replica, signed_in, some_calls):
    sql = replica_queries(lambda: signed_in.get(reverse("calls:list")))
    assert sql == []


def test_the_streamed_export_reads_from_the_replica_while_it_streams(
    mirror_replica, signed_in, org, member, some_calls
):
    set_calls_selected(org, member.user, [c.pk for c in some_calls], selected=True)

    def export():
        response = signed_in.post(reverse("calls:export"))
        assert response.streaming
        assert b"".join(response.streaming_content).count(b"\n") == 1 + len(some_calls)

    sql = replica_queries(export)
    assert any("calls_call" in q and "LIMIT" in q for q in sql)


def test_a_browser_that_wrote_reads_its_own_write_from_the_primary_until_the_pin_expires(
    mirror_replica, signed_in, org, member, some_calls
):
    response = signed_in.post(reverse("calls:select"), {"action": "select_page", "page_ids": [some_calls[0].pk]})
    assert response.status_code == 302
    pin = response.cookies[PIN_COOKIE]
    assert pin["httponly"]
    assert float(pin.value) > time.time()

    assert replica_queries(lambda: signed_in.post(reverse("calls:export")).getvalue()) == []
    assert replica_queries(lambda: signed_in.get(reverse("analytics:dashboard"))) == []

    signed_in.cookies[PIN_COOKIE] = f"{time.time() - 1:.0f}"  # the pin has run out
    assert replica_queries(lambda: signed_in.post(reverse("calls:export")).getvalue()) != []


def test_writes_reads_outside_a_request_and_other_apps_use_the_primary(mirror_replica, member):
    router = ReplicaRouter()
    assert router.db_for_write(Call) is None
    assert router.db_for_read(Call) is None  # a task or a command: no request
    token = db_router._request.set(RequestReads(replica_allowed=True))
    try:
        assert router.db_for_read(Call) == REPLICA
        assert router.db_for_read(type(member.user)) is None  # sessions and users: the primary
        router.db_for_write(Call)
        assert router.db_for_read(Call) is None  # this request wrote: its reads follow
    finally:
        db_router._request.reset(token)
    assert router.allow_migrate(REPLICA, "calls") is False


def test_no_replica_configured_means_every_read_goes_to_the_primary(db):
    token = db_router._request.set(RequestReads(replica_allowed=True))
    try:
        assert ReplicaRouter().db_for_read(Call) is None
    finally:
        db_router._request.reset(token)


# --- A real streaming replica --------------------------------------------------


def as_postgres_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; a test run as root runs it as the postgres user.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class Cluster:
    def __init__(self, data: Path, port: int) -> None:
        self.data, self.port = data, port
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = (self.data.parent / f"{self.data.name}.log").open("a")
        command = ["postgres", "-D", str(self.data), "-p", str(self.port), "-c", "listen_addresses=127.0.0.1"]
        command += ["-k", str(self.data.parent), "-c", "fsync=off"]
        self.process = subprocess.Popen(as_postgres_user(command), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, (self.data.parent / f"{self.data.name}.log").read_text()
            try:
                psycopg.connect(self.url, connect_timeout=1).close()
                return
            except psycopg.OperationalError:
                assert time.monotonic() < deadline, "cluster did not start"
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # runuser execs nothing of its own here: signal its child, the postmaster, through the PID file.
            postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(postmaster, signal.SIGINT)  # fast shutdown
            self.process.wait(60)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture
def streaming_replica(django_db_blocker):
    """(primary, replica): a private primary and a streaming replica of it."""
    root = Path(tempfile.mkdtemp(prefix="calliq-replica-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    primary = Cluster(root / "primary", free_port(None))
    replica = Cluster(root / "replica", free_port(None))
    try:
        subprocess.run(
            as_postgres_user(["initdb", "-D", str(primary.data), "-U", "postgres", "--auth=trust", "-N"]),
            check=True,
            capture_output=True,
        )
        primary.start()
        subprocess.run(
            as_postgres_user(
                [
                    *("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
                    *("-D", str(replica.data), "-X", "stream", "-R", "-c", "fast"),
                ]
            ),
            check=True,
            capture_output=True,
        )
        replica.start()
        with django_db_blocker.unblock():
            yield primary, replica
    finally:
        remove_replica_alias()
        replica.stop()
        primary.stop()
        shutil.rmtree(root, ignore_errors=True)


def wait_until(predicate, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.2)


@pytest.mark.slow
def test_the_lag_guard_follows_a_real_streaming_replica(streaming_replica, settings):
    primary, replica = streaming_replica
    settings.CALLIQ_REPLICA_MAX_LAG = 1
    settings.CALLIQ_REPLICA_LAG_CHECK_SECONDS = 0
    add_replica_alias(NAME="postgres", HOST="127.0.0.1", PORT=replica.port, USER="postgres", PASSWORD="")
    router = ReplicaRouter()
    token = db_router._request.set(RequestReads(replica_allowed=True))
    try:
        with psycopg.connect(replica.url, autocommit=True) as standby:
            assert standby.execute("SELECT pg_is_in_recovery()").fetchone()[0]
            assert measure_replica_lag(REPLICA) == 0
            assert router.db_for_read(Call) == REPLICA

            # Replay paused behind a committed write: the replica falls behind.
            standby.execute("SELECT pg_wal_replay_pause()")
            with psycopg.connect(primary.url, autocommit=True) as main:
                main.execute("CREATE TABLE written_after_the_pause (id int)")
                main.execute("INSERT INTO written_after_the_pause VALUES (1)")
            wait_until(lambda: measure_replica_lag(REPLICA) > 1)
            assert router.db_for_read(Call) is None

            standby.execute("SELECT pg_wal_replay_resume()")
            wait_until(lambda: measure_replica_lag(REPLICA) == 0)
            assert router.db_for_read(Call) == REPLICA
            assert standby.execute("SELECT count(*) FROM written_after_the_pause").fetchone()[0] == 1

        replica.stop()
        assert measure_replica_lag(REPLICA) == float("inf")
        assert router.db_for_read(Call) is None
    finally:
        db_router._request.reset(token)
