# Each target prints what it does. `make run` and `make test` do all their own set-up.
.PHONY: run test lint format bench

run:  ## Run the app: .venv, migrations, demo data, simulator, Celery, gunicorn
	bash scripts/run.sh

test:  ## Run the whole test suite (installs everything it needs)
	bash scripts/test.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

format:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .

bench:  ## Benchmarks at a million calls (PostgreSQL); see "Benchmarks" in README.md
	bash bench/run.sh
