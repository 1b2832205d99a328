# The two commands of the quick start: `make run` and `make test`. Each sets itself up.
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: run test lint typecheck install clean bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[dev,nats,rabbitmq]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/orderflow run

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy src

test: lint typecheck
	$(BIN)/pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/orderflow bench --max --orders 5000 --ceiling --report var/bench.json --chart var/bench.svg

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
