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
# The raw DBLP files, read in place by tests, the demo and the benchmarks (the
# package itself reads only what it is given). Default: ../shared/data/dblp
# when that folder exists; override with `make test PYG_MULTISAGE_DBLP=/path`
# or by exporting the variable.
PYG_MULTISAGE_DBLP ?= $(wildcard $(CURDIR)/../shared/data/dblp)
ifneq ($(strip $(PYG_MULTISAGE_DBLP)),)
export PYG_MULTISAGE_DBLP
endif

# The [sparse] extra (torch_scatter, torch_sparse) is compiled code matched to
# one torch build. When $(WHEELS) holds wheels built for $(TORCH_SPEC), every
# `make install/test` installs them from there (binary only, no index build,
# a few seconds); without the folder nothing is built unless asked:
# `make test SPARSE=1` builds them from source (~25 minutes on 2 cores).
WHEELS ?= ../shared/wheels
SPARSE ?= 0
SPARSE_PINS := torch_scatter==2.1.2 torch_sparse==0.6.18
SPARSE_WHEELS := $(wildcard $(WHEELS)/torch_scatter-*.whl $(WHEELS)/torch_sparse-*.whl)
ifneq ($(SPARSE_WHEELS),)
SPARSE_STAMP := $(VENV)/.sparse-wheels
else ifeq ($(SPARSE),1)
SPARSE_STAMP := $(VENV)/.sparse-source
else
SPARSE_STAMP :=
endif

.PHONY: install demo test lint format docs bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[test,plot,ray,ann,parquet]"
	@touch $(STAMP)

# The stamps depend on the wheel files, so new wheels are installed too.
$(VENV)/.sparse-wheels: $(STAMP) $(SPARSE_WHEELS)
	$(BIN)/python -m pip install -q --disable-pip-version-check \
		--find-links $(WHEELS) --only-binary torch_scatter,torch_sparse $(SPARSE_PINS)
	@touch $@

$(VENV)/.sparse-source: $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check \
		--no-build-isolation $(SPARSE_PINS)
	@touch $@

install: $(STAMP) $(SPARSE_STAMP)

demo: $(STAMP)
	$(BIN)/python -m pyg_multisage.demo

lint: $(STAMP)
	$(BIN)/ruff check pyg_multisage tests examples benchmarks docs
	$(BIN)/ruff format --check pyg_multisage tests examples benchmarks docs

format: $(STAMP)
	$(BIN)/ruff check --fix pyg_multisage tests examples benchmarks docs
	$(BIN)/ruff format pyg_multisage tests examples benchmarks docs

test: lint $(SPARSE_STAMP)
	$(BIN)/python -m pytest -q

docs: $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[docs]"
	$(BIN)/sphinx-build -W -b html docs docs/_build/html

bench: $(STAMP)
	$(BIN)/python benchmarks/samplers.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
