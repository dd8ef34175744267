# Shared by scripts/run.sh and scripts/test.sh: find Python 3.11, keep .venv
# in step with the requirements, and make sure local services answer.
# shellcheck shell=bash

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
warn() { printf '\033[1;33m==> WARNING:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m==> ERROR:\033[0m %s\n' "$*" >&2; exit 1; }

find_python() {
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  die "Python 3.11 is required (Django 5.2 LTS stack). Install python3.11 with venv support (Debian: apt-get install python3.11 python3.11-venv)."
}

# ensure_venv REQUIREMENTS_FILE: create .venv and install, only when the requirements changed.
ensure_venv() {
  local requirements=$1 stamp=".venv/.installed-$(basename "$1")"
  if [ ! -x .venv/bin/python ]; then
    say "Creating .venv"
    "$(find_python)" -m venv .venv || die "Could not create .venv: install the venv module (Debian: apt-get install python3.11-venv)."
  fi
  local digest
  digest=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    say "Installing Python packages from $requirements"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r "$requirements" || die "pip install -r $requirements failed (see above)."
    echo "$digest" > "$stamp"
  fi
}

# ensure_node_packages: install the browser packages pinned in package.json
# (web-vitals, served as a static file from node_modules) with npm, only when
# package.json or its lock changed.
ensure_node_packages() {
  command -v npm >/dev/null 2>&1 ||
    die "npm is required for the browser packages pinned in package.json (web-vitals). Install Node.js with npm (Debian: apt-get install nodejs npm)."
  local stamp="node_modules/.installed-package-json" digest
  digest=$(cat package.json package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    say "Installing browser packages from package.json (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed (see above)."
    echo "$digest" > "$stamp"
  fi
}

# redis_answers URL: exit 0 when a Redis answers PING at URL.
redis_answers() {
  .venv/bin/python - "$1" <<'PY' >/dev/null 2>&1
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=0.5, socket_timeout=0.5).ping()
PY
}

# postgres_answers URL: exit 0 when PostgreSQL accepts a connection at URL.
postgres_answers() {
  .venv/bin/python - "$1" <<'PY' >/dev/null 2>&1
import sys, psycopg
psycopg.connect(sys.argv[1], connect_timeout=2).close()
PY
}

start_postgres() {
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    say "PostgreSQL is not answering: starting the local cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start || true
    for _ in $(seq 1 30); do postgres_answers "$1" && return 0; sleep 1; done
  fi
  die "PostgreSQL does not answer at $1. Install and start it (Debian: apt-get install postgresql), or set DATABASE_URL to a server that answers."
}
