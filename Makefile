# ECE 685D HW2.  `make pdf` builds the hand-in, `make test` builds and checks it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements.stamp

.PHONY: pdf test notebook setup system-deps benchmark clean

## pdf: execute hw2.ipynb in place, export hw2.pdf and derivations.pdf into submission/
pdf: notebook
	mkdir -p build submission
	$(BIN)/jupyter nbconvert --to pdf hw2.ipynb --output-dir build --log-level ERROR \
	    --template-file tools/hw2_pdf.tex.j2 \
	    --TagRemovePreprocessor.enabled=True \
	    --TagRemovePreprocessor.remove_input_tags='{"commentary"}'
	latexmk -xelatex -interaction=nonstopmode -halt-on-error -quiet \
	    -outdir=build derivations.tex
	cp hw2.ipynb build/hw2.pdf build/derivations.pdf submission/
	@echo "submission/: hw2.ipynb hw2.pdf derivations.pdf"

## test: build everything, then run the test suite
test: pdf
	$(BIN)/python -m pytest tests -ra

## notebook: execute hw2.ipynb top to bottom in a fresh kernel, outputs stored in place
notebook: setup
	$(BIN)/python tools/notebook.py execute hw2.ipynb

## benchmark: performance figures of Problems 2 and 3 (not part of the tests)
benchmark: setup
	$(BIN)/python tools/benchmark.py

setup: $(STAMP) system-deps

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

system-deps:
	@tools/ensure_system_deps.sh

clean:
	rm -rf build submission .pytest_cache
