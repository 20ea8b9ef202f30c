# Two commands a newcomer needs: `make demo` and `make test`. Each creates
# .venv when it is missing and installs the package into it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU wheel of torch lies on this machine's disk; a bare `torch`
# requirement would pull a multi-GB CUDA build instead. Override on machines
# where another torch is wanted: `make test TORCH_SPEC='torch>=2.3'`.
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.installed
export PYTHONHASHSEED := 0

.PHONY: install demo test lint format docs bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[test,plot,ray]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m pyg_multisage.demo

lint: $(STAMP)
	$(BIN)/ruff check pyg_multisage tests examples benchmarks docs
	$(BIN)/ruff format --check pyg_multisage tests examples benchmarks docs

format: $(STAMP)
	$(BIN)/ruff check --fix pyg_multisage tests examples benchmarks docs
	$(BIN)/ruff format pyg_multisage tests examples benchmarks docs

test: lint
	$(BIN)/python -m pytest -q

docs: $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[docs]"
	$(BIN)/sphinx-build -W -b html docs docs/_build/html

bench: $(STAMP)
	$(BIN)/python benchmarks/samplers.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
