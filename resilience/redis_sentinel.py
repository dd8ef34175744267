"""The connection class for a cache behind Redis Sentinel (CALLIQ_REDIS_SENTINELS).

redis-py's SentinelManagedConnection reads replies with
`disconnect_on_error=False`, unlike its plain Connection: a read that times
out (a stalled primary, our 0.1 s socket timeout) leaves the connection in the
pool with the reply still on its way, and the next command on that connection
reads it as its own. The drill found it: after a SIGSTOPped primary came back,
an MGET got a SMEMBERS reply from the metrics flush (500s on web-a, the host
that uses Sentinel; none on web-b, whose plain connections disconnect). This
class disconnects on a failed read, as plain connections do."""

from __future__ import annotations

from typing import Any

from redis.sentinel import SentinelManagedConnection


class DisconnectingSentinelConnection(SentinelManagedConnection):
    def read_response(self, *args: Any, disconnect_on_error: bool = True, **kwargs: Any) -> Any:
        return super().read_response(*args, disconnect_on_error=disconnect_on_error, **kwargs)
