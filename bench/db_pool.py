"""Benchmark: PostgreSQL connections per request vs pooled (docs/scaling.md).

A cheap DB-backed view (one SELECT through the ORM's connection) behind the
whole middleware stack, called through Django's WSGI handler the way gunicorn
calls it (request_started/request_finished fire, so CONN_MAX_AGE and the pool
behave as in production), from --threads threads (a gthread worker), for
--seconds per round. Each variant runs in a fresh process with its own
environment; rounds interleave the variants and the best round counts:

    per-request            DATABASE_CONN_MAX_AGE=0: a new PostgreSQL connection per request
    persistent             DATABASE_CONN_MAX_AGE=60 (today's default): one connection per thread
    psycopg pool           CALLIQ_DB_POOL=1 (Django's OPTIONS["pool"], min 2 / max 10)
    pgbouncer per-request  through PgBouncer (transaction pooling), CALLIQ_DB_PGBOUNCER=1, CONN_MAX_AGE=0
    pgbouncer persistent   through PgBouncer, CONN_MAX_AGE=60

PgBouncer (Debian's `pgbouncer` package) is started here on a private port
with a config of its own under a temporary directory and stopped by its PID;
without the binary its rows are skipped and the table says so.

Usage (any database the server has; the view runs SELECT 1):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/db_pool.py --seconds 5 --rounds 3
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent

VARIANTS = {
    "per-request": {"DATABASE_CONN_MAX_AGE": "0"},
    "persistent": {"DATABASE_CONN_MAX_AGE": "60"},
    "psycopg pool": {"CALLIQ_DB_POOL": "1"},
    "pgbouncer per-request": {"DATABASE_CONN_MAX_AGE": "0", "CALLIQ_DB_PGBOUNCER": "1", "_via": "pgbouncer"},
    "pgbouncer persistent": {"DATABASE_CONN_MAX_AGE": "60", "CALLIQ_DB_PGBOUNCER": "1", "_via": "pgbouncer"},
}

# --- The child: one variant, one round ------------------------------------------------


def db_view(request):
    from django.db import connection
    from django.http import HttpResponse

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return HttpResponse("ok")


def _urlpatterns() -> list:
    from django.urls import path

    from calliq.urls import urlpatterns as project  # middleware reverses the project's named routes

    return [path("bench/db/", db_view), *project]


def child(seconds: float, threads: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calliq.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings

    global urlpatterns
    urlpatterns = _urlpatterns()
    handler = WSGIHandler()
    counts = [0] * threads
    errors: list[str] = []
    stop = time.monotonic() + seconds

    def environ() -> dict:
        return {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/bench/db/",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "HTTP_HOST": "127.0.0.1",
            "wsgi.input": io.BytesIO(),
            "wsgi.url_scheme": "http",
        }

    def run(slot: int) -> None:
        try:
            while time.monotonic() < stop:
                result = handler(environ(), lambda status, headers, exc_info=None: None)
                body = b"".join(result)
                result.close()  # request_finished: closes or returns the connection
                if body != b"ok":
                    raise RuntimeError(body[:200])
                counts[slot] += 1
        except Exception as exc:
            errors.append(repr(exc))

    with override_settings(ROOT_URLCONF=__name__):
        started = time.monotonic()
        workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed = time.monotonic() - started
    print(json.dumps({"rps": sum(counts) / elapsed, "errors": errors[:3]}))


urlpatterns: list = []

# --- The parent: PgBouncer, variants, rounds, the table -------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgBouncer:
    """A pgbouncer of our own, in transaction pooling mode, in front of DATABASE_URL's server."""

    def __init__(self, database_url: str) -> None:
        self.upstream = urlsplit(database_url)
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="calliq-pgbouncer-", dir="/tmp"))
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        user = self.upstream.username or "postgres"
        (self.dir / "userlist.txt").write_text(f'"{user}" ""\n')
        (self.dir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={self.upstream.hostname or '127.0.0.1'} port={self.upstream.port or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.dir / 'userlist.txt'}\n"
            "pool_mode = transaction\ndefault_pool_size = 10\nmax_client_conn = 500\n"
            f"logfile = {self.dir / 'pgbouncer.log'}\n"
        )
        command = [shutil.which("pgbouncer") or "pgbouncer", str(self.dir / "pgbouncer.ini")]
        if os.geteuid() == 0:  # pgbouncer refuses to run as root
            shutil.chown(self.dir, "postgres")
            for f in self.dir.iterdir():
                shutil.chown(f, "postgres")
            command = ["runuser", "-u", "postgres", "--", *command]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (self.dir / "pgbouncer.log").read_text()
                    raise RuntimeError(f"pgbouncer did not start: {log}") from None
                time.sleep(0.1)

    @property
    def url(self) -> str:
        netloc = self.upstream.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{self.port}"
        return urlunsplit(self.upstream._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # runuser waits for pgbouncer: signal pgbouncer itself (runuser's child), then reap runuser.
            pids = subprocess.run(
                ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False
            ).stdout.split()
            for pid in pids or [str(self.process.pid)]:
                os.kill(int(pid), signal.SIGINT)
            self.process.wait(20)
        shutil.rmtree(self.dir, ignore_errors=True)


def run_variant(env_changes: dict[str, str], bouncer: PgBouncer | None, seconds: float, threads: int) -> dict:
    env = dict(os.environ)
    env.update({k: v for k, v in env_changes.items() if not k.startswith("_")})
    if env_changes.get("_via") == "pgbouncer":
        assert bouncer is not None
        env["DATABASE_URL"] = bouncer.url
    env.setdefault("DJANGO_DEBUG", "0")
    env.setdefault("DJANGO_SECRET_KEY", "calliq-bench-only")
    env.setdefault("CALLIQ_STATIC_MANIFEST", "0")
    env["CALLIQ_LOG_LEVEL"] = "WARNING"
    result = subprocess.run(
        [sys.executable, __file__, "--child", "--seconds", str(seconds), "--threads", str(threads)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if result.returncode != 0:
        return {"rps": 0.0, "errors": [result.stderr.strip().splitlines()[-1] if result.stderr else "failed"]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.seconds, args.threads)
        return

    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        sys.exit("Set DATABASE_URL to a PostgreSQL database (the view runs SELECT 1).")
    bouncer = PgBouncer(database_url) if shutil.which("pgbouncer") else None
    variants = {k: v for k, v in VARIANTS.items() if bouncer is not None or v.get("_via") != "pgbouncer"}
    best: dict[str, float] = dict.fromkeys(variants, 0.0)
    errors: dict[str, list[str]] = {k: [] for k in variants}
    try:
        if bouncer is not None:
            bouncer.start()
        for _ in range(args.rounds):
            for name, env_changes in variants.items():
                outcome = run_variant(env_changes, bouncer, args.seconds, args.threads)
                best[name] = max(best[name], outcome["rps"])
                errors[name] += outcome["errors"]
    finally:
        if bouncer is not None:
            bouncer.stop()

    load = os.getloadavg()[0]
    print(f"DB-backed view (SELECT 1) through the WSGI handler, {args.threads} threads, best of {args.rounds} x ")
    print(f"{args.seconds:.0f} s rounds; load average {load:.1f} on {os.cpu_count()} CPUs\n")
    print(f"{'variant':<24}{'requests/s':>12}{'vs per-request':>16}")
    base = best["per-request"] or 1
    for name in variants:
        print(
            f"{name:<24}{best[name]:>12.0f}{best[name] / base:>15.2f}x"
            + ("  ERR " + errors[name][0] if errors[name] else "")
        )
    if bouncer is None:
        print("\npgbouncer rows skipped: install Debian's pgbouncer package to measure them.")


if __name__ == "__main__":
    main()
