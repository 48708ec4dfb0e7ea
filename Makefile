# Two commands do everything on a fresh machine: `make demo` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export TILLSYNC_CONFIG ?= config/demo.toml

TEST_PORT := 19092
TEST_DATA := var/test-kafka

.PHONY: setup demo test check broker-start broker-stop bench clean

$(STAMP): pyproject.toml simulators/pyproject.toml scripts/bootstrap
	bash scripts/bootstrap
	@touch $(STAMP)

setup: $(STAMP)

## demo: the built-in store network on the simulators, through a real worker
demo: setup
	$(BIN)/tillsync broker start
	$(BIN)/tillsync demo

## test: unit, contract and end-to-end tests on a real broker started for the run
test: setup
	$(BIN)/tillsync broker start --port $(TEST_PORT) --data-dir $(TEST_DATA) --wipe
	TILLSYNC_TEST_BOOTSTRAP=127.0.0.1:$(TEST_PORT) $(BIN)/pytest; rc=$$?; \
	  $(BIN)/tillsync broker stop --data-dir $(TEST_DATA); exit $$rc

## check: formatting, lint and types
check: setup
	bash scripts/check

broker-start: setup
	$(BIN)/tillsync broker start
broker-stop:
	$(BIN)/tillsync broker stop

bench: setup
	$(BIN)/tillsync broker start
	$(BIN)/python -m bench

clean:
	-$(BIN)/tillsync broker stop
	rm -rf var
