# ratewindow: make demo | make test | make bench | make lint
# Needs only Python >= 3.10 and make: everything else goes into .venv (stdlib venv + pip).
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml requirements-dev.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[redis]' -r requirements-dev.txt
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m ratewindow demo

lint: $(STAMP)
	$(PY) -m ruff check ratewindow tests benchmarks
	$(PY) -m mypy --strict ratewindow

test: lint
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
