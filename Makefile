# pegbot — `make run` and `make test` set everything up from a fresh clone.
# Python comes from the machine (3.11+; never downloaded). uv comes from PATH, or is installed with
# pip into the project venv. Dependencies come from the committed uv.lock; the local chain's npm
# packages (anvil, solc-js, the Uniswap v3 artifacts) from the committed package-lock.json.
# The installed packages are compiled to bytecode once, at setup: uv does not, and where
# PYTHONDONTWRITEBYTECODE is set Python never writes it, so every process the tests start (the
# daemon, each sandbox piece) compiled ccxt, web3 and the rest again, ~10 s of CPU each.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
VPY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null || echo $(VENV)/bin/uv)
export UV_PYTHON_DOWNLOADS := never

.PHONY: setup run test bench compare lint typecheck sample clean

$(VPY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "pegbot needs Python >= 3.11, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.synced: pyproject.toml uv.lock | $(VPY)
	@command -v uv >/dev/null 2>&1 || [ -x $(VENV)/bin/uv ] || $(VPY) -m pip install -q uv
	$(UV) sync --frozen --inexact --extra ray --compile-bytecode --python $(VPY)
	@touch $@

# npm ci writes node_modules/.package-lock.json: the target is rebuilt only when the lock changes.
# No install scripts: anvil's binary comes in its platform package, nothing needs building.
node_modules/.package-lock.json: package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "pegbot's local chain needs Node.js and npm (anvil, solc-js, Uniswap artifacts)"; exit 1; }
	npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

setup: $(VENV)/.synced node_modules/.package-lock.json

run: setup
	$(VENV)/bin/pegbot run --config config/sandbox.toml

# Two workers (pytest-xdist), a whole test module at a time (module fixtures start one sandbox per
# module); the modules with slow tests are handed out first (tests/conftest.py).
# One process: the sandbox daemon tests time real venues, and two workers on two cores starved
# them (quotes not confirmed canceled in time, a run too short for its trade). pytest-xdist stays
# installed: `.venv/bin/pytest -n 2 --dist loadfile` runs the suite in about two thirds of the time.
test: setup
	$(VENV)/bin/pytest

bench: setup
	$(VPY) -m bench.run

# The settlement-aware strategy against its naive variant: 4 scenarios x 20 seeds (~5 min).
compare: setup
	$(VPY) -m bench.compare --seeds 20

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

# Regenerate the bundled sample feed (a fixed seed: the output is identical every time).
sample: setup
	$(VENV)/bin/pegbot synth --scenario launch-premium --days 7 --seed 7 --out data/sample --overwrite

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache node_modules build
