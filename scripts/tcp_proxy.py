"""A tiny asyncio TCP proxy for the fleet on one machine (scripts/fleet.py).

Two jobs, one process per job so that a fault can be injected into it alone:

- the round-robin in front of the two web hosts (`--route 127.0.0.1:8000=127.0.0.1:8001,127.0.0.1:8002`):
  each new connection goes to the next upstream, skipping one that refuses;
- the Redis path of the web host the drill cuts off (`--route 127.0.0.1:7014=sentinel:127.0.0.1:7012/calliq-cache`):
  each new connection asks Sentinel where the primary is now, so the host
  follows a failover; SIGSTOP of this process cuts the host off from Redis
  (its connections hang until the client's socket timeout) without touching
  any other host. No iptables here (not installed, and no network namespaces
  for an unprivileged container), so a stopped proxy is the cut.

Why not haproxy or nginx: neither is installed on these machines, and this
needs ~100 lines of the standard library, no configuration file and no package.

Usage: python scripts/tcp_proxy.py --route LISTEN=UPSTREAM[,UPSTREAM...] [--route ...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import signal


def host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def sentinel_primary(sentinel: tuple[str, int], service: str) -> tuple[str, int]:
    """Ask Sentinel (RESP over a fresh connection) for `service`'s primary."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(*sentinel), 1)
    try:
        args = [b"SENTINEL", b"get-master-addr-by-name", service.encode()]
        writer.write(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
        await writer.drain()
        header = await asyncio.wait_for(reader.readline(), 1)  # *2
        if not header.startswith(b"*2"):
            raise ConnectionError(f"sentinel does not know {service}")
        values = []
        for _ in range(2):
            await reader.readline()  # $len
            values.append((await reader.readline()).strip().decode())
        return values[0], int(values[1])
    finally:
        writer.close()


class Route:
    def __init__(self, spec: str) -> None:
        listen, _, upstream = spec.partition("=")
        self.listen = host_port(listen)
        self.sentinel: tuple[tuple[str, int], str] | None = None
        if upstream.startswith("sentinel:"):
            where, _, service = upstream.removeprefix("sentinel:").partition("/")
            self.sentinel = (host_port(where), service)
            self.upstreams: list[tuple[str, int]] = []
        else:
            self.upstreams = [host_port(u) for u in upstream.split(",")]
        self._next = itertools.cycle(range(max(len(self.upstreams), 1)))

    async def candidates(self) -> list[tuple[str, int]]:
        if self.sentinel is not None:
            return [await sentinel_primary(*self.sentinel)]
        start = next(self._next)
        return self.upstreams[start:] + self.upstreams[:start]

    async def handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream = None
        try:
            for address in await self.candidates():
                try:
                    upstream = await asyncio.wait_for(asyncio.open_connection(*address), 2)
                    break
                except OSError:
                    continue
        except (OSError, ConnectionError, TimeoutError):
            upstream = None
        if upstream is None:
            client_writer.close()
            return
        server_reader, server_writer = upstream
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


async def serve(routes: list[Route]) -> None:
    servers = [await asyncio.start_server(r.handle, *r.listen, reuse_address=True) for r in routes]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--route", action="append", required=True, help="LISTEN=UPSTREAM[,...] or LISTEN=sentinel:HOST:PORT/NAME"
    )
    asyncio.run(serve([Route(spec) for spec in parser.parse_args().route]))


if __name__ == "__main__":
    main()
