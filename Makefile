# Packhouse. `make run`: embedded registry on 127.0.0.1:8000. `make test`: the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Tests run on PostgreSQL and Redis; override with the environment.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/packhouse
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
# The suite runs on pytest-xdist, two workers per core (many tests wait on a client, a server
# or a store as much as they compute), each test file whole on one worker (its module's servers
# start once), the longest files first (tests/file_durations.json); each worker has its own test
# database, Redis database and var directory (tests/worker_env.py). PYTEST_ARGS= runs it in one
# process.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) * 2 )))
PYTEST_ARGS ?= -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

.PHONY: run test serve cluster bench soak lint format migrate system-deps clean

$(STAMP): pyproject.toml
	scripts/install-build-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# What `make serve`, the tests and `make cluster` run besides Python packages: curl, and Debian's
# nginx-light (in front of every node's uWSGI, and the balancer of the two-node topology).
system-deps:
	@command -v curl >/dev/null && command -v nginx >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq curl nginx-light)

run: $(STAMP)
	mkdir -p var
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py bootstrap_admin
	@echo "Packhouse on http://127.0.0.1:8000"
	$(VENV)/bin/gunicorn packhouse.wsgi:application --bind 127.0.0.1:8000 --workers 2 \
		--worker-class gthread --threads 4 --timeout 600

test: $(STAMP) system-deps
	PACKHOUSE_DATABASE_URL=$${PACKHOUSE_DATABASE_URL:-$(TEST_DATABASE_URL)} \
	PACKHOUSE_REDIS_URL=$${PACKHOUSE_REDIS_URL:-$(TEST_REDIS_URL)} \
	PACKHOUSE_TASKS_EAGER=true \
	PACKHOUSE_VAR_DIR=$$(mktemp -d) \
	$(PY) -m pytest $(PYTEST_ARGS)

# Production shape: a node (packhouse.node: uWSGI's workers behind nginx, nginx sending the
# downloads) + a Celery worker and beat, on PostgreSQL and Redis.
serve: $(STAMP) system-deps
	mkdir -p var
	@test -n "$$PACKHOUSE_DATABASE_URL" || (echo "set PACKHOUSE_DATABASE_URL (postgres://...)"; exit 2)
	@test -n "$$PACKHOUSE_REDIS_URL" || (echo "set PACKHOUSE_REDIS_URL (redis://...)"; exit 2)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py bootstrap_admin
	$(VENV)/bin/celery -A packhouse worker --beat --schedule var/celerybeat-schedule --concurrency 2 --loglevel INFO & \
	celery_pid=$$!; trap "kill $$celery_pid" EXIT INT TERM; \
	$(PY) -m packhouse.node --listen $${PACKHOUSE_BIND:-127.0.0.1:8000} --processes $${PACKHOUSE_WORKERS:-4}

# Two gunicorn nodes, a Celery worker with beat, SeaweedFS and nginx on one machine, on
# PACKHOUSE_DATABASE_URL and PACKHOUSE_REDIS_URL (README "Scaling out"); state under var/cluster.
cluster: $(STAMP) system-deps
	@test -n "$$PACKHOUSE_DATABASE_URL" || (echo "set PACKHOUSE_DATABASE_URL (postgres://...)"; exit 2)
	@test -n "$$PACKHOUSE_REDIS_URL" || (echo "set PACKHOUSE_REDIS_URL (redis://...)"; exit 2)
	$(PY) scripts/cluster.py $(CLUSTER_ARGS)

# Benchmarks against the production shape (needs PostgreSQL and Redis; installs wrk and nginx).
# PEERS=1: also Verdaccio, pypiserver and devpi-server in the same run, everything pinned
# (servers on CPU 0, load on CPU 1; see BENCHMARKS.md).
bench: $(STAMP)
	@command -v wrk >/dev/null && command -v nginx >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq wrk nginx-light)
	$(PY) scripts/bench.py $(if $(PEERS),--peers) $(BENCH_ARGS)

# Mixed publish/install load for SOAK_SECONDS (default 600) from several processes; not run in CI.
soak: $(STAMP)
	$(PY) scripts/soak.py --seconds $${SOAK_SECONDS:-600}

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) var
