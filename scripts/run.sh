#!/usr/bin/env bash
# Runs CallIQ as a new user would: .venv, migrations, demo data when the
# database is empty, static files, then the provider simulator, a Celery
# worker and beat, and gunicorn with two workers. Ctrl-C stops everything.
#
# Environment (all optional): DATABASE_URL (default: SQLite in var/),
# REDIS_URL (default redis://127.0.0.1:6379/0; a private redis-server is
# started when nothing answers), PORT (8000), CALLIQ_DEMO_CALLS (20000),
# DJANGO_SECRET_KEY (default: a random key kept in var/secret_key).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

ensure_venv requirements.txt
mkdir -p var/log var/run

if [ -z "${DJANGO_SECRET_KEY:-}" ]; then
  [ -s var/secret_key ] || .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(50))' > var/secret_key
  DJANGO_SECRET_KEY=$(cat var/secret_key)
  export DJANGO_SECRET_KEY
fi
PORT=${PORT:-8000}
export DJANGO_ALLOWED_HOSTS=${DJANGO_ALLOWED_HOSTS:-localhost,127.0.0.1,[::1]}
export PROVIDER_SIMULATOR_URL=${PROVIDER_SIMULATOR_URL:-http://127.0.0.1:8765}

# Redis: use the one at REDIS_URL, else start a private one, else run degraded.
REDIS_URL=${REDIS_URL-redis://127.0.0.1:6379/0}
if [ -n "$REDIS_URL" ] && ! redis_answers "$REDIS_URL"; then
  if command -v redis-server >/dev/null 2>&1; then
    say "Nothing answers at $REDIS_URL: starting a private redis-server on 127.0.0.1:6390"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6390 --save "" --appendonly no \
      --dir "$PWD/var" --pidfile "$PWD/var/run/redis.pid" --logfile "$PWD/var/log/redis.log"
    REDIS_URL=redis://127.0.0.1:6390/0
    for _ in $(seq 1 20); do redis_answers "$REDIS_URL" && break; sleep 0.5; done
  else
    warn "No Redis at $REDIS_URL and no redis-server binary: running DEGRADED (local-memory cache, per-process breakers, tasks run in the web process). Install redis-server for the full app."
    REDIS_URL=""
  fi
fi
export REDIS_URL

manage() { .venv/bin/python manage.py "$@"; }
say "Applying migrations"
manage migrate --noinput -v 0
say "Seeding demo data if the database is empty"
manage seed_demo --if-empty --calls "${CALLIQ_DEMO_CALLS:-20000}" --orgs 3
say "Collecting static files"
manage collectstatic --noinput -v 0

pids=()
cleanup() {
  trap - INT TERM EXIT
  say "Stopping CallIQ"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -f var/run/redis.pid ]; then kill "$(cat var/run/redis.pid)" 2>/dev/null || true; rm -f var/run/redis.pid; fi
}
trap cleanup INT TERM EXIT

say "Starting the provider simulator on ${PROVIDER_SIMULATOR_URL} (log: var/log/simulator.log)"
manage provider_simulator --port "${PROVIDER_SIMULATOR_URL##*:}" >var/log/simulator.log 2>&1 &
pids+=($!)
if [ -n "$REDIS_URL" ]; then
  say "Starting a Celery worker and beat (logs: var/log/celery-*.log)"
  .venv/bin/celery -A calliq worker --concurrency 2 --loglevel INFO >var/log/celery-worker.log 2>&1 &
  pids+=($!)
  .venv/bin/celery -A calliq beat --schedule var/run/celerybeat-schedule --loglevel INFO >var/log/celery-beat.log 2>&1 &
  pids+=($!)
fi
say "Starting gunicorn with 2 workers on http://127.0.0.1:${PORT}/"
.venv/bin/gunicorn calliq.wsgi --workers 2 --bind "127.0.0.1:${PORT}" --access-logfile - --error-logfile - &
pids+=($!)

sleep 2
cat <<MSG

  CallIQ is running:   http://127.0.0.1:${PORT}/
  Demo login:          demo@calliq.example / calliq-demo
  Staff login:         admin@calliq.example / calliq-admin   (monitoring and admin)
  Redis:               ${REDIS_URL:-none (DEGRADED mode)}
  Press Ctrl-C to stop.

MSG
wait -n "${pids[@]}"
