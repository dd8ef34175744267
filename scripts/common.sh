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

# requirements_digest FILE: sha256 over FILE and every file it pulls in with
# -r/-c (paths relative to the including file), so a change to any of them shows.
requirements_digest() {
  .venv/bin/python - "$1" <<'PY'
import hashlib, pathlib, re, sys
digest, seen = hashlib.sha256(), set()
def add(path):
    path = path.resolve()
    if path in seen:
        return
    seen.add(path)
    text = path.read_bytes()
    # Contents only, not absolute paths: every clone sharing one .venv agrees.
    digest.update(text + b"\0")
    for line in text.decode().splitlines():
        match = re.match(r"\s*(?:-r|--requirement|-c|--constraint)(?:\s+|=)(\S+)", line)
        if match:
            add(path.parent / match.group(1))
add(pathlib.Path(sys.argv[1]))
print(digest.hexdigest())
PY
}

# ensure_venv REQUIREMENTS_FILE: create .venv and install REQUIREMENTS_FILE, only
# when it or a file it includes changed since the last install. Each requirements
# file has its own stamp, named after its path (bench/requirements.txt and
# requirements.txt must not share one: a stamp written for one would make the
# other look installed).
ensure_venv() {
  local requirements=$1 stamp digest
  stamp=".venv/.installed-$(printf '%s' "$requirements" | tr '/' '_')"
  if [ ! -x .venv/bin/python ]; then
    say "Creating .venv"
    "$(find_python)" -m venv .venv || die "Could not create .venv: install the venv module (Debian: apt-get install python3.11-venv)."
  fi
  digest=$(requirements_digest "$requirements") || die "Could not read $requirements or a file it includes."
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    say "Installing Python packages from $requirements"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r "$requirements" || die "pip install -r $requirements failed (see above)."
    echo "$digest" > "$stamp"
  fi
}

# ensure_node_packages: when there is a package.json, install its packages with
# npm (npm ci when package-lock.json pins them), only when package.json or the
# lock file changed since the last install.
ensure_node_packages() {
  [ -f package.json ] || return 0
  command -v npm >/dev/null 2>&1 ||
    die "package.json needs Node.js and npm to install its packages: install them (Debian: apt-get install nodejs npm)."
  local stamp=node_modules/.calliq-installed
  node_digest() { cat package.json package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1; }
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$(node_digest)" ]; then
    say "Installing node packages from package.json"
    if [ -f package-lock.json ]; then
      npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed (see above)."
    else
      npm install --no-audit --no-fund --loglevel=error || die "npm install failed (see above)."
    fi
    # After the install: `npm install` writes package-lock.json the first time.
    mkdir -p node_modules && node_digest > "$stamp"
  fi
}

# redis_answers URL: exit 0 when a Redis answers PING at URL.
redis_answers() {
  .venv/bin/python - "$1" <<'PY' >/dev/null 2>&1
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=0.5, socket_timeout=0.5).ping()
PY
}

# redis_dir URL: print the data directory of the Redis at URL (how run.sh knows a Redis is this clone's).
redis_dir() {
  .venv/bin/python - "$1" <<'PY' 2>/dev/null
import sys, redis
print(redis.Redis.from_url(sys.argv[1], socket_connect_timeout=0.5, socket_timeout=0.5).config_get("dir")["dir"])
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
