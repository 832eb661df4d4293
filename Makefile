# The two commands of the README:
#   make lab    create the environment, import the default model on first use, open the lab
#   make test   create the environment, run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU build from local disk here; on a CUDA machine the same pin is the CUDA wheel.
TORCH  ?= torch==2.13.0
ARGS   ?=

.PHONY: lab test lint bench env

lab: $(VENV)/.installed
	$(BIN)/tuilab $(ARGS)

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q $(ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check tuilab tests bench

env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@
