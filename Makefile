# medfed: `make serve` and `make test` work on a fresh machine with Python 3.11, pip and make.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= data
DEMO_PERSONS ?= 3000

.PHONY: lock serve test bench lint fuzz mutate key-race faults demo clean-data install openssl-sm2 chromium screenshots promtool

# The exact versions in requirements.lock (every dependency and dev tool), then medfed itself.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e '.[dev]'
	touch $(STAMP)

# requirements.lock from pyproject.toml (dependencies and the dev extra), for every platform
# and Python >= 3.11; uv resolves it in a virtual environment of its own. Versions already in
# the lock are kept where they still fit (-c), so only what changed moves.
lock:
	test -x .venv-lock/bin/uv || ($(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install --quiet uv)
	.venv-lock/bin/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		-c requirements.lock --no-header --no-annotate -o requirements.lock.new
	(head -2 requirements.lock; cat requirements.lock.new) > requirements.lock.tmp
	mv requirements.lock.tmp requirements.lock && rm requirements.lock.new

# The federation router and composer (Hive Gateway, @theguild/federation-composition) for the
# router tests and `medfed supergraph`; reinstalled when the lockfile changes. Without npm the
# router tests skip and say why.
NODE_STAMP := node_modules/.package-lock.json
$(NODE_STAMP): package-lock.json
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --loglevel=error && touch $(NODE_STAMP); \
	else echo "npm not found: the router tests will be skipped"; fi

# OpenSSL with SM2 for the mandatory SM2 interoperability test (both directions). Debian 12's
# OpenSSL 3.0 has it; only where it is missing is the distribution's package installed.
openssl-sm2:
	@if openssl list -signature-algorithms 2>/dev/null | grep -q SM2; then :; \
	elif command -v apt-get >/dev/null; then \
		echo "installing OpenSSL with SM2 (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl; \
	else echo "OpenSSL with SM2 is missing and apt-get is not available"; exit 1; fi

# Chromium (and CJK fonts for the pages) from the distribution for the browser tests, driven by
# Playwright for Python; `playwright install` (a download) is never used. Installed only where
# missing; without apt-get the browser tests skip and say why.
chromium:
	@if [ -x /usr/bin/chromium ] && fc-list 2>/dev/null | grep -qi 'CJK'; then :; \
	elif command -v apt-get >/dev/null; then \
		echo "installing chromium and fonts-noto-cjk (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk; \
	else echo "chromium is missing and apt-get is not available: the browser tests will be skipped"; fi

# The README's pictures of the pages, taken by the browser tests (docs/img/).
screenshots: $(STAMP) $(NODE_STAMP) chromium
	MEDFED_SCREENSHOTS=1 $(BIN)/pytest -q tests/e2e/test_pages.py


# promtool checks ops/prometheus/alerts.yml (tests/ops); Debian ships it in `prometheus`.
# Without it the test skips and says why, and the structural checks still run.
promtool:
	@if command -v promtool >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
		echo "installing promtool (apt-get install prometheus)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null) \
		|| echo "promtool could not be installed: tests/ops will skip its check"; \
	else echo "promtool is missing and apt-get is not available: tests/ops will skip its check"; fi

install: $(STAMP) $(NODE_STAMP) openssl-sm2 promtool

$(DATA_DIR)/.demo-built: | $(STAMP)
	$(BIN)/medfed --data-dir $(DATA_DIR) demo build --persons $(DEMO_PERSONS)

demo: $(DATA_DIR)/.demo-built

serve: $(STAMP) $(DATA_DIR)/.demo-built
	$(BIN)/medfed --data-dir $(DATA_DIR) serve

# One worker per core, at most four (TEST_WORKERS=0 runs in one process); a test module stays
# in one worker, so its module-scoped fixtures are built once.
TEST_WORKERS ?= auto
test: $(STAMP) $(NODE_STAMP) openssl-sm2 chromium promtool lint
	$(BIN)/pytest -ra -n $(TEST_WORKERS) --maxprocesses=4 --dist loadscope

bench: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m bench

# Mutation testing of the security core (slow; docs/mutation.md). MODULES="a.py b.py" narrows it.
mutate: $(STAMP)
	$(BIN)/python tools/mutate.py

fuzz: $(STAMP)
	MEDFED_FUZZ_RANDOM=1 MEDFED_FUZZ_EXAMPLES=$${MEDFED_FUZZ_EXAMPLES:-2000} $(BIN)/pytest -ra -m fuzz

key-race: $(STAMP)
	MEDFED_KEY_RACE_ROUNDS=$${MEDFED_KEY_RACE_ROUNDS:-200} $(BIN)/pytest -ra tests/security/crypto/test_crypto_key_race.py

# Every fault case with more runs each (the quick ones also run in `make test`); prints the
# table case / runs / acknowledged / lost / unlogged / 5xx.
faults: $(STAMP)
	MEDFED_FAULTS=full $(BIN)/pytest -ra -m faults

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean-data:
	rm -rf $(DATA_DIR)
