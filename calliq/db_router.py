"""Read replicas: analytics pages and CSV exports read from the "replica"
database alias (settings.DATABASE_REPLICA_URL), everything else from the primary.

ReplicaMiddleware decides per request: a view whose URL name is in
settings.CALLIQ_REPLICA_ROUTES may read from the replica, unless this browser
wrote within settings.CALLIQ_READ_YOUR_WRITES_SECONDS (a write sets the
`calliq_primary_until` cookie, so a person's next pages show their own change
whichever web host serves them). Middleware before the view (sessions, tenancy)
always reads the primary: who may see what is never decided on stale rows.

ReplicaRouter then sends reads of the calls and analytics apps to the replica
only while it is at most settings.CALLIQ_REPLICA_MAX_LAG seconds behind. The lag
is `now() - pg_last_xact_replay_timestamp()` on the replica (0 when it has
replayed all it received), measured at most every
CALLIQ_REPLICA_LAG_CHECK_SECONDS per process; a replica that cannot be reached
counts as too far behind, and one that fails a query between two checks
costs that request a retry of its (read-only) view on the primary, not a 500.
Celery tasks and commands have no request and always
use the primary.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections
from django.db.models import Model
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

REPLICA = "replica"
PIN_COOKIE = "calliq_primary_until"
REPLICA_APPS = frozenset({"calls", "analytics"})
LAG_SQL = """
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
    ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 'Infinity')
END
"""


@dataclass
class RequestReads:
    """What the current request may read from, and whether it wrote."""

    replica_allowed: bool = False
    pinned_to_primary: bool = False
    wrote: bool = False
    used_replica: bool = False
    view: tuple[Any, Any, Any] | None = None  # (view, args, kwargs), to run again on the primary


_request: ContextVar[RequestReads | None] = ContextVar("calliq_request_reads", default=None)


class ReplicaLag:
    """The replica's lag in seconds, measured at most every `interval` seconds per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._measured_at = float("-inf")
        self._seconds = float("inf")

    def seconds(self, *, interval: float) -> float:
        now = time.monotonic()
        if now - self._measured_at >= interval and self._lock.acquire(blocking=False):
            try:
                self._seconds = measure_replica_lag(REPLICA)
                self._measured_at = time.monotonic()
            finally:
                self._lock.release()
        return self._seconds

    def forget(self) -> None:
        self._measured_at = float("-inf")

    def mark_down(self) -> None:
        """The replica failed a query: read from the primary until the next measurement."""
        self._seconds, self._measured_at = float("inf"), time.monotonic()


def measure_replica_lag(alias: str) -> float:
    """Seconds the database at `alias` is behind its primary (0 for a primary);
    infinity when it cannot be asked."""
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(LAG_SQL)
            return float(cursor.fetchone()[0])
    except DatabaseError:
        logger.warning("replica %r cannot report its lag; reading from the primary", alias, exc_info=True)
        connections[alias].close()
        return float("inf")


replica_lag = ReplicaLag()


def replica_is_fresh() -> bool:
    lag = replica_lag.seconds(interval=settings.CALLIQ_REPLICA_LAG_CHECK_SECONDS)
    return lag <= settings.CALLIQ_REPLICA_MAX_LAG


class ReplicaRouter:
    """Django database router (settings.DATABASE_ROUTERS); None means "the primary"."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        reads = _request.get()
        if (
            reads is None
            or not reads.replica_allowed
            or reads.pinned_to_primary
            or reads.wrote
            or model._meta.app_label not in REPLICA_APPS
            or REPLICA not in connections.settings
        ):
            return None
        if not replica_is_fresh():
            return None
        reads.used_replica = True
        return REPLICA

    def db_for_write(self, model: type[Model], **hints: Any) -> str | None:
        reads = _request.get()
        if reads is not None:
            reads.wrote = True
        return None

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        return True  # the replica holds the primary's rows

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if db == REPLICA else None


def _route_allowed(request: HttpRequest) -> bool:
    match = request.resolver_match
    if match is None:
        return False
    routes = settings.CALLIQ_REPLICA_ROUTES
    return match.view_name in routes or f"{match.namespace}:*" in routes


def _pinned(request: HttpRequest) -> bool:
    try:
        return float(request.COOKIES.get(PIN_COOKIE, "0")) > time.time()
    except ValueError:
        return False


class ReplicaMiddleware:
    """Sets what each request may read from; pins a browser that wrote to the primary."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        reads = RequestReads(pinned_to_primary=_pinned(request))
        token = _request.set(reads)
        try:
            response = self.get_response(request)
        finally:
            _request.reset(token)
        if reads.wrote:
            seconds = settings.CALLIQ_READ_YOUR_WRITES_SECONDS
            response.set_cookie(
                PIN_COOKIE,
                f"{time.time() + seconds:.0f}",
                max_age=int(seconds) + 1,
                httponly=True,
                samesite="Lax",
                secure=settings.SESSION_COOKIE_SECURE,
            )
        if response.streaming and reads.replica_allowed:
            # A streamed export runs its queries after this returns: under the same rules.
            response.streaming_content = _within(reads, response.streaming_content)
        return response

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: Any) -> None:
        reads = _request.get()
        if reads is not None:
            reads.replica_allowed = _route_allowed(request)
            reads.view = (view, args, kwargs)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A replica that dies between two lag checks costs a retry on the primary, not a 500:
        the routes allowed on the replica only read, so running the view again is safe."""
        reads = _request.get()
        if reads is None or reads.view is None or not reads.used_replica or not isinstance(exception, DatabaseError):
            return None
        logger.warning("the replica failed a query; %s is served from the primary", request.path, exc_info=exception)
        replica_lag.mark_down()
        connections[REPLICA].close()
        reads.replica_allowed = False
        view, args, kwargs = reads.view
        return view(request, *args, **kwargs)


def _within(reads: RequestReads, chunks: Iterator[bytes]) -> Iterator[bytes]:
    iterator = iter(chunks)
    while True:
        token = _request.set(reads)
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        finally:
            _request.reset(token)
        yield chunk
