# ratewindow: make demo | make test | make bench | make lint
# Needs only Python >= 3.10 and make: everything else goes into .venv (stdlib venv + pip).
PYTHON ?= python3
VENV   ?= .venv
PY      = $(abspath $(VENV))/bin/python
STAMP   = $(VENV)/.installed
ADAPTERS = adapters/hubspot adapters/salesforce

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml requirements-dev.txt Makefile adapters/hubspot/pyproject.toml \
		adapters/salesforce/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[redis,http,httpx,prometheus,otel]' -e adapters/hubspot \
		-e 'adapters/salesforce[testing]' -r requirements-dev.txt
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m ratewindow demo hubspot

lint: $(STAMP)
	$(PY) -m ruff check ratewindow tests benchmarks $(ADAPTERS)
	$(PY) -m mypy --strict ratewindow
	for a in $(ADAPTERS); do (cd $$a && $(PY) -m mypy --strict) || exit 1; done

# One pytest run per test tree: each adapter keeps its own conftest and settings. The examples
# in the docstrings run too (--doctest-modules), so they stay true.
test: lint
	$(PY) -m pytest -q tests
	$(PY) -m pytest -q --doctest-modules ratewindow
	for a in $(ADAPTERS); do (cd $$a && $(PY) -m pytest -q tests \
		&& $(PY) -m pytest -q --doctest-modules ratewindow_$$(basename $$a)) || exit 1; done

BENCH    = .venv-bench
BENCH_PY = $(abspath $(BENCH))/bin/python

$(BENCH)/.installed: pyproject.toml benchmarks/requirements.txt Makefile
	$(PYTHON) -m venv $(BENCH)
	$(BENCH_PY) -m pip install --quiet --upgrade pip
	$(BENCH_PY) -m pip install --quiet -e '.[redis,http,httpx]' -e adapters/hubspot \
		-e 'adapters/salesforce[testing]' -r benchmarks/requirements.txt
	touch $(BENCH)/.installed

bench: $(BENCH)/.installed
	$(BENCH_PY) benchmarks/run.py

clean:
	rm -rf $(VENV) $(BENCH) .mypy_cache .pytest_cache .ruff_cache .hypothesis
