# depthgait: every target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Offline by default: weights come from local folders or the Hugging Face cache, never a silent download.
export HF_HUB_OFFLINE ?= 1
export YOLO_OFFLINE ?= 1

.PHONY: install test lint demo reproduce-casiab reproduce-sustech1k bench bench-gpu clean

install: $(STAMP)

# Reinstall when the package metadata changes (a stale .venv).
$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check pipeline depthgait_model cli tests bench scripts

demo: $(STAMP)
	$(BIN)/python -m cli.demo --out demo

# The paper's CASIA-B recipe on the real videos (GPU, real weights); every stage resumes.
reproduce-casiab: $(STAMP)
	CASIAB="$(CASIAB)" scripts/reproduce_casiab.sh

reproduce-sustech1k: $(STAMP)
	SUSTECH1K="$(SUSTECH1K)" scripts/reproduce_sustech1k.sh

# Speed measurements (kept out of the unit tests).
bench: $(STAMP)
	$(BIN)/python bench/bench_synth.py --videos 6
	$(BIN)/python bench/bench_extract.py --videos 2 --frames 40
	$(BIN)/python bench/bench_align.py
	$(BIN)/python bench/bench_eval.py

# The prepared GPU check (< 8 min on an H100/H200): extract frames/s per backend, train it/s, embedding.
bench-gpu: $(STAMP)
	$(BIN)/python bench/gpu_check.py

clean:
	rm -rf cache runs demo .pytest_cache
