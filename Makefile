# traderseg — set-up contract: `make demo` and `make test` work from a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo-out

.PHONY: venv demo test browser system-packages lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,spark]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m traderseg.demo --out $(DEMO_DIR)

# System packages the tests use: Debian's Chromium for the browser tests (Playwright drives it,
# no browser download) and redis-server for the stream tests (each test starts its own server
# on 127.0.0.1). Installed when missing and apt-get can (one `apt-get update` for both).
SYSTEM_PACKAGES_MISSING = $(strip \
  $(if $(or $(shell command -v chromium 2>/dev/null),$(shell command -v chromium-browser 2>/dev/null),$(TRADERSEG_CHROMIUM)),,chromium) \
  $(if $(or $(shell command -v redis-server 2>/dev/null),$(TRADERSEG_REDIS_SERVER)),,redis-server))

system-packages:
	@if [ -n "$(SYSTEM_PACKAGES_MISSING)" ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing from the system's packages: $(SYSTEM_PACKAGES_MISSING)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      $(SYSTEM_PACKAGES_MISSING) >/dev/null; \
	  else \
	    echo "missing $(SYSTEM_PACKAGES_MISSING) and no root apt-get: the tests that need them are skipped"; \
	  fi; \
	fi

browser: system-packages

test: $(STAMP) system-packages
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
