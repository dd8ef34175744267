# Each target prints what it does. `make run` and `make test` do all their own set-up.
.PHONY: run run-https test lint format bench fleet-up fleet-down drill

run:  ## Run the app: .venv, port checks, migrations, demo data, then the Procfile under honcho (gunicorn, simulator, Celery worker and beat)
	bash scripts/run.sh

run-https:  ## `make run` over HTTPS (throwaway certificate, CALLIQ_HTTPS=1) to scan the production headers
	bash scripts/run_https.sh

test:  ## Run the whole test suite (installs everything it needs)
	bash scripts/test.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

format:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .

bench:  ## Benchmarks at a million calls (PostgreSQL); see "Benchmarks" in README.md
	bash bench/run.sh

fleet-up:  ## A fleet on loopback: private PostgreSQL primary + replica + PgBouncer, Redis + replica + Sentinel, RabbitMQ vhost, two web hosts behind a round-robin, two workers (scripts/fleet.py)
	.venv/bin/python scripts/fleet.py up

fleet-down:  ## Stop every process of the fleet by its PID
	.venv/bin/python scripts/fleet.py down

drill:  ## The production drill: load + faults on the fleet, report into docs/drill/ (scripts/drill.py; DRILL_ARGS="--calls 1000000")
	.venv/bin/python scripts/drill.py $(DRILL_ARGS)
