# pushes: the two commands that matter are `make run` and `make test`.
# Everything installs into .venv; the Kafka broker comes from scripts/kafka.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The Quix Streams contestant of the bench runs in its own virtualenv (see the
# `quix` extra in pyproject.toml: its confluent-kafka pin differs from ours).
QUIX_VENV  := .venv-quix
QUIX_STAMP := $(QUIX_VENV)/.installed
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: run test test-fast test-unit lint format bench bench-quick bench-profile kafka-start kafka-stop kafka-status kafka-logs clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "pushes needs Python >= 3.10")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev,bench]'
	@touch $@

$(QUIX_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "quixstreams needs Python >= 3.11")'
	@test -x $(QUIX_VENV)/bin/python || $(PYTHON) -m venv $(QUIX_VENV)
	$(QUIX_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(QUIX_VENV)/bin/python -m pip install --quiet -e '.[quix]'
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
	$(BIN)/ruff check app tables tests bench
	$(BIN)/ruff format --check app tables tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix app tables tests bench
	$(BIN)/ruff format app tables tests bench

## bench: the full benchmark on the local broker (~10 min on 2 cores when the targets are met);
##        JSON report and PNG figure in bench/results/. BENCH_SCALE=0.05 for smaller sizes.
##        Builds .venv-quix for the Quix Streams contestant of the backlog scenario.
bench: $(STAMP) $(QUIX_STAMP) kafka-start
	$(BIN)/python -m bench $(BENCH_ARGS)

## bench-quick: the same at 5% of the sizes (a minute or two)
bench-quick: $(STAMP) $(QUIX_STAMP) kafka-start
	$(BIN)/python -m bench --scale 0.05 $(BENCH_ARGS)

## bench-profile: the join of 100,000 payments under py-spy; profile and top functions in bench/results/
bench-profile: $(STAMP) kafka-start
	$(BIN)/python -m bench --scale 0.1 --profile --join-budget 900 --skip recovery,baseline,latency,soak,http,delivery,backlog,quix $(BENCH_ARGS)

kafka-start:
	scripts/kafka start

kafka-stop:
	scripts/kafka stop

kafka-status:
	scripts/kafka status

kafka-logs:
	scripts/kafka logs

## clean: stop Kafka, remove its data, the worker state and the virtualenvs
clean:
	-scripts/kafka reset
	rm -rf $(VENV) $(QUIX_VENV) data
