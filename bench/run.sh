#!/usr/bin/env bash
# Runs every benchmark against PostgreSQL with a million demo calls in one
# organization (seeded once into the calliq_bench database, reused after).
# Benchmarks print tables of ratios against baselines measured in the same
# run, and save them in bench/results/. Not part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

ensure_venv bench/requirements.txt
export DJANGO_SECRET_KEY=${DJANGO_SECRET_KEY:-calliq-bench-only}
export DJANGO_DEBUG=0 CALLIQ_STATIC_MANIFEST=0
export DATABASE_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/calliq_bench}
export REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/8}
BENCH_CALLS=${BENCH_CALLS:-1000000}

postgres_answers "${DATABASE_URL%/*}/postgres" || start_postgres "${DATABASE_URL%/*}/postgres"
.venv/bin/python - "$DATABASE_URL" <<'PY'
import sys, psycopg
url = sys.argv[1]
name = url.rsplit("/", 1)[1]
with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
        conn.execute(f'CREATE DATABASE "{name}"')
PY
.venv/bin/python manage.py migrate --noinput -v 0
# The biggest organization's calls (the one the benchmarks measure), not all
# calls: bench/cache_view.py adds a small organization of its own, which must
# not make every later run reseed the million.
have=$(.venv/bin/python manage.py shell -c "from django.db.models import Count; from calls.models import Call; top = Call.objects.values('organization').annotate(n=Count('id')).order_by('-n').first(); print(top['n'] if top else 0)" 2>/dev/null | tail -n 1)
if [ "$have" != "$BENCH_CALLS" ]; then
  say "Seeding $BENCH_CALLS calls into one organization (have: $have)"
  .venv/bin/python manage.py seed_demo --calls "$BENCH_CALLS" --orgs 1 --seed 42 --reset
fi

mkdir -p bench/results
for script in ${BENCH_ONLY:-bench/[!_]*.py}; do
  name=$(basename "$script" .py)
  say "Running $name"
  .venv/bin/python "$script" | tee "bench/results/${name}.txt"
done
