# lensbook: `make lab` sets up and opens the notebooks; `make test` sets up and runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch (a local file on our machines); a bare `torch` pulls a multi-GB CUDA build.
# On a GPU machine: make setup TORCH="torch"
TORCH ?= torch==2.13.0
export HF_HUB_OFFLINE ?= 1
export LENSBOOK_PROFILE ?= offline

.PHONY: setup lab test unit notebooks lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

# Jupyter refuses to run as root unless told to (containers, CI-like machines).
LAB_FLAGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: setup
	$(VENV)/bin/jupyter lab $(LAB_FLAGS) notebooks/

lint: setup
	$(PY) -m ruff check lensbook tests benchmarks

unit: setup
	$(PY) -m pytest tests

notebooks: setup
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
	  $(PY) -m pytest --nbval --nbval-current-env notebooks --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider; \
	else echo "no notebooks yet"; fi

test: lint unit notebooks

clean:
	rm -rf $(VENV) .pytest_cache

# The stand-in Hugging Face Hub (tests/hub_double) and the online profiles run against it.
.PHONY: hub-double test-online
hub-double: setup
	$(PY) -m tests.hub_double.build
test-online: setup  # e.g. make test-online ONLINE_ARGS="--cell-timeout 420 notebooks/01_logit_lens.ipynb"
	scripts/test_online.sh $(PY) $(ONLINE_ARGS)
