# Two entry points for a fresh machine: `make demo` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test benchmark chromium tmux chp servers docs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# The browser test drives Debian's Chromium (a test tool cannot download its own browser here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q chromium; }

# The terminal tests drive IPython in a tmux session.
tmux:
	@command -v tmux >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q tmux; }

# JupyterHub's configurable-http-proxy for the hub tests, from npm, cached in .cache/chp.
CHP := .cache/chp/node_modules/.bin/configurable-http-proxy
$(CHP):
	@command -v npm >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q nodejs npm; }
	npm install --prefix .cache/chp --no-save --no-audit --no-fund configurable-http-proxy@4
chp: $(CHP)

# Run the quickstart notebook against a private Jupyter Server started on 127.0.0.1.
demo: $(STAMP)
	$(PY) -m remote_magic.demo

# Servers that cannot share the test environment, each in its own cached venv (see docs/compatibility.md).
# Made once; delete a .venv-*/ directory to make it again.
NB6 := .venv-nb6/.installed
EG := .venv-eg/.installed
JUPYVERSE := .venv-jupyverse/.installed

$(NB6):
	$(PYTHON) -m venv .venv-nb6
	.venv-nb6/bin/python -m pip install -q 'notebook>=6.5,<7' ipykernel
	touch $@

$(EG):
	$(PYTHON) -m venv .venv-eg
	.venv-eg/bin/python -m pip install -q 'jupyter_enterprise_gateway>=3.2,<4' ipykernel
	touch $@

$(JUPYVERSE):
	$(PYTHON) -m venv .venv-jupyverse
	.venv-jupyverse/bin/python -m pip install -q 'jupyverse[auth]>=0.14' fps-kernels fps-contents fps-frontend ipykernel
	touch $@

servers: $(NB6) $(EG) $(JUPYVERSE)

# The whole test suite, against real Jupyter servers and kernels.
test: $(STAMP) chromium tmux chp servers
	$(PY) -m pytest

# Benchmark-only peers (pip extra `bench`); JupyterHub's proxy as for the tests.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $(BENCH_STAMP)

benchmark: $(BENCH_STAMP) $(CHP)
	$(PY) benchmarks/suite.py

# The documentation site (Sphinx + MyST, pip extra `docs`) into artifacts/docs/: the pages of docs/,
# the demo notebooks as executed, the API reference from the docstrings. Warnings are errors, and
# every internal link and cross-reference is checked (-n).
DOCS_STAMP := $(VENV)/.docs-installed

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test,docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(PY) -m sphinx -b html -W --keep-going -n -q docs artifacts/docs
	@echo "Documentation: $(CURDIR)/artifacts/docs/index.html"
