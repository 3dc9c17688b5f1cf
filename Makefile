# Set-up and everyday commands. Every target first creates .venv and installs the project with its
# test tools (once, and again whenever pyproject.toml changes), so a fresh clone needs nothing else.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: quick test lint plugin-example bench-smoke recipes-smoke gpu-check

quick: $(INSTALLED)
	$(PYTHON) -m benchmarks.run --suite quick

test: $(INSTALLED)
	$(PYTHON) -m pytest

# The example plugin package, installed through its entry points, benchmarked next to the
# built-ins and its claim checked: proves the plugin paths of docs/plugins.md and docs/claims.md.
EXAMPLE := examples/gans-wgan-lp
plugin-example: $(INSTALLED)
	$(PYTHON) -m pip install --quiet --editable $(EXAMPLE)
	$(PYTHON) -m pytest $(EXAMPLE)/tests
	$(PYTHON) -m benchmarks.run --suite $(EXAMPLE)/tiny-suite.toml --out results/plugin-example \
		--reports results/plugin-example/report --fresh
	$(PYTHON) -c "import pandas as pd; runs = pd.read_parquet('results/plugin-example/tiny-suite/runs.parquet'); \
		assert (runs.status == 'done').all() and runs.strategy.value_counts()['wgan-lp'] == 2, runs; \
		assert 'wgan-lp' in open('results/plugin-example/report/README.md').read(); \
		print('wgan-lp benchmarked')"
	$(PYTHON) -m benchmarks.claims --only wgan-lp-beats-gp --out results/plugin-example/claims \
		--reports results/plugin-example/claims-report
	grep -q "^## wgan-lp-beats-gp: " results/plugin-example/claims-report/README.md

# The benchmarks and the speed command once each, CI-sized: they run, they are not timed here.
bench-smoke: $(INSTALLED)
	$(PYTHON) -m pytest -m bench tests/bench --benchmark-disable -q
	$(PYTHON) -m benchmarks.speed --strategy wgan-gp --width 16 --batch 64 --iters 2 --compare \
		--repeats 1 --json

# Every recipe suite's offline, CPU-sized table (SUITE=DATASET; tests/benchmarks/test_recipes.py
# checks that each recipe-*.toml is here), then one report comparing them all.
RECIPES := recipe-pytorch-wgan-gp=mnist-5k:n=1000 recipe-tf2-wgan-gp=mnist-5k \
	recipe-tf-wgan-clip=mnist-5k recipe-wgan-tutorial-7=mnist-5k:7 \
	recipe-wgan-tutorial-7-gp=mnist-5k:7 recipe-wgan-original=mnist-5k
recipes-smoke: $(INSTALLED)
	for recipe in $(RECIPES); do \
		$(PYTHON) -m benchmarks.run --suite $${recipe%%=*} --datasets $${recipe#*=} \
			--out results/recipes --no-report || exit 1; \
	done
	$(PYTHON) -m benchmarks.report $(foreach r,$(RECIPES),results/recipes/$(firstword $(subst =, ,$(r)))) \
		--out results/recipes/report

# On a lent GPU: every GPU path once and the timings, in under 8 minutes (docs/performance.md).
gpu-check: $(INSTALLED)
	$(PYTHON) -m benchmarks.gpu_check --out results/gpu-check

lint: $(INSTALLED)
	$(VENV)/bin/ruff check gans benchmarks tests examples
	$(VENV)/bin/ruff format --check gans benchmarks tests examples

$(INSTALLED): pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --editable ".[test]"
	touch $(INSTALLED)
