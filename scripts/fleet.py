"""A small CallIQ fleet on one machine, on loopback: `python scripts/fleet.py up|down|status`.

What `up` starts, each process in a session of its own, its PID in
var/fleet/state.json, its output in var/fleet/log/NAME.log:

- pg-primary: a PRIVATE PostgreSQL primary (initdb into var/fleet/pg/primary,
  run as the postgres OS user). The machine's shared server at :5432 serves
  every engineer's tests; the drill restarts the primary and its pg_hba.conf
  is not ours to change, so the fleet has a primary of its own. Migrated and
  seeded with seed_demo (--calls, default 20,000).
- pg-replica: a streaming replica of it (`pg_basebackup -R` into var/fleet/pg/replica).
- pgbouncer: Debian's pgbouncer (installed with apt-get when missing), a
  private instance in transaction pooling mode in front of pg-primary; the
  hosts connect through it (CALLIQ_DB_PGBOUNCER=1) and read analytics from the
  replica (DATABASE_REPLICA_URL), the fleetcfg branch's settings.
- redis-a (primary) + redis-b (replica) + sentinel for the cache
  (REDIS_URL=redis://calliq-cache/0, CALLIQ_REDIS_SENTINELS; allkeys-lru, capped),
  redis-breakers (noeviction) for breaker state (BREAKER_REDIS_URL).
- RabbitMQ: the machine's broker at 127.0.0.1:5672, in a vhost of the fleet's
  own (created here, deleted by `down`), as the Celery broker.
- simulator: the provider simulator (PROVIDER_SIMULATOR_SECRET random, kept in var/fleet/).
- web-a, web-b: two gunicorn masters ("hosts") on their own ports; web-b
  reaches Redis through redis-proxy-b (scripts/tcp_proxy.py, which follows
  Sentinel), so the drill can cut that one host off from Redis with SIGSTOP.
- lb: the round-robin in front of them (scripts/tcp_proxy.py; no haproxy or nginx here).
- worker-a, worker-b: two Celery worker hosts; beat: one scheduler.

`down` stops every process by its PID (SIGCONT first, then SIGTERM to its
process group, SIGKILL after a grace period; PostgreSQL gets a fast shutdown),
deletes the vhost and the clusters' data, and leaves var/fleet/log/.
`up` refuses to start over a fleet that still has a live process.

Ports: FLEET_BASE_PORT (default 17000) plus a fixed offset per process (PORTS).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLEET = Path(os.environ.get("FLEET_DIR", ROOT / "var" / "fleet"))
STATE = FLEET / "state.json"
LOG = FLEET / "log"
PY = str(ROOT / ".venv" / "bin" / "python")
SENTINEL_SERVICE = "calliq-cache"

PORTS = {
    "pg-primary": 0,
    "pg-replica": 1,
    "pgbouncer": 2,
    "redis-a": 10,
    "redis-b": 11,
    "sentinel": 12,
    "redis-breakers": 13,
    "redis-proxy-b": 14,
    "redis-proxy-b-breakers": 15,
    "simulator": 20,
    "web-a": 30,
    "web-b": 31,
    "lb": 40,
}
# Stopped in this order (the clients before their servers).
STOP_ORDER = [
    "lb",
    "web-a",
    "web-b",
    "beat",
    "worker-a",
    "worker-b",
    "simulator",
    "redis-proxy-b",
    "pgbouncer",
    "pg-replica",
    "pg-primary",
    "sentinel",
    "redis-a",
    "redis-b",
    "redis-breakers",
]


def say(message: str) -> None:
    print(f"fleet: {message}", flush=True)


# --- State and processes -------------------------------------------------------------


def load_state() -> dict:
    return json.loads(STATE.read_text()) if STATE.exists() else {}


def save_state(state: dict) -> None:
    FLEET.mkdir(parents=True, exist_ok=True)
    tmp = STATE.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(STATE)


def alive(pid: int) -> bool:
    """True for a live process (a zombie, exited but not reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def live_processes(state: dict) -> dict[str, int]:
    return {name: p["pid"] for name, p in state.get("procs", {}).items() if alive(p["pid"])}


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_port(port: int, seconds: float = 60, pid: int | None = None, name: str = "") -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if pid is not None and not alive(pid):
                raise RuntimeError(f"{name} exited; see {LOG / (name + '.log')}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name or port} does not answer on {port}") from None
            time.sleep(0.2)


def spawn(state: dict, name: str, command: list[str], env: dict[str, str] | None = None) -> int:
    """Start `command` in a session of its own (so its whole group can be signalled) and record it."""
    LOG.mkdir(parents=True, exist_ok=True)
    with (LOG / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    state.setdefault("procs", {})[name] = {"pid": process.pid, "command": command, "env": env or {}, "kind": "group"}
    save_state(state)
    return process.pid


def respawn(state: dict, name: str) -> int:
    """Start a stopped process again with the command and environment it was started with."""
    entry = state["procs"][name]
    if entry["kind"] == "postgres":
        return start_postgres(state, name, Path(entry["data"]), entry["port"])
    return spawn(state, name, entry["command"], entry["env"])


def stop(state: dict, name: str, grace: float = 20) -> None:
    """Stop one recorded process by its PID and wait until it is gone."""
    entry = state.get("procs", {}).get(name)
    if entry is None or not alive(entry["pid"]):
        return
    pid = entry["pid"]
    if entry["kind"] == "postgres":
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGINT)  # fast shutdown: sessions are cut, nothing is lost
    else:
        for sig in (signal.SIGCONT, signal.SIGTERM):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                return
    deadline = time.monotonic() + grace
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        say(f"{name} (PID {pid}) ignored the stop signal: SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL) if entry["kind"] == "group" else os.kill(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.1)


def signal_process(state: dict, name: str, sig: int) -> None:
    """Send `sig` to the recorded process (its whole group for ours, the postmaster for PostgreSQL)."""
    entry = state["procs"][name]
    if entry["kind"] == "postgres":
        os.kill(entry["pid"], sig)
    else:
        os.killpg(entry["pid"], sig)


# --- PostgreSQL ------------------------------------------------------------------------


def bin_dir() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not versions:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
    return versions[-1].parent


def as_postgres(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: run it as the postgres OS user.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def start_postgres(state: dict, name: str, data: Path, port: int) -> int:
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {data.parent} -c fsync=off -c max_connections=200"
    log = LOG / f"{name}.log"
    log.touch()
    shutil.chown(log, "postgres", "postgres") if os.geteuid() == 0 else None
    subprocess.run(
        as_postgres(
            [str(bin_dir() / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "120", "start"]
        ),
        check=True,
        capture_output=True,
    )
    pid = int((data / "postmaster.pid").read_text().split()[0])
    state.setdefault("procs", {})[name] = {"pid": pid, "kind": "postgres", "data": str(data), "port": port}
    save_state(state)
    return pid


# --- Environment of the hosts ------------------------------------------------------------


def ports_for(base: int) -> dict[str, int]:
    return {name: base + offset for name, offset in PORTS.items()}


def kept_secret(name: str) -> str:
    path = FLEET / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(40))
        path.chmod(0o600)
    return path.read_text().strip()


def vhost(ports: dict[str, int]) -> str:
    """The fleet's own RabbitMQ vhost (named after its base port, so two fleets never share one)."""
    return f"calliq-fleet-{ports['pg-primary']}"


def host_env(ports: dict[str, int]) -> dict[str, dict[str, str]]:
    """The environment of each app process: "common" plus a host's own differences."""
    common = {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": kept_secret("secret_key"),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{ports['pgbouncer']}/calliq",
        "CALLIQ_DB_PGBOUNCER": "1",
        "DATABASE_REPLICA_URL": f"postgres://postgres@127.0.0.1:{ports['pg-replica']}/calliq",
        "REDIS_URL": f"redis://{SENTINEL_SERVICE}/0",
        "CALLIQ_REDIS_SENTINELS": f"127.0.0.1:{ports['sentinel']}",
        "BREAKER_REDIS_URL": f"redis://127.0.0.1:{ports['redis-breakers']}/0",
        "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost(ports)}",
        "CACHE_KEY_PREFIX": "calliq-fleet",
        "CALLIQ_MEDIA_ROOT": str(FLEET / "media"),
        "PROVIDER_SIMULATOR_URL": f"http://127.0.0.1:{ports['simulator']}",
        "PROVIDER_SIMULATOR_SECRET": kept_secret("provider_simulator_secret"),
        # Every response carries Server-Timing: the drill reads cache hits from it.
        "CALLIQ_SERVER_TIMING_SAMPLE_RATE": "1",
        "CALLIQ_API_RATE_LIMIT": "100000",
    }
    # web-b reaches Redis only through its proxy (which follows Sentinel): the drill's cut.
    cut_off = {
        "REDIS_URL": f"redis://127.0.0.1:{ports['redis-proxy-b']}/0",
        "CALLIQ_REDIS_SENTINELS": "",
        "BREAKER_REDIS_URL": f"redis://127.0.0.1:{ports['redis-proxy-b-breakers']}/0",
    }
    return {"common": common, "web-b": {**common, **cut_off}}


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, env={**os.environ, **env}, check=True)


def readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


# --- up / down -----------------------------------------------------------------------------


def ensure_pgbouncer() -> str:
    path = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(path).exists():
        say("pgbouncer is missing: apt-get install -y pgbouncer")
        subprocess.run(["apt-get", "install", "-y", "pgbouncer"], check=True)
    return path


def up(calls: int, base: int) -> dict:
    state = load_state()
    if live := live_processes(state):
        raise SystemExit(
            f"fleet: a fleet is running ({', '.join(f'{n}={p}' for n, p in live.items())}): `make fleet-down` first"
        )
    ports = ports_for(base)
    if taken := [f"{n}:{p}" for n, p in ports.items() if not port_free(p)]:
        raise SystemExit(f"fleet: ports taken: {', '.join(taken)} (set FLEET_BASE_PORT)")
    if subprocess.run(["rabbitmqctl", "-q", "status"], capture_output=True).returncode != 0:
        raise SystemExit("fleet: RabbitMQ does not answer at 127.0.0.1:5672 (start it: service rabbitmq-server start)")
    pgbouncer = ensure_pgbouncer()
    for sub in ("pg", "redis", "media", "log", "run"):
        (FLEET / sub).mkdir(parents=True, exist_ok=True)
    envs = host_env(ports)
    state = {"ports": ports, "env": envs, "procs": {}, "started_at": time.time()}
    save_state(state)
    try:
        start_all(state, ports, envs, calls, pgbouncer)
    except BaseException:
        say("start failed: stopping what was started")
        down()
        raise
    say(f"up: http://127.0.0.1:{ports['lb']}/ (round-robin over web-a :{ports['web-a']} and web-b :{ports['web-b']})")
    return state


def start_all(state: dict, ports: dict[str, int], envs: dict, calls: int, pgbouncer: str) -> None:
    common = envs["common"]
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost(ports)], check=False, capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost(ports), "guest", ".*", ".*", ".*"], check=True)

    # PostgreSQL: a private primary, seeded, then its streaming replica.
    pg = FLEET / "pg"
    if os.geteuid() == 0:
        shutil.chown(pg, "postgres", "postgres")
        shutil.chown(LOG, "postgres", "postgres")
    primary, replica = pg / "primary", pg / "replica"
    shutil.rmtree(primary, ignore_errors=True)
    shutil.rmtree(replica, ignore_errors=True)
    say("initdb: a private primary cluster")
    subprocess.run(
        as_postgres([str(bin_dir() / "initdb"), "-D", str(primary), "-U", "postgres", "--auth=trust", "-N"]),
        check=True,
        capture_output=True,
    )
    start_postgres(state, "pg-primary", primary, ports["pg-primary"])
    direct = f"postgres://postgres@127.0.0.1:{ports['pg-primary']}/calliq"
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(ports["pg-primary"]), "-U", "postgres", "-qc", "CREATE DATABASE calliq"],
        check=True,
    )

    # Redis: cache primary + replica + Sentinel, and the breakers' own Redis.
    redis_dir = FLEET / "redis"
    base = ["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(redis_dir)]
    cache = ["--maxmemory", "128mb", "--maxmemory-policy", "allkeys-lru"]
    spawn(state, "redis-a", [*base, *cache, "--port", str(ports["redis-a"])])
    wait_port(ports["redis-a"], 20, state["procs"]["redis-a"]["pid"], "redis-a")
    replica_of = ["--replicaof", "127.0.0.1", str(ports["redis-a"])]
    spawn(state, "redis-b", [*base, *cache, "--port", str(ports["redis-b"]), *replica_of])
    spawn(state, "redis-breakers", [*base, "--port", str(ports["redis-breakers"]), "--maxmemory-policy", "noeviction"])
    sentinel_conf = redis_dir / "sentinel.conf"
    sentinel_conf.write_text(
        f"port {ports['sentinel']}\nbind 127.0.0.1\ndir {redis_dir}\n"
        f"sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {ports['redis-a']} 1\n"
        f"sentinel down-after-milliseconds {SENTINEL_SERVICE} 1000\n"
        f"sentinel failover-timeout {SENTINEL_SERVICE} 5000\n"
    )
    spawn(state, "sentinel", ["redis-server", str(sentinel_conf), "--sentinel"])
    for name in ("redis-b", "redis-breakers", "sentinel"):
        wait_port(ports[name], 20, state["procs"][name]["pid"], name)

    setup_env = {**common, "DATABASE_URL": direct, "CALLIQ_DB_PGBOUNCER": "0", "DATABASE_REPLICA_URL": ""}
    say("migrate, seed_demo, collectstatic on the private primary")
    manage(setup_env, "migrate", "--noinput", "-v", "0")
    manage(setup_env, "seed_demo", "--calls", str(calls), "--orgs", "3")
    manage(setup_env, "collectstatic", "--noinput", "-v", "0")

    say("pg_basebackup: the streaming replica")
    subprocess.run(
        as_postgres(
            [
                *(
                    str(bin_dir() / "pg_basebackup"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(ports["pg-primary"]),
                    "-U",
                    "postgres",
                ),
                *("-D", str(replica), "-X", "stream", "-R", "-c", "fast"),
            ]
        ),
        check=True,
        capture_output=True,
    )
    start_postgres(state, "pg-replica", replica, ports["pg-replica"])

    ini = FLEET / "run" / "pgbouncer.ini"
    (FLEET / "run" / "userlist.txt").write_text('"postgres" ""\n')
    ini.write_text(
        f"[databases]\ncalliq = host=127.0.0.1 port={ports['pg-primary']} dbname=calliq\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {ports['pgbouncer']}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {FLEET / 'run' / 'userlist.txt'}\npool_mode = transaction\n"
        "max_client_conn = 400\ndefault_pool_size = 40\nserver_connect_timeout = 3\nquery_wait_timeout = 10\n"
        # Retry a server login 1 s after a failure, not 15 s: a restarted primary is used at once.
        "server_login_retry = 1\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
    )
    pgbouncer_cmd = [pgbouncer, str(ini)]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        shutil.chown(FLEET / "run", "postgres", "postgres")
        pgbouncer_cmd = as_postgres(pgbouncer_cmd)
    spawn(state, "pgbouncer", pgbouncer_cmd)

    proxy = [PY, "scripts/tcp_proxy.py"]
    spawn(
        state,
        "redis-proxy-b",
        [
            *proxy,
            "--route",
            f"127.0.0.1:{ports['redis-proxy-b']}=sentinel:127.0.0.1:{ports['sentinel']}/{SENTINEL_SERVICE}",
            "--route",
            f"127.0.0.1:{ports['redis-proxy-b-breakers']}=127.0.0.1:{ports['redis-breakers']}",
        ],
    )
    spawn(state, "simulator", [PY, "manage.py", "provider_simulator", "--port", str(ports["simulator"])], common)
    for name in ("pgbouncer", "redis-proxy-b", "simulator"):
        wait_port(ports[name], 30, state["procs"][name]["pid"], name)

    for name in ("web-a", "web-b"):
        gunicorn = [str(ROOT / ".venv" / "bin" / "gunicorn"), "calliq.wsgi", "--workers", "2", "--threads", "2"]
        gunicorn += ["--bind", f"127.0.0.1:{ports[name]}", "--timeout", "30", "--no-control-socket"]
        gunicorn += ["--access-logfile", "-", "--error-logfile", "-"]
        spawn(state, name, gunicorn, envs.get(name, common))
    for name in ("worker-a", "worker-b"):
        worker = [str(ROOT / ".venv" / "bin" / "celery"), "-A", "calliq", "worker", "--concurrency", "2"]
        spawn(state, name, [*worker, "-n", f"{name}@fleet", "--loglevel", "INFO"], common)
    beat = [str(ROOT / ".venv" / "bin" / "celery"), "-A", "calliq", "beat", "--loglevel", "INFO"]
    spawn(state, "beat", [*beat, "--schedule", str(FLEET / "run" / "celerybeat-schedule")], common)
    spawn(
        state,
        "lb",
        [*proxy, "--route", f"127.0.0.1:{ports['lb']}=127.0.0.1:{ports['web-a']},127.0.0.1:{ports['web-b']}"],
    )
    for name in ("web-a", "web-b", "lb"):
        wait_port(ports[name], 90, state["procs"][name]["pid"], name)
    deadline = time.monotonic() + 90
    while not all(readyz(ports[n]) == 200 for n in ("web-a", "web-b")):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the hosts are not ready: web-a {readyz(ports['web-a'])}, web-b {readyz(ports['web-b'])}"
            )
        time.sleep(1)


def down() -> list[str]:
    """Stop every recorded process by its PID; returns the names of those that had to be stopped."""
    state = load_state()
    procs = state.get("procs", {})
    stopped = []
    for name in [*STOP_ORDER, *(n for n in procs if n not in STOP_ORDER)]:
        if name in procs and alive(procs[name]["pid"]):
            say(f"stopping {name} (PID {procs[name]['pid']})")
            stop(state, name)
            stopped.append(name)
    if state.get("ports"):
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost(state["ports"])], check=False, capture_output=True)
    for sub in ("pg", "redis", "media", "run"):
        shutil.rmtree(FLEET / sub, ignore_errors=True)
    STATE.unlink(missing_ok=True)
    if left := live_processes(state):
        raise SystemExit(f"fleet: still running after down: {left}")
    say("down: no process of the fleet is left")
    return stopped


def status() -> int:
    state = load_state()
    if not state:
        say("no fleet")
        return 1
    for name, entry in state["procs"].items():
        say(f"{name:24} PID {entry['pid']:>7} {'running' if alive(entry['pid']) else 'GONE'}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description="Start or stop the CallIQ fleet on loopback.")
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--calls", type=int, default=int(os.environ.get("FLEET_CALLS", "20000")))
    parser.add_argument("--base-port", type=int, default=int(os.environ.get("FLEET_BASE_PORT", "17000")))
    args = parser.parse_args()
    if args.action == "up":
        up(args.calls, args.base_port)
    elif args.action == "down":
        down()
    else:
        sys.exit(status())


if __name__ == "__main__":
    main()
