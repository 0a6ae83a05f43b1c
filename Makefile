# `make demo`: set up .venv and reproduce the rainbow paper at smoke scale on the embedded MNIST digits.
# `make test`: set up .venv, lint, run the test suite.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	# torch/torchvision first, pinned: pip takes them from the local wheel store when one is configured
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/repro reproduce rainbow --scale smoke

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs reports
