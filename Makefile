# pushes: the two commands that matter are `make run` and `make test`.
# Everything installs into .venv; the Kafka broker comes from scripts/kafka.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test test-fast test-unit lint format kafka-start kafka-stop kafka-status kafka-logs clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "pushes needs Python >= 3.10")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	@touch $@

## run: install, start the local Kafka, run one worker in the foreground (web on :6066)
run: $(STAMP) kafka-start
	$(BIN)/faust -A app worker -l info

## test: install, start the local Kafka if needed, run the whole suite against it
test: $(STAMP) kafka-start
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## test-fast: everything but the slow multi-worker scenarios
test-fast: $(STAMP) kafka-start
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

## test-unit: pure logic only, no broker needed
test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

## lint: ruff and mypy, as CI would
lint: $(STAMP)
	$(BIN)/ruff check app tables tests
	$(BIN)/ruff format --check app tables tests
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix app tables tests
	$(BIN)/ruff format app tables tests

kafka-start:
	scripts/kafka start

kafka-stop:
	scripts/kafka stop

kafka-status:
	scripts/kafka status

kafka-logs:
	scripts/kafka logs

## clean: stop Kafka, remove its data, the worker state and the virtualenv
clean:
	-scripts/kafka reset
	rm -rf $(VENV) data
