# Two commands matter: `make run` and `make test`. Both install what they need first.
VENV   := .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: install run test lint typecheck format bench soak clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

run: install
	$(BIN)/likeness serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy bot storage scheduler sandbox

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: install lint typecheck
	$(BIN)/pytest -n 3 --dist loadfile

bench: install
	$(PY) -m bench

soak: install
	LIKENESS_SOAK=1 $(BIN)/pytest tests -k "fault or race or crash or fuzz or properties" -p no:cacheprovider

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
