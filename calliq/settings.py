"""CallIQ settings: one file, every difference between environments is an
environment variable with a safe default (see README "Configuration")."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEVELOPMENT_SECRET_KEY = "calliq-development-key-never-use-in-production"

DEBUG = env_bool("DJANGO_DEBUG", default=False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", DEVELOPMENT_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEVELOPMENT_SECRET_KEY:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set. With DJANGO_DEBUG off CallIQ refuses to run on the "
        "development key: set DJANGO_SECRET_KEY (or DJANGO_DEBUG=1 for local development)."
    )

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "django_htmx",
    "template_partials.apps.SimpleAppConfig",
    "axes",
    "calls",
    "analytics",
    "resilience",
]

MIDDLEWARE = [
    # First, so its wall time covers the whole stack (resilience/monitoring/middleware.py).
    "resilience.monitoring.middleware.ProfilerMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "resilience.headers.CrossOriginResourcePolicyMiddleware",
    # Early, so writes made by any later middleware pin the browser to the primary.
    "calliq.db_router.ReplicaMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "resilience.compression.CompressionMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before CSRF, which reads the body: oversized bodies are refused unread.
    "resilience.uploads.UploadLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Consumes the monitoring token on /metrics before the API-token middleware sees it.
    "resilience.monitoring.access.MonitoringTokenMiddleware",
    "calls.tenancy.middleware.BearerTokenMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "resilience.monitoring.csp.ReportingEndpointsMiddleware",
    "calls.tenancy.middleware.OrganizationMiddleware",
    # Last: turns a sign-in that django-axes refused into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "calliq.urls"
WSGI_APPLICATION = "calliq.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "calliq.context_processors.calliq",
                "resilience.monitoring.banner.firing_alerts",
            ],
            "builtins": ["template_partials.templatetags.partials"],
            "loaders": [
                (
                    "template_partials.loader.Loader",
                    [
                        (
                            "django.template.loaders.cached.Loader",
                            [
                                "django.template.loaders.filesystem.Loader",
                                "django.template.loaders.app_directories.Loader",
                            ],
                        )
                    ],
                )
            ],
        },
    }
]

# --- Database ---------------------------------------------------------------
# The embedded default (SQLite) serves a first run; PostgreSQL is what tests,
# benchmarks and production use.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'calliq.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
    }
    # Covering indexes (INCLUDE) are a PostgreSQL speed-up; SQLite builds them as plain indexes.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
else:
    # Connection pooling, see docs/scaling.md. One host: CALLIQ_DB_POOL=1 keeps a
    # psycopg pool per process (Django's OPTIONS["pool"]; CONN_MAX_AGE must then
    # be 0, the pool owns connection lifetimes and checks a connection before
    # lending it). A fleet: CALLIQ_DB_PGBOUNCER=1 with DATABASE_URL pointing at
    # PgBouncer in transaction pooling mode, where a server connection serves
    # one transaction at a time, so nothing may outlive a transaction: no
    # server-side cursors (the CSV export pages by keyset instead, see
    # resilience/db.py) and no prepared statements. Django's own connection to
    # PgBouncer stays open DATABASE_CONN_MAX_AGE seconds with health checks.
    if env_bool("CALLIQ_DB_POOL"):
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": int(os.environ.get("CALLIQ_DB_POOL_MIN_SIZE", "2")),
            "max_size": int(os.environ.get("CALLIQ_DB_POOL_MAX_SIZE", "10")),
            # Seconds a request waits for a free connection before failing.
            "timeout": float(os.environ.get("CALLIQ_DB_POOL_TIMEOUT", "10")),
        }
    if env_bool("CALLIQ_DB_PGBOUNCER"):
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = None

# Read replicas (calliq/db_router.py): with DATABASE_REPLICA_URL set, analytics
# pages and CSV exports read from the "replica" alias, unless the replica is more
# than CALLIQ_REPLICA_MAX_LAG seconds behind (measured on the replica at most
# every CALLIQ_REPLICA_LAG_CHECK_SECONDS per process) or the browser wrote in
# the last CALLIQ_READ_YOUR_WRITES_SECONDS (then every read goes to the primary,
# so a person never misses their own change). Tests mirror it onto the test database.
DATABASE_REPLICA_URL = os.environ.get("DATABASE_REPLICA_URL", "")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = dj_database_url.parse(
        DATABASE_REPLICA_URL,
        conn_max_age=DATABASES["default"]["CONN_MAX_AGE"],
        conn_health_checks=True,
    )
    for _key in ("OPTIONS", "DISABLE_SERVER_SIDE_CURSORS"):
        if _key in DATABASES["default"]:
            DATABASES["replica"][_key] = DATABASES["default"][_key]
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    # A replica that does not answer within 2 s counts as down (reads go to the primary).
    DATABASES["replica"]["OPTIONS"] = {**DATABASES["replica"].get("OPTIONS", {}), "connect_timeout": 2}
DATABASE_ROUTERS = ["calliq.db_router.ReplicaRouter"]
CALLIQ_REPLICA_MAX_LAG = float(os.environ.get("CALLIQ_REPLICA_MAX_LAG", "5"))
CALLIQ_REPLICA_LAG_CHECK_SECONDS = float(os.environ.get("CALLIQ_REPLICA_LAG_CHECK_SECONDS", "2"))
CALLIQ_READ_YOUR_WRITES_SECONDS = float(os.environ.get("CALLIQ_READ_YOUR_WRITES_SECONDS", "10"))
# URL names (namespace:name, or namespace:* for a whole app) whose reads may go to the replica.
CALLIQ_REPLICA_ROUTES = env_list("CALLIQ_REPLICA_ROUTES", "analytics:*,analytics_api:*,calls:export")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, breaker state, metrics, Celery broker ---------------------
# An empty REDIS_URL means "no Redis": CallIQ still runs, degraded (local-memory
# cache, tasks run in-process) and says so to staff on every page.
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_AVAILABLE = bool(REDIS_URL)
CACHE_KEY_PREFIX = os.environ.get("CACHE_KEY_PREFIX", "calliq")

# CACHES["default"] (django-redis) is the app's one Redis cache: Django's cache
# API and resilience/cache (tags, entries, locks, Lua) share its connection
# pool, timeouts and serializer. msgpack cannot execute code, so whoever can
# write to Redis cannot run code in the app (never pickle). A dead Redis must
# cost milliseconds: short timeouts, and one immediate retry only for a
# connection a Redis restart broke (a timeout is never retried).
# Redis Sentinel is configuration only: set CALLIQ_REDIS_SENTINELS to
# "host:port,host:port" and REDIS_URL to redis://<service name>/<db>.
REDIS_SENTINELS = [
    (host, int(port))
    for host, _, port in (s.strip().rpartition(":") for s in os.environ.get("CALLIQ_REDIS_SENTINELS", "").split(","))
    if host and port
]


def redis_cache_options(*, connect_timeout: float, socket_timeout: float) -> dict:
    """django-redis OPTIONS shared by every Redis cache alias (serializer, retry, Sentinel)."""
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.retry import Retry

    from resilience.redis_sentinel import DisconnectingSentinelConnection

    options = {
        "CLIENT_CLASS": "django_redis.client.DefaultClient",
        "SERIALIZER": "django_redis.serializers.msgpack.MSGPackSerializer",
        "SOCKET_CONNECT_TIMEOUT": connect_timeout,
        "SOCKET_TIMEOUT": socket_timeout,
        "CONNECTION_POOL_KWARGS": {
            "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            "health_check_interval": 0,
        },
        "IGNORE_EXCEPTIONS": False,
    }
    if REDIS_SENTINELS:
        options["CLIENT_CLASS"] = "django_redis.client.SentinelClient"
        options["CONNECTION_FACTORY"] = "django_redis.pool.SentinelConnectionFactory"
        options["SENTINELS"] = REDIS_SENTINELS
        options["SENTINEL_KWARGS"] = {"socket_timeout": socket_timeout, "socket_connect_timeout": connect_timeout}
        # A timed-out read must not leave its reply for the next command (resilience/redis_sentinel.py).
        options["CONNECTION_POOL_KWARGS"]["connection_class"] = DisconnectingSentinelConnection
    return options


if REDIS_AVAILABLE:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "OPTIONS": redis_cache_options(
                connect_timeout=float(os.environ.get("CALLIQ_CACHE_CONNECT_TIMEOUT", "0.1")),
                socket_timeout=float(os.environ.get("CALLIQ_CACHE_SOCKET_TIMEOUT", "0.1")),
            ),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Sessions in PostgreSQL, never in process memory: any web host serves any browser.
# Not cached_db: the cache's Redis is meant to evict and be flushed, and a
# second copy of a session is a second place a revoked one lives (docs/scaling.md).
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# The cache layer (resilience/cache) on CACHES["default"]; see resilience/cache/__init__.py.
CALLIQ_CACHE = {
    "ENABLED": env_bool("CALLIQ_CACHE_ENABLED", default=True),
    "LOCK_TIMEOUT": float(os.environ.get("CALLIQ_CACHE_LOCK_TIMEOUT", "10")),
    "WAIT_TIMEOUT": float(os.environ.get("CALLIQ_CACHE_WAIT_TIMEOUT", "3")),
    # While Redis is unreachable, a background probe asks it again this often.
    "PROBE_INTERVAL": float(os.environ.get("CALLIQ_CACHE_PROBE_INTERVAL", "0.05")),
    # Part of every entry key: set it to the release so a deploy never reads old pages.
    "KEY_VERSION": os.environ.get("CALLIQ_CACHE_KEY_VERSION", "0"),
}
CALLIQ_BROTLI_QUALITY = int(os.environ.get("CALLIQ_BROTLI_QUALITY", "5"))

# --- Celery ------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_AVAILABLE)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "calliq")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# RabbitMQ for a fleet (CELERY_BROKER_URL=amqp://user:password@host:5672/vhost);
# Redis stays the development default. On RabbitMQ the task queue is a quorum
# queue (replicated, durable, survives a node loss) on a topic exchange (Celery's
# native delayed delivery, which the pipeline's countdowns need on quorum queues,
# refuses direct exchanges), publishes wait for the broker's confirm, and a
# message delivered CELERY_DELIVERY_LIMIT times without an ack (a poison message
# that kills its worker every time) is dead-lettered to "<queue>.dead" instead
# of crashing workers forever. Inspect that queue, fix, and re-publish by hand.
# With acks_late + reject_on_worker_lost + prefetch 1 above, a worker that dies
# mid-task hands its one unacknowledged message back to the queue.
CELERY_BROKER_IS_AMQP = CELERY_BROKER_URL.partition("://")[0] in {"amqp", "amqps", "pyamqp"}
CELERY_DELIVERY_LIMIT = int(os.environ.get("CELERY_DELIVERY_LIMIT", "5"))


def celery_rabbitmq_settings(queue: str, *, delivery_limit: int) -> dict:
    """Celery settings (lowercase names) for a quorum task queue with a dead-letter
    queue; calliq/celery.py declares the dead-letter exchange and queue at worker start."""
    from kombu import Exchange, Queue

    return {
        "task_queues": [
            Queue(
                queue,
                Exchange(queue, type="topic"),
                routing_key=queue,
                queue_arguments={
                    "x-queue-type": "quorum",
                    "x-delivery-limit": delivery_limit,
                    "x-dead-letter-exchange": f"{queue}.dlx",
                    "x-dead-letter-routing-key": f"{queue}.dead",
                },
            )
        ],
        "task_default_exchange": queue,
        "task_default_exchange_type": "topic",
        "task_default_routing_key": queue,
        "broker_transport_options": {"confirm_publish": True},
        "dead_letter_queue": Queue(
            f"{queue}.dead",
            Exchange(f"{queue}.dlx", type="direct"),
            routing_key=f"{queue}.dead",
            queue_arguments={"x-queue-type": "quorum"},
        ),
    }


if CELERY_BROKER_IS_AMQP:
    _rabbitmq = celery_rabbitmq_settings(CELERY_TASK_DEFAULT_QUEUE, delivery_limit=CELERY_DELIVERY_LIMIT)
    CELERY_TASK_QUEUES = _rabbitmq["task_queues"]
    CELERY_TASK_DEFAULT_EXCHANGE = _rabbitmq["task_default_exchange"]
    CELERY_TASK_DEFAULT_EXCHANGE_TYPE = _rabbitmq["task_default_exchange_type"]
    CELERY_TASK_DEFAULT_ROUTING_KEY = _rabbitmq["task_default_routing_key"]
    CELERY_BROKER_TRANSPORT_OPTIONS = _rabbitmq["broker_transport_options"]
    CELERY_DEAD_LETTER_QUEUE = _rabbitmq["dead_letter_queue"]
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}
# The email outbox (calls.OutboundEmail) is flushed whenever Resend answers again.
CELERY_BEAT_SCHEDULE["flush-email-outbox"] = {"task": "calls.tasks.flush_email_outbox", "schedule": 30.0}
CELERY_BEAT_SCHEDULE["resume-delayed-calls"] = {"task": "calls.tasks.resume_delayed_calls", "schedule": 60.0}
# Webhooks out: retries due (and events whose queueing failed) are queued by this sweep.
CELERY_BEAT_SCHEDULE["send-due-webhooks"] = {"task": "calls.webhooks.tasks.send_due_webhooks", "schedule": 15.0}
CELERY_BEAT_SCHEDULE["prune-webhook-log"] = {"task": "calls.webhooks.tasks.prune_webhook_log", "schedule": 24 * 3600}
# Webhook endpoints on loopback (and plain http to them): for local development
# and the tests' receiver. Private and link-local addresses are always refused.
WEBHOOKS_ALLOW_LOOPBACK = env_bool("CALLIQ_WEBHOOKS_ALLOW_LOOPBACK", default=DEBUG)

if env_bool("CALLIQ_WARM_CACHE_PERIODICALLY", default=False):
    CELERY_BEAT_SCHEDULE["warm-cache"] = {
        "task": "resilience.cache.warm",
        "schedule": float(os.environ.get("CALLIQ_WARM_CACHE_EVERY", "240")),
    }
# Analytics rollups: repair the recent days often, rebuild everything every 24 h from beat start (both idempotent).
CELERY_BEAT_SCHEDULE["analytics-repair-recent-rollups"] = {
    "task": "analytics.tasks.repair_recent_rollups",
    "schedule": 15 * 60,
}
CELERY_BEAT_SCHEDULE["analytics-rebuild-all-rollups"] = {
    "task": "analytics.tasks.rebuild_all_rollups",
    "schedule": 24 * 3600,
}

# --- Monitoring (resilience/monitoring): profiler, metrics, alerts ---------------
# Workers buffer metrics and flush them to Redis every CALLIQ_METRICS_FLUSH_SECONDS.
CALLIQ_PROFILER_ENABLED = env_bool("CALLIQ_PROFILER_ENABLED", default=True)
CALLIQ_METRICS_PREFIX = os.environ.get("CALLIQ_METRICS_PREFIX", f"{CACHE_KEY_PREFIX}:metrics")
CALLIQ_METRICS_FLUSH_SECONDS = float(os.environ.get("CALLIQ_METRICS_FLUSH_SECONDS", "2"))
CALLIQ_METRICS_MAX_NAMES = int(os.environ.get("CALLIQ_METRICS_MAX_NAMES", "200"))
# Share of requests (0-1) that get a Server-Timing header; staff always do.
CALLIQ_SERVER_TIMING_SAMPLE_RATE = float(os.environ.get("CALLIQ_SERVER_TIMING_SAMPLE_RATE", "0"))
# A request or operation is kept as a slow sample above max(CALLIQ_SLOW_MIN_MS,
# CALLIQ_SLOW_P99_FACTOR x its p99 over the last hour), or its own threshold here.
CALLIQ_SLOW_MIN_MS = float(os.environ.get("CALLIQ_SLOW_MIN_MS", "250"))
CALLIQ_SLOW_P99_FACTOR = float(os.environ.get("CALLIQ_SLOW_P99_FACTOR", "1"))
CALLIQ_SLOW_THRESHOLDS_MS: dict[str, float] = {}
# Bearer token that reads /metrics and /api/v1/monitoring/metrics (not a user API token; empty: staff only).
CALLIQ_MONITORING_TOKEN = os.environ.get("CALLIQ_MONITORING_TOKEN", "")
CALLIQ_ALERT_EMAILS = env_list("CALLIQ_ALERT_EMAILS", "")
CALLIQ_ALERT_WEBHOOK_URL = os.environ.get("CALLIQ_ALERT_WEBHOOK_URL", "")
CELERY_BEAT_SCHEDULE["evaluate-alerts"] = {
    "task": "resilience.monitoring.evaluate_alerts",
    "schedule": float(os.environ.get("CALLIQ_ALERT_EVALUATE_SECONDS", "30")),
}

# --- Circuit breakers (resilience/breaker) ---------------------------------------
# Shared breaker state lives in Redis, reached through the "breakers" django-redis
# alias; a Redis that refuses or stalls past BREAKER_REDIS_TIMEOUT seconds sends
# each process to its own in-memory breakers, and Redis is tried again every
# BREAKER_REDIS_RETRY_SECONDS. Policies are re-read from the database every
# BREAKER_POLICY_TTL seconds. No breakers alias (no Redis): local breakers only.
_breaker_redis_url = os.environ.get("BREAKER_REDIS_URL", REDIS_URL)
if _breaker_redis_url:
    _breaker_timeout = float(os.environ.get("BREAKER_REDIS_TIMEOUT", "0.1"))
    CACHES["breakers"] = {
        "BACKEND": "django_redis.cache.RedisCache",
        # django-redis keeps one connection pool per LOCATION for the whole process,
        # whatever the alias: with the cache's URL as is, the breakers would share
        # the cache's pool and its timeouts. The timeouts in the URL (redis-py reads
        # them from the query) give the breakers a pool of their own.
        "LOCATION": (
            f"{_breaker_redis_url}{'&' if '?' in _breaker_redis_url else '?'}"
            f"socket_timeout={_breaker_timeout}&socket_connect_timeout={_breaker_timeout}"
        ),
        "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
    }

# --- Throttle counters (django-axes, django-ratelimit) ---------------------------
# Sign-in failures and API request counts live in their own alias, so page
# entries filling the cache's Redis can never evict them (the cache's Redis
# may run with maxmemory + allkeys-lru; this one, like the breakers', must be
# noeviction). THROTTLE_REDIS_URL defaults to the cache's Redis; the client
# name in the URL gives the alias a connection pool of its own (django-redis
# keeps one pool per LOCATION). Both throttles fail open.
_throttle_redis_url = os.environ.get("THROTTLE_REDIS_URL", REDIS_URL)
if _throttle_redis_url:
    CACHES["throttle"] = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"{_throttle_redis_url}{'&' if '?' in _throttle_redis_url else '?'}client_name=calliq-throttle",
        "KEY_PREFIX": f"{CACHE_KEY_PREFIX}:throttle",
        "OPTIONS": redis_cache_options(
            connect_timeout=float(os.environ.get("CALLIQ_CACHE_CONNECT_TIMEOUT", "0.1")),
            socket_timeout=float(os.environ.get("CALLIQ_CACHE_SOCKET_TIMEOUT", "0.1")),
        ),
    }
THROTTLE_CACHE = "throttle" if "throttle" in CACHES else "default"
BREAKER_REDIS_RETRY_SECONDS = float(os.environ.get("BREAKER_REDIS_RETRY_SECONDS", "1.0"))
BREAKER_POLICY_TTL = float(os.environ.get("BREAKER_POLICY_TTL", "5"))
BREAKER_KEY_PREFIX = os.environ.get("BREAKER_KEY_PREFIX", f"{CACHE_KEY_PREFIX}:breaker")
BREAKER_ALERT_HOOKS = env_list("BREAKER_ALERT_HOOKS", "")

# --- External providers ------------------------------------------------------
# Default base URLs point at the provider simulator (resilience/providers) that
# `make run` starts; real keys and URLs come from the environment.
PROVIDER_SIMULATOR_URL = os.environ.get("PROVIDER_SIMULATOR_URL", "http://127.0.0.1:8765")
# The shared secret of the simulator's control endpoint (/_sim/, X-Simulator-Secret
# header). A development default only with DEBUG on; otherwise `provider_simulator
# serve` makes a random one and prints it.
PROVIDER_SIMULATOR_SECRET = os.environ.get("PROVIDER_SIMULATOR_SECRET") or (
    "calliq-development-simulator-secret" if DEBUG else ""
)
PROVIDERS = {
    "assemblyai": {
        "base_url": os.environ.get("ASSEMBLYAI_BASE_URL", f"{PROVIDER_SIMULATOR_URL}/assemblyai"),
        "api_key": os.environ.get("ASSEMBLYAI_API_KEY", "sim-assemblyai-key"),
    },
    "openai": {
        "base_url": os.environ.get("OPENAI_BASE_URL", f"{PROVIDER_SIMULATOR_URL}/openai/v1"),
        "api_key": os.environ.get("OPENAI_API_KEY", "sim-openai-key"),
        "model": os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
    },
    "paddle": {
        "base_url": os.environ.get("PADDLE_BASE_URL", f"{PROVIDER_SIMULATOR_URL}/paddle"),
        "api_key": os.environ.get("PADDLE_API_KEY", "sim-paddle-key"),
        # The notification destination's secret. A development value only with DEBUG
        # on: a production without it refuses every webhook rather than trust a known key.
        "webhook_secret": os.environ.get("PADDLE_WEBHOOK_SECRET") or ("sim-paddle-webhook-secret" if DEBUG else ""),
    },
    "resend": {
        "base_url": os.environ.get("RESEND_BASE_URL", f"{PROVIDER_SIMULATOR_URL}/resend"),
        "api_key": os.environ.get("RESEND_API_KEY", "sim-resend-key"),
        "from_email": os.environ.get("RESEND_FROM_EMAIL", "CallIQ <calls@calliq.example>"),
    },
}

# --- Billing (calls/billing) -------------------------------------------------------
# How far a Paddle-Signature's ts may be from our clock, either way (Paddle's SDKs use 5 s).
PADDLE_WEBHOOK_TOLERANCE_SECONDS = int(os.environ.get("PADDLE_WEBHOOK_TOLERANCE_SECONDS", "300"))
# The plans, cheapest first: monthly minutes and the Paddle price each is sold at.
BILLING_PLANS = {
    "free": {"name": "Free", "minutes": 60, "price_id": ""},
    "team": {"name": "Team", "minutes": 3000, "price_id": os.environ.get("PADDLE_TEAM_PRICE_ID", "pri_team")},
    "business": {
        "name": "Business",
        "minutes": 20000,
        "price_id": os.environ.get("PADDLE_BUSINESS_PRICE_ID", "pri_business"),
    },
}

# --- Auth ----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "calls:list"
# django-axes first: it refuses a locked-out (username, IP) before a password is checked.
AUTHENTICATION_BACKENDS = [
    "calls.tenancy.throttle.SignInThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Sign-in throttling (django-axes, on /accounts/login/ and /admin/login/):
# after CALLIQ_LOGIN_FAILURE_LIMIT failures for one username from one IP, that
# pair is locked out for CALLIQ_LOGIN_COOLOFF_MINUTES (each further try restarts
# the wait). Counted in the throttle cache (Redis) so every worker agrees;
# fail-open if Redis is down; lockouts are listed and lifted in the admin
# (Axes → Access attempts: delete the row). See calls/tenancy/throttle.py.
AXES_HANDLER = "calls.tenancy.throttle.SignInThrottle"
AXES_CACHE = THROTTLE_CACHE
AXES_FAILURE_LIMIT = int(os.environ.get("CALLIQ_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("CALLIQ_LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_CALLABLE = "calls.tenancy.throttle.lockout_response"
AXES_CLIENT_IP_CALLABLE = "resilience.clientip.client_ip"
AXES_RESET_ON_SUCCESS = True
# The wait runs from the lockout (tries during it are refused, not counted), so
# the page can say exactly how long is left.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# Successful sign-ins are not written to the database on every request (the
# admin keeps lockouts, not an access log).
AXES_DISABLE_ACCESS_LOG = True
# Set by CALLIQ_BEHIND_PROXY: the client address is the one the proxy appends
# to X-Forwarded-For, never one the client sent.
CALLIQ_BEHIND_PROXY = env_bool("CALLIQ_BEHIND_PROXY")

# JSON API rate limit per personal token (django-ratelimit, counted in Redis,
# fail-open); 0 turns it off.
CALLIQ_API_RATE_LIMIT = int(os.environ.get("CALLIQ_API_RATE_LIMIT", "120"))
# ... and per user, over all their tokens and their session on /api/ together.
CALLIQ_API_USER_RATE_LIMIT = int(os.environ.get("CALLIQ_API_USER_RATE_LIMIT", "240"))
# Active (unrevoked, unexpired) API tokens one person may hold.
CALLIQ_API_TOKENS_PER_USER = int(os.environ.get("CALLIQ_API_TOKENS_PER_USER", "20"))
RATELIMIT_USE_CACHE = THROTTLE_CACHE
RATELIMIT_FAIL_OPEN = True
# Signing out renders the styled registration/logged_out.html page.

# --- Internationalisation ---------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("CALLIQ_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # Browser packages installed from package.json by `make run` / `make test` (npm).
    ("vendor/web-vitals", BASE_DIR / "node_modules" / "web-vitals" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            # Tests and DEBUG serve files as they are; production serves hashed,
            # pre-compressed copies made by collectstatic.
            if DEBUG or not env_bool("CALLIQ_STATIC_MANIFEST", default=True)
            # whitenoise's compressed manifest storage that also writes the
            # Subresource Integrity hashes (resilience/static.py).
            else "resilience.static.IntegrityManifestStorage"
        )
    },
}
MEDIA_ROOT = Path(os.environ.get("CALLIQ_MEDIA_ROOT", BASE_DIR / "var" / "media"))
MEDIA_URL = "media/"
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# The largest request body any URL accepts (resilience/uploads.py); the call
# upload page allows a recording's worth (calls/forms.py MAX_RECORDING_MB).
MAX_REQUEST_BODY_SIZE = 10 * 1024 * 1024

# --- Security headers -------------------------------------------------------------
# Strict CSP from day one, in development as in production: nothing is allowed
# unless named (default-src 'none'), our own origin for scripts, styles,
# images, fonts and fetches, no inline script or style anywhere, htmx included
# (see templates/base.html for its CSP-safe config). Every script and
# stylesheet also carries a Subresource Integrity hash (resilience/templatetags/sri.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "connect-src": [SELF],
        "font-src": [SELF],
        # The call detail's <audio> plays recordings from our own signed URLs (calls/recordings.py).
        "media-src": [SELF],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        # Violations go to the error tracker (resilience/monitoring/csp.py).
        "report-uri": "/monitoring/csp-report",
        "report-to": "csp",
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Cross-Origin-Resource-Policy (resilience/headers.py): no other site may embed our responses.
CROSS_ORIGIN_RESOURCE_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Every cookie (session, CSRF, messages, which follows the session's flags) is
# SameSite and, under CALLIQ_HTTPS, Secure; HttpOnly unless JavaScript reads it.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# The CSRF cookie stays readable by static/js/csrf.js, which sends it as the
# X-CSRFToken header on htmx requests (cached HTML carries no token).
CSRF_COOKIE_HTTPONLY = False
CSRF_COOKIE_SAMESITE = "Lax"

# Behind TLS in production (CALLIQ_HTTPS=1): redirect, HSTS and secure cookies.
HTTPS = env_bool("CALLIQ_HTTPS", default=False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000" if HTTPS else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if env_bool("CALLIQ_BEHIND_PROXY"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Error tracker (resilience/monitoring/errors.py) ---------------------------
# Errors are always grouped in our database; with SENTRY_DSN set, sentry-sdk
# receives them too, through the same scrubber.
SENTRY_DSN = os.environ.get("SENTRY_DSN", "")
SENTRY_ENVIRONMENT = os.environ.get("SENTRY_ENVIRONMENT", "")
SENTRY_RELEASE = os.environ.get("SENTRY_RELEASE", "")
# CSP violation reports and real-user timing beacons accepted per client IP per minute.
CALLIQ_CSP_REPORTS_PER_MINUTE = int(os.environ.get("CALLIQ_CSP_REPORTS_PER_MINUTE", "30"))
CALLIQ_RUM_BEACONS_PER_MINUTE = int(os.environ.get("CALLIQ_RUM_BEACONS_PER_MINUTE", "60"))

# --- Logging ---------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("CALLIQ_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
