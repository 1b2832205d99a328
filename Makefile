# The two commands of the quick start: `make run` and `make test`. Each sets itself up.
#
# Installs come from uv.lock (exact versions and hashes), through uv, which this Makefile
# bootstraps from PyPI into .tools/ with the machine's python3 and pip. `--locked` makes an
# out-of-date lock fail loudly instead of resolving anew: after editing the dependencies in
# pyproject.toml run `make lock`; to move every pin to the newest allowed release, `make upgrade`.
#   make run:  runtime dependencies only (the embedded shape).
#   make test: runtime + the dev, nats and rabbitmq extras.
VENV       := .venv
BIN        := $(VENV)/bin
PYTHON     ?= python3
UV_VERSION := 0.13.9
UV_HOME    := .tools/uv-$(UV_VERSION)
UV         := $(UV_HOME)/bin/uv

# The venv is made from $(PYTHON), never from a Python that uv would download.
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Compile .pyc files while installing (as pip does): otherwise the first start compiles them, in
# every process at once.
export UV_COMPILE_BYTECODE ?= 1

.PHONY: run test lint typecheck install install-dev lock upgrade clean bench browser

# uv is one binary: pip puts it in .tools/ without a venv of its own (seconds faster), or, where
# the machine's pip cannot install there, into a venv made for it.
$(UV):
	rm -rf .tools/uv-*
	$(PYTHON) -m pip install -qq --target $(UV_HOME) uv==$(UV_VERSION) 2>/dev/null \
	  || { rm -rf $(UV_HOME) && $(PYTHON) -m venv $(UV_HOME) \
	       && $(UV_HOME)/bin/pip install -qq uv==$(UV_VERSION); }

# uv syncs in well under a second when nothing changed, so there is no stamp to go stale:
# every target syncs the set it needs. `install` adds what is missing and leaves the rest
# (so `make run` after `make test` keeps the test tools); `install-dev` syncs exactly.
install: $(UV)
	$(UV) sync --locked --inexact --quiet

install-dev: $(UV)
	$(UV) sync --locked --all-extras --quiet

run: install
	$(BIN)/orderflow run

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: install-dev
	$(BIN)/mypy src

# The browser tests drive the system's Chromium; install it where we can (root with apt).
browser:
	command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null \
		|| (apt-get update -qq && apt-get install -y -qq chromium)

test: lint typecheck browser
	$(BIN)/pytest -q $(PYTEST_ARGS)

bench: install
	$(BIN)/orderflow bench --max --orders 5000 --ceiling --report var/bench.json --chart var/bench.svg

# Re-lock after editing pyproject.toml: keeps every pin that still satisfies it.
lock: $(UV)
	$(UV) lock

# Every pin to the newest release pyproject.toml allows; then run `make test` and commit uv.lock.
upgrade: $(UV)
	$(UV) lock --upgrade

clean:
	rm -rf $(VENV) .tools var .mypy_cache .ruff_cache .pytest_cache
