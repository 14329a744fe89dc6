# Set-up and the two everyday commands:
#   make demo   set up .venv, run the whole pipeline on the embedded demo config
#   make test   set up .venv (+ test data/tools), run the test suite (what .ci/run calls)
# Everything is installed into .venv; system packages (Debian) only for tests.

PYTHON ?= python3
VENV ?= .venv
CORES ?= 2
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
BIN := $(VENV)/bin
STAMP := $(VENV)/.weightzoo-installed
# Debian packages the tests use: real Fashion-MNIST, h5ls, and a local SLURM cluster
# (tests/slurm/start-local-slurm.sh installs slurm itself)
TEST_DEB := dataset-fashion-mnist hdf5-tools

.PHONY: setup demo paper test test-fast lint system-deps clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet -e ".[workflow,dev]"
	touch $@

demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --configfile config/demo.yaml all
	@echo "Demo done: results/tables/table2.md and results/figures/*.pdf"

paper: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) all

system-deps:
	@missing=""; for p in $(TEST_DEB); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "not root: install these for the full test suite (tests needing them skip):$$missing"; \
	  fi; \
	fi

test: $(STAMP) system-deps
	$(BIN)/pytest

test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/snakemake --lint

clean:
	rm -rf results .snakemake
