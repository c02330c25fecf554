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

BENCH    = .venv-bench
BENCH_PY = $(BENCH)/bin/python

$(BENCH)/.installed: pyproject.toml benchmarks/requirements.txt Makefile
	$(PYTHON) -m venv $(BENCH)
	$(BENCH_PY) -m pip install --quiet --upgrade pip
	$(BENCH_PY) -m pip install --quiet -e '.[redis,http]' -r benchmarks/requirements.txt
	touch $(BENCH)/.installed

bench: $(BENCH)/.installed
	$(BENCH_PY) benchmarks/run.py

clean:
	rm -rf $(VENV) $(BENCH) .mypy_cache .pytest_cache .ruff_cache .hypothesis
