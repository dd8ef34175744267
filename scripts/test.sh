#!/usr/bin/env bash
# The whole test suite, set-up included: Python packages (with dev ones),
# npm's browser packages (package.json),
# Debian's chromium for the browser tests, PostgreSQL, Redis and RabbitMQ; then
# ruff, import-linter and pytest against the real services, then the SQLite lane
# (the tests marked sqlite, on a fresh SQLite file: the first-run database).
# Extra arguments go to both pytest runs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

ensure_venv requirements-dev.txt
ensure_node_packages

CHROMIUM=${CALLIQ_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "Installing Debian's chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null ||
      die "apt-get install chromium failed."
  else
    die "Browser tests need Chromium at $CHROMIUM: install Debian's 'chromium' package (as root: apt-get install chromium) or set CALLIQ_CHROMIUM."
  fi
fi

export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/calliq}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/1}
# pytest-django creates and drops test_<name>; connecting to the maintenance
# database "postgres" tells us whether the server answers.
maintenance_url="${DATABASE_URL%/*}/postgres"
postgres_answers "$maintenance_url" || start_postgres "$maintenance_url"

if ! redis_answers "$REDIS_URL"; then
  if command -v redis-server >/dev/null 2>&1; then
    say "Redis is not answering: starting redis-server on 127.0.0.1:6379"
    mkdir -p var
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir "$PWD/var" --logfile "$PWD/var/redis-test.log"
    for _ in $(seq 1 20); do redis_answers "$REDIS_URL" && break; sleep 0.5; done
  fi
  redis_answers "$REDIS_URL" || die "Redis does not answer at $REDIS_URL. Install it (Debian: apt-get install redis-server)."
fi
command -v redis-server >/dev/null 2>&1 ||
  die "The resilience tests start private Redis servers: install redis-server (Debian: apt-get install redis-server)."

# The pipeline tests also run on RabbitMQ, the fleet's broker (tests/calls/test_pipeline_rabbitmq.py).
export CALLIQ_TEST_AMQP_URL=${CALLIQ_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672//}
amqp_answers() {
  .venv/bin/python - "$1" <<'PY' >/dev/null 2>&1
import sys, kombu
with kombu.Connection(sys.argv[1], connect_timeout=2) as connection:
    connection.connect()
PY
}
if ! amqp_answers "$CALLIQ_TEST_AMQP_URL"; then
  if command -v rabbitmq-server >/dev/null 2>&1; then
    say "RabbitMQ is not answering: starting rabbitmq-server -detached"
    rabbitmq-server -detached || true
    for _ in $(seq 1 60); do amqp_answers "$CALLIQ_TEST_AMQP_URL" && break; sleep 1; done
  fi
  amqp_answers "$CALLIQ_TEST_AMQP_URL" ||
    die "RabbitMQ does not answer at $CALLIQ_TEST_AMQP_URL. Install it (Debian: apt-get install rabbitmq-server) or set CALLIQ_TEST_AMQP_URL."
fi

say "ruff check and format"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

say "import-linter: the layers and no import cycles (.importlinter)"
.venv/bin/lint-imports

say "pytest against PostgreSQL ($DATABASE_URL) and Redis ($REDIS_URL)"
.venv/bin/pytest "$@"

sqlite_dir=$(mktemp -d)
trap 'rm -rf "$sqlite_dir"' EXIT
say "pytest -m sqlite against SQLite ($sqlite_dir/calliq.sqlite3) and Redis ($REDIS_URL)"
# Exit status 5 is "no test selected": extra arguments may pick no sqlite test.
DATABASE_URL="sqlite:///$sqlite_dir/calliq.sqlite3" .venv/bin/pytest -m sqlite "$@" || [ $? -eq 5 ]
