# Two entry points for a fresh machine: `make demo` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test benchmark chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# The browser test drives Debian's Chromium (a test tool cannot download its own browser here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q chromium; }

# Run the quickstart notebook against a private Jupyter Server started on 127.0.0.1.
demo: $(STAMP)
	$(PY) -m remote_magic.demo

# The whole test suite, against real Jupyter servers and kernels.
test: $(STAMP) chromium
	$(PY) -m pytest

# Benchmark-only peers (pip extra `bench`) and JupyterHub's proxy (npm, cached under .cache/chp;
# without npm the benchmark skips that column and says so).
BENCH_STAMP := $(VENV)/.bench-installed
CHP := .cache/chp/node_modules/.bin/configurable-http-proxy

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $(BENCH_STAMP)

$(CHP):
	@if command -v npm >/dev/null 2>&1; then npm install --silent --prefix .cache/chp configurable-http-proxy; \
	else echo "npm not found: the configurable-http-proxy column is skipped"; fi

benchmark: $(BENCH_STAMP) $(CHP)
	$(PY) benchmarks/suite.py
