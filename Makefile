# Each target prints what it does. `make run` and `make test` do all their own set-up.
.PHONY: run run-https test lint format bench

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
