# Set-up and main job. `make demo` trains the default run through its transition, analyses it
# and writes its HTML report (RUN/report.html); `make test` runs the test suite (what CI runs),
# `make test-fast` all but the slow tests. Each creates .venv on first use (CPU torch first,
# never a CUDA build here) and installs what it needs: the demo the package alone, the tests
# also the dev extras (pytest, notebooks, browser) and Ray (the Ray backend's test).
# test-fast: every test not marked slow, in one process, about 100 s of CPU time (user+sys, the processes it
# starts included; torch at one thread), so about as long in wall time on an idle 2-core
# machine; it prints the 15 slowest. Slow (`make test` only): sweeps of runs trained through
# their transition, killed processes, notebooks, the science checks.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# How torch is installed when none is importable; override for another index or build.
TORCH ?= torch==2.13.0
RUN ?= checkpoints/demo

.PHONY: install install-dev notebooks demo test test-fast lint bench clean-venv

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# --system-site-packages: a torch already installed for this Python (a CUDA one, say) is used
# as it is; only when none is importable is $(TORCH) installed, before anything that needs it.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv --system-site-packages $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e .
	$(BIN)/python -c "import torch; from importlib.metadata import version as v; print('torch', torch.__version__, '| transformer-lens', v('transformer-lens'))"
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e ".[dev,ray]"
	touch $@

# JupyterLab, widgets (tqdm's bars) and nbconvert, and a kernel named mbc for this venv
notebooks: install
	$(BIN)/python -m pip install -q -e ".[notebooks]"
	$(BIN)/python -m ipykernel install --user --name mbc --display-name "mbc_interp (.venv)"

demo: install
	$(BIN)/mbc train --out $(RUN) --exist-ok
	$(BIN)/mbc analyze $(RUN)
	$(BIN)/mbc report $(RUN)

test: install-dev lint
	$(BIN)/python -m pytest -q

test-fast: install-dev
	$(BIN)/python -m pytest -q -m "not slow" --durations=15

lint: install-dev
	$(BIN)/ruff check .

bench: install
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_patching.py
	$(BIN)/python benchmarks/bench_sweep.py
	$(BIN)/python benchmarks/bench_gradients.py
	$(BIN)/python benchmarks/bench_analysis.py
	$(BIN)/python benchmarks/bench_eval.py
	$(BIN)/python benchmarks/bench_startup.py

clean-venv:
	rm -rf $(VENV)
