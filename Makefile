# ECE 685D HW2.  `make pdf` builds the hand-in, `make test` builds and checks it.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# .venv is (re)built for the X.Y version of $(PYTHON)
PY_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
STAMP := $(VENV)/.requirements-$(PY_VERSION).stamp
# One build at a time in this folder: a make that holds build/.lock
LOCKED := $(PYTHON) tools/lock.py build/.lock $(MAKE) --no-print-directory
EXECUTED := build/hw2.executed
HAND_IN := submission/hw2.ipynb submission/hw2.pdf submission/derivations.pdf
JUPYTER_CONFIG := $(VENV)/etc/jupyter/jupyter_nbconvert_config.json

.PHONY: pdf test e2e notebook setup system-deps benchmark clean lab python-check hand-in FORCE
.DELETE_ON_ERROR:

## pdf: execute hw2.ipynb in place, export hw2.pdf and derivations.pdf into submission/
##      (each step only when its inputs changed)
pdf: python-check
	@$(LOCKED) hand-in

hand-in: $(HAND_IN)
	@echo "submission/: hw2.ipynb hw2.pdf derivations.pdf"

# Runs hw2.ipynb unless its code cells (with outputs) and these files are as the last run left them
$(EXECUTED): FORCE | setup
	$(BIN)/python tools/run_notebook.py hw2.ipynb --stamp $@ \
	    requirements.txt tools/notebook.py tools/run_notebook.py data figures

# The export settings (template, hidden inputs) live in .venv's Jupyter
# config, written by tools/jupyter_config.py: JupyterLab's menu uses the same.
build/hw2.pdf: $(EXECUTED) hw2.ipynb tools/hw2_pdf.tex.j2 $(JUPYTER_CONFIG)
	$(BIN)/jupyter nbconvert --to pdf hw2.ipynb --output-dir build --log-level ERROR

build/derivations.pdf: derivations.tex | setup
	latexmk -xelatex -interaction=nonstopmode -halt-on-error -quiet \
	    -outdir=build derivations.tex

submission/hw2.ipynb: $(EXECUTED) hw2.ipynb
	@mkdir -p submission
	cp hw2.ipynb $@

submission/%.pdf: build/%.pdf
	@mkdir -p submission
	cp $< $@

## test: build everything, then run the test suite
test: pdf
	$(BIN)/python -m pytest tests -ra

## e2e: JupyterLab in chromium runs a copy of hw2.ipynb and exports it from its
##      File menu; that PDF must match build/hw2.pdf (chromium from apt if root)
e2e: pdf
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || { \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq chromium >/dev/null; }
	$(BIN)/python tools/e2e_export.py hw2.ipynb build/hw2.pdf

## notebook: execute hw2.ipynb top to bottom in a fresh kernel, outputs stored in place
##           (unless unchanged since its last run)
notebook: python-check
	@$(LOCKED) $(EXECUTED)

## lab: JupyterLab on hw2.ipynb, run from .venv (root needs --allow-root)
lab: setup
	$(BIN)/jupyter lab hw2.ipynb $$([ "$$(id -u)" = 0 ] && echo --allow-root)

## benchmark: performance figures of Problems 2 and 3 (not part of the tests)
benchmark: setup
	$(BIN)/python tools/benchmark.py

setup: python-check $(STAMP) system-deps $(JUPYTER_CONFIG)

# jupyter_nbconvert_config.json and jupyter_server_config.json (JupyterLab's export)
$(JUPYTER_CONFIG): tools/jupyter_config.py $(STAMP)
	$(BIN)/python tools/jupyter_config.py >/dev/null

# The pins need Python >= 3.11 (numpy 2.4 has no wheels for older ones): stop before any venv
python-check:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	    echo "Python >= 3.11 needed; $(PYTHON) is $(or $(PY_VERSION),not found)." >&2; \
	    echo "Pass another one, e.g.: make pdf PYTHON=python3.12" >&2; exit 1; }

$(STAMP): requirements.txt | python-check
	tools/setup_venv.sh $(PYTHON) $(VENV)
	touch $@

system-deps:
	@tools/ensure_system_deps.sh

clean:
	rm -rf build submission .pytest_cache
