# ECE 685D HW2.  `make pdf` builds the hand-in, `make test` builds and checks it.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The notebook's name is named once, in tools/project.py
NOTEBOOK := $(shell $(PYTHON) tools/project.py NOTEBOOK 2>/dev/null)
NAME := $(basename $(NOTEBOOK))
# One build at a time in this folder: a make that holds build/.lock. SIGTERM
# to make alone (which passes it on to its recipe's process only) or Ctrl-C
# stops the whole build; then STATUS says what submission/ holds
LOCK := $(PYTHON) tools/lock.py build/.lock
LOCKED := $(LOCK) $(MAKE) --no-print-directory
EXECUTED := build/$(NAME).executed
# What a run of the notebook depends on (their digest is in $(EXECUTED))
RUN_INPUTS := requirements.txt tools/project.py tools/notebook.py \
    tools/run_notebook.py data figures
# After a failed or stopped build: say what submission/ holds
STATUS = $(PYTHON) tools/hand_in.py $(NOTEBOOK) --status
# What `make pdf` runs holding the lock
HAND_IN := $(MAKE) --no-print-directory hand-in

.PHONY: pdf test e2e notebook setup venv system-deps export-config benchmark \
    clean remove-build-products lab python-check hand-in FORCE
.DELETE_ON_ERROR:

## pdf: execute $(NOTEBOOK) in place, export it to PDF and put both into
##      submission/ together; compile derivations.tex to build/derivations.pdf
##      (each step only when its inputs changed)
pdf: python-check
	@$(LOCK) --on-failure '$(STATUS)' $(HAND_IN)

# The notebook and its PDF, read once, moved into submission/ as one unit
hand-in: $(EXECUTED) build/derivations.pdf
	@$(BIN)/python tools/hand_in.py $(NOTEBOOK) --stamp $(EXECUTED) $(RUN_INPUTS)

# Runs the notebook unless its code cells (with outputs) and RUN_INPUTS are as
# the last run left them
$(EXECUTED): FORCE | setup
	@$(BIN)/python tools/run_notebook.py $(NOTEBOOK) --stamp $@ $(RUN_INPUTS)

# Compiled unless build/derivations.pdf is, by content, the PDF of today's
# derivations.tex (their digests are in build/derivations.pdf.key)
build/derivations.pdf: FORCE | setup
	@$(PYTHON) tools/derivations.py

## test: build everything, then run the test suite
test: pdf
	$(BIN)/python -m pytest tests -ra --durations=10

## e2e: JupyterLab in chromium runs a copy of the notebook and exports it from
##      its File menu; that PDF must match build/$(NAME).pdf (chromium from apt if root)
e2e: pdf
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || { \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq chromium >/dev/null; }
	$(BIN)/python tools/e2e_export.py $(NOTEBOOK) build/$(NAME).pdf

## notebook: execute the notebook top to bottom in a fresh kernel, outputs
##           stored in place (unless unchanged since its last run)
notebook: python-check
	@$(LOCKED) $(EXECUTED)

## lab: JupyterLab on the notebook, run from .venv (root needs --allow-root)
lab: setup
	$(BIN)/jupyter lab $(NOTEBOOK) $$([ "$$(id -u)" = 0 ] && echo --allow-root)

## benchmark: performance figures of Problems 2 and 3 (not part of the tests)
benchmark: setup
	$(BIN)/python tools/benchmark.py

setup: python-check venv system-deps export-config

# Fast when .venv is up to date; rebuilt for another Python or another folder
venv: python-check
	@tools/setup_venv.sh $(PYTHON) $(VENV)

# jupyter_nbconvert_config.json and jupyter_server_config.json (JupyterLab's
# export), rewritten at every setup: the template path follows the folder
export-config: venv
	@$(BIN)/python tools/jupyter_config.py >/dev/null

# The pins need Python >= 3.11 (numpy 2.4 has no wheels for older ones): stop before any venv
python-check:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	    echo "Python >= 3.11 needed; $(PYTHON) is $$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo not found)." >&2; \
	    echo "Pass another one, e.g.: make pdf PYTHON=python3.12" >&2; exit 1; }

system-deps:
	@tools/ensure_system_deps.sh

## clean: remove every build product; waits for a build running in this folder
clean:
	@$(LOCK) $(MAKE) --no-print-directory remove-build-products

# build/.lock stays: a build waiting for it would run beside one that makes
# a new one
remove-build-products:
	find build -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +
	rm -rf submission .submission.new .submission.old .pytest_cache
