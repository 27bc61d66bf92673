# Two commands do everything (see README):
#   make run    install pclab in .venv and run the main job (μPC ResNet on MNIST)
#   make test   install what the tests need and run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test install bench clean-venv

$(BIN)/python:
	@$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || { \
	  echo "python3-venv is missing; installing it with apt-get"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q python3-venv; \
	  else sudo apt-get update -q && sudo apt-get install -y -q python3-venv; fi; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(RUN_STAMP): requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

$(TEST_STAMP): requirements-test.txt $(RUN_STAMP)
	$(BIN)/python -m pip install -q -r requirements-test.txt
	touch $@

install: $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/pclab train

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist worksteal --durations=15

bench: $(RUN_STAMP)
	$(BIN)/pclab bench --json

clean-venv:
	rm -rf $(VENV)
