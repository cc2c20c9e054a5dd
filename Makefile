# Set-up and main job. `make demo` trains the default run through its transition, analyses it
# and writes its HTML report (RUN/report.html); `make test` runs the test suite. Both create
# .venv on first use (CPU torch first, never a CUDA build here).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# How torch is installed when none is importable; override for another index or build.
TORCH ?= torch==2.13.0
RUN ?= checkpoints/demo

.PHONY: install demo test test-fast lint bench clean-venv

install: $(VENV)/.installed

# --system-site-packages: a torch already installed for this Python (a CUDA one, say) is used
# as it is; only when none is importable is $(TORCH) installed, before anything that needs it.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv --system-site-packages $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev,ray]"
	$(BIN)/python -c "import torch; from importlib.metadata import version as v; print('torch', torch.__version__, '| transformer-lens', v('transformer-lens'))"
	touch $@

demo: install
	$(BIN)/mbc train --out $(RUN) --exist-ok
	$(BIN)/mbc analyze $(RUN)
	$(BIN)/mbc report $(RUN)

test: install lint
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_patching.py
	$(BIN)/python benchmarks/bench_sweep.py

clean-venv:
	rm -rf $(VENV)
