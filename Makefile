# lensbook: `make lab` sets up and opens the notebooks; `make test` sets up and runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# PyTorch: the CPU build by default (a bare `torch` from PyPI is the multi-GB CUDA build on Linux).
# TORCH_INDEX says where it comes from (scripts/install_torch.sh):
#   auto  a CPU wheel pip already finds on this machine (ours and CI's have one on disk),
#         otherwise PyTorch's CPU wheel index, https://download.pytorch.org/whl/cpu
#   URL   that wheel index
#   empty pip's own configuration. On a GPU machine: make lab TORCH=torch TORCH_INDEX=
TORCH ?= torch==2.13.0
TORCH_INDEX ?= auto
# The CPU kernels the notebooks are run under a second time (PyTorch picks SIMD kernels per
# CPU; outputs must not depend on them). See README, "Outputs that hold on every CPU".
SECOND_CPU_CAPABILITY ?= default
# The oldest ipywidgets we allow (Colab preinstalls 7.7): the explorers' tests run with it too.
OLDEST_IPYWIDGETS ?= 7.7.1
CHROMIUM ?= /usr/bin/chromium
export LENSBOOK_CHROMIUM := $(CHROMIUM)
export HF_HUB_OFFLINE ?= 1
export LENSBOOK_PROFILE ?= offline

# Tests run in JOBS pytest-xdist workers of one torch thread each (two workers use a 2-core
# machine better than one process with two threads). JOBS=1: one process, torch's own threads.
JOBS ?= 2
ifeq ($(JOBS),1)
PYTEST := $(PY) -m pytest
else
PYTEST := OMP_NUM_THREADS=1 $(PY) -m pytest -n $(JOBS)
endif
# A notebook's cells run in order in one kernel, so each notebook stays on one worker.
NBVAL := $(PYTEST) $(if $(filter-out 1,$(JOBS)),--dist loadfile,) --nbval \
	--nbval-current-env notebooks --nbval-sanitize-with notebooks/sanitize.cfg \
	-p no:cacheprovider

.PHONY: setup lab test unit notebooks notebooks-portable widgets-oldest lint browser-setup \
	browser-status clean gallery student

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install_torch.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	bash scripts/install_torch.sh $(PY) "$(TORCH)" "$(TORCH_INDEX)"
	$(PY) -m pip install -q -e ".[lab,dev]"
	touch $@

# Jupyter refuses to run as root unless told to (containers, CI-like machines).
LAB_FLAGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: setup
	$(VENV)/bin/jupyter lab $(LAB_FLAGS) notebooks/

# Student notebooks: notebooks/*.ipynb without their solutions (checks kept, outputs cleared).
student: setup
	$(PY) -m lensbook.exercises.student notebooks notebooks/student

lint: setup
	$(PY) -m ruff check lensbook tests benchmarks

# The 15 slowest tests are listed at the end, to show where CI's minutes go.
unit: setup
	$(PYTEST) $(if $(filter-out 1,$(JOBS)),--dist worksteal,) --durations=15 tests

notebooks: setup
	$(NBVAL)

# docs/figures/: the figures the executed notebooks show, taken from their stored outputs
# (cheap, runs nothing; re-execute the notebooks first). tests/test_readme_figures.py checks it.
gallery: setup
	$(PY) scripts/gallery.py

# The notebooks once more under other CPU kernels: a printed number that moves is a bug.
notebooks-portable: setup
	ATEN_CPU_CAPABILITY=$(SECOND_CPU_CAPABILITY) $(NBVAL)

# The explorers with the oldest ipywidgets we allow, laid over the environment for one run.
widgets-oldest: setup
	rm -rf $(VENV)/oldest-ipywidgets
	$(PY) -m pip install -q --no-deps --target $(VENV)/oldest-ipywidgets \
		"ipywidgets==$(OLDEST_IPYWIDGETS)" ipython_genutils
	PYTHONPATH=$(VENV)/oldest-ipywidgets $(PY) -c \
		"import ipywidgets; assert ipywidgets.__version__ == '$(OLDEST_IPYWIDGETS)', ipywidgets.__version__"
	PYTHONPATH=$(VENV)/oldest-ipywidgets $(PY) -m pytest -q -p no:cacheprovider \
		-W "ignore::DeprecationWarning" tests/test_widgets.py

test: lint unit notebooks notebooks-portable widgets-oldest online-01
	@$(MAKE) -s browser-status

# Debian's Chromium for tests/test_browser.py (Playwright drives it; it never downloads one).
browser-setup:
	@if [ -x $(CHROMIUM) ]; then echo "Chromium is installed: $(CHROMIUM)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "Install Chromium as root: sudo apt-get install -y chromium"; exit 1; fi

browser-status:
	@if [ -x $(CHROMIUM) ]; then \
	  echo "browser test: ran (tests/test_browser.py, Chromium at $(CHROMIUM))"; \
	else \
	  echo "browser test: NOT RUN, $(CHROMIUM) is missing; 'make browser-setup' installs it (Debian/Ubuntu, as root), then 'make test' runs it"; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache

# The stand-in Hugging Face Hub (tests/hub_double) and the online profiles run against it.
# Random weights: a failing notebook assert (a claim about a trained model) is listed, not a
# failure; any other error, a cell over ONLINE_CELL_S or a kernel over ONLINE_MAX_MIB fails.
ONLINE_CELL_S ?= 720
ONLINE_MAX_MIB ?= 2048
ONLINE_ARGS ?= --claims-unchecked --keep-going --cell-timeout $(ONLINE_CELL_S) \
	--max-rss-mib $(ONLINE_MAX_MIB)
.PHONY: hub-double test-online online-01
hub-double: setup
	$(PY) -m tests.hub_double.build
test-online: setup  # e.g. make test-online ONLINE_NOTEBOOKS=notebooks/01_logit_lens.ipynb
	scripts/test_online.sh $(PY) $(ONLINE_ARGS) $(ONLINE_NOTEBOOKS)
# What CI runs of it: notebook 01, what a Colab or Binder user without a GPU gets.
online-01: hub-double
	$(PY) -m benchmarks.run_online --no-table $(ONLINE_ARGS) notebooks/01_logit_lens.ipynb
