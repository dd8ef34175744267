#!/usr/bin/env bash
# Runs CallIQ as a new user would: .venv (and the node packages when there is
# a package.json), migrations, demo data when the database is empty, static
# files, then the Procfile's processes under honcho: gunicorn with two workers,
# the provider simulator, a Celery worker and beat, and a private redis-server
# when no Redis answers. Every port is checked before anything starts. When a
# process exits the console names it, with its exit status and the last lines
# of its log; the worker and beat are restarted, any other exit stops the
# stack. Ctrl-C stops everything, and no process of the run is left behind.
#
# Environment (all optional): DATABASE_URL (default: SQLite in var/),
# REDIS_URL (default redis://127.0.0.1:6379/0; when nothing answers there, a
# private redis-server on 127.0.0.1:PRIVATE_REDIS_PORT, 6390; empty = degraded),
# PORT (8000), SIMULATOR_PORT (8765, or the port of PROVIDER_SIMULATOR_URL),
# CALLIQ_DEMO_CALLS (20000), DJANGO_SECRET_KEY, PROVIDER_SIMULATOR_SECRET and
# PADDLE_WEBHOOK_SECRET (default: random, kept in var/), GUNICORN_CMD_ARGS (extra gunicorn options,
# e.g. --certfile and --keyfile for HTTPS).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

ensure_venv requirements.txt
ensure_node_packages
mkdir -p var/log var/run

stack() { .venv/bin/python scripts/stack.py "$@"; }
manage() { .venv/bin/python manage.py "$@"; }

# keep_secret VARIABLE FILE: VARIABLE from the environment, else a random value kept in var/FILE (mode 600).
keep_secret() {
  if [ -z "${!1:-}" ]; then
    [ -s "var/$2" ] || (umask 077 && .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(50))' > "var/$2")
    printf -v "$1" '%s' "$(cat "var/$2")"
  fi
  export "${1?}"
}
keep_secret DJANGO_SECRET_KEY secret_key
# The simulator's control endpoint answers only requests that carry this secret.
keep_secret PROVIDER_SIMULATOR_SECRET provider_simulator_secret
# The simulator signs the Paddle webhooks it sends with this; the app checks them with it.
keep_secret PADDLE_WEBHOOK_SECRET paddle_webhook_secret
export DJANGO_ALLOWED_HOSTS=${DJANGO_ALLOWED_HOSTS:-localhost,127.0.0.1,[::1]}

# --- Ports: say which one is taken, by what, and how to change it -----------
PORT=${PORT:-8000}
if [ -z "${SIMULATOR_PORT:-}" ]; then
  SIMULATOR_PORT=8765
  if [ -n "${PROVIDER_SIMULATOR_URL:-}" ]; then
    SIMULATOR_PORT=${PROVIDER_SIMULATOR_URL##*:}
    SIMULATOR_PORT=${SIMULATOR_PORT%%/*}
  fi
fi
PRIVATE_REDIS_PORT=${PRIVATE_REDIS_PORT:-6390}
export PORT SIMULATOR_PORT PRIVATE_REDIS_PORT
export PROVIDER_SIMULATOR_URL=${PROVIDER_SIMULATOR_URL:-http://127.0.0.1:${SIMULATOR_PORT}}

processes=(web)  # first, so that honcho hands it PORT unchanged
stack check-port "$PORT" "the app, gunicorn" PORT || exit 1

case "$PROVIDER_SIMULATOR_URL" in
  http://127.0.0.1:*|http://localhost:*)
    if stack check-port "$SIMULATOR_PORT" "the provider simulator" SIMULATOR_PORT 2>/dev/null; then
      processes+=(simulator)
    # A simulator that accepts our secret is ours to share: its state is only
    # test knobs and counters.
    elif manage provider_simulator --url "$PROVIDER_SIMULATOR_URL" stats >/dev/null 2>&1; then
      say "Reusing the provider simulator that already answers at $PROVIDER_SIMULATOR_URL ($(stack owner "$SIMULATOR_PORT"))"
    else
      stack check-port "$SIMULATOR_PORT" "the provider simulator" SIMULATOR_PORT || exit 1
    fi ;;
  *) say "Using the provider simulator at $PROVIDER_SIMULATOR_URL (not started here)" ;;
esac

# Redis: the one at REDIS_URL, else a private one, else degraded. Set-up runs
# against SETUP_REDIS_URL: a private Redis starts only with the stack, and a
# brand-new one holds nothing the set-up could leave stale.
REDIS_URL=${REDIS_URL-redis://127.0.0.1:6379/0}
SETUP_REDIS_URL=$REDIS_URL
if [ -n "$REDIS_URL" ] && ! redis_answers "$REDIS_URL"; then
  if command -v redis-server >/dev/null 2>&1; then
    private_url="redis://127.0.0.1:${PRIVATE_REDIS_PORT}/0"
    if stack check-port "$PRIVATE_REDIS_PORT" "the private Redis" PRIVATE_REDIS_PORT 2>/dev/null; then
      say "Nothing answers at $REDIS_URL: a private redis-server will serve 127.0.0.1:${PRIVATE_REDIS_PORT}"
      processes+=(redis)
      SETUP_REDIS_URL=""
    # Only a Redis whose data directory is this clone's var/ (a private Redis
    # an earlier run of this clone left behind) is safe to share: another
    # clone's would mix two databases' tasks and cache.
    elif [ "$(redis_dir "$private_url")" = "$(pwd -P)/var" ]; then
      say "Reusing this clone's private redis-server on 127.0.0.1:${PRIVATE_REDIS_PORT} ($(stack owner "$PRIVATE_REDIS_PORT"))"
      SETUP_REDIS_URL=$private_url
    else
      stack check-port "$PRIVATE_REDIS_PORT" "the private Redis" PRIVATE_REDIS_PORT || exit 1
    fi
    REDIS_URL=$private_url
  else
    warn "No Redis at $REDIS_URL and no redis-server binary: running DEGRADED (local-memory cache, per-process breakers, tasks run in the web process). Install redis-server for the full app."
    REDIS_URL=""
    SETUP_REDIS_URL=""
  fi
fi
export REDIS_URL
[ -z "$REDIS_URL" ] || processes+=(worker beat)

# --- Set-up -----------------------------------------------------------------
say "Applying migrations"
REDIS_URL=$SETUP_REDIS_URL manage migrate --noinput -v 0
say "Seeding demo data if the database is empty"
REDIS_URL=$SETUP_REDIS_URL manage seed_demo --if-empty --calls "${CALLIQ_DEMO_CALLS:-20000}" --orgs 3
say "Collecting static files"
REDIS_URL=$SETUP_REDIS_URL manage collectstatic --noinput -v 0

# --- The stack --------------------------------------------------------------
# Every process of this run inherits the token; after honcho returns,
# `stack.py sweep` stops whatever still carries it, by PID.
CALLIQ_RUN_TOKEN=$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(16))')
export CALLIQ_RUN_TOKEN
honcho_pid=""
stop_requested=""
# Why the stack stopped, written by the supervisor of a process that ended it.
export CALLIQ_STOP_REASON_FILE=var/run/stop-reason
rm -f "$CALLIQ_STOP_REASON_FILE"

stop_stack() {
  set +e
  trap - INT TERM HUP
  stop_requested=$SECONDS
  if [ -n "$honcho_pid" ] && kill -0 "$honcho_pid" 2>/dev/null; then
    say "Stopping CallIQ"
    kill "-$1" "$honcho_pid" 2>/dev/null
  fi
}
# On any exit: honcho gets 10 s to stop its lines (it sends SIGKILL after 5),
# then the sweep stops by PID whatever of this run is left, honcho included.
finish() {
  local status=$? waited=0
  set +e
  trap - EXIT INT TERM HUP
  if [ -n "$honcho_pid" ] && kill -0 "$honcho_pid" 2>/dev/null; then
    kill -TERM "$honcho_pid" 2>/dev/null
    while kill -0 "$honcho_pid" 2>/dev/null && [ "$waited" -lt 100 ]; do sleep 0.1; waited=$((waited + 1)); done
  fi
  stack sweep "$CALLIQ_RUN_TOKEN"
  if [ -s "$CALLIQ_STOP_REASON_FILE" ]; then
    warn "CallIQ stopped because $(cat "$CALLIQ_STOP_REASON_FILE")"
  fi
  say "CallIQ stopped; logs in var/log/"
  exit "$status"
}
# honcho runs in a session of its own, so that a signal reaches it once, from
# here: Ctrl-C (which signals this script's process group) and a signal sent to
# this script alone alike. honcho then stops every line's process group.
# SIGPIPE ignored: with `make run | tee log` and Ctrl-C, tee dies first, and
# this script must live on to stop the stack.
trap 'stop_stack INT' INT
trap 'stop_stack TERM' TERM
# A closed terminal: honcho, in its own session, would never hear of it.
trap 'stop_stack TERM' HUP
trap '' PIPE
trap finish EXIT

scheme=http
case "${GUNICORN_CMD_ARGS:-}" in *--certfile*) scheme=https ;; esac
say "Starting ${processes[*]} under honcho (logs: var/log/<name>.log)"
own_session=()
command -v setsid >/dev/null 2>&1 && own_session=(setsid)
"${own_session[@]}" .venv/bin/honcho start --procfile Procfile --port "$PORT" "${processes[@]}" &
honcho_pid=$!

# In the background: `wait` gives way to a trapped signal at once, a foreground
# command would hold it until the app answers.
stack wait-http "${scheme}://127.0.0.1:${PORT}/" "$honcho_pid" 600 &
if wait $! && [ -z "$stop_requested" ]; then
  cat <<MSG

  CallIQ is running:   ${scheme}://127.0.0.1:${PORT}/
  Demo login:          demo@calliq.example / calliq-demo
  Staff login:         admin@calliq.example / calliq-admin   (monitoring and admin)
  Redis:               ${REDIS_URL:-none (DEGRADED mode)}
  Provider simulator:  ${PROVIDER_SIMULATOR_URL}
  Press Ctrl-C to stop.

MSG
fi
# Polling, not a bare `wait`: after a stop request, 8 s is all honcho gets
# before finish() takes over.
while kill -0 "$honcho_pid" 2>/dev/null; do
  if [ -n "$stop_requested" ] && [ $((SECONDS - stop_requested)) -ge 8 ]; then
    warn "honcho did not stop within 8 s: stopping what is left by PID"
    exit 1
  fi
  sleep 0.5 || true
done
status=0
wait "$honcho_pid" || status=$?
# A stop somebody asked for (Ctrl-C) that went cleanly is a success, not `make: *** Error 130`.
if [ -n "$stop_requested" ] && { [ "$status" = 130 ] || [ "$status" = 143 ]; }; then status=0; fi
exit "$status"
