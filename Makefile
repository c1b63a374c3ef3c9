# Two commands: `make run` (demo on :8000 with a worker and the CATS sandbox) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
SANDBOX_PORT ?= 8001

.PHONY: run test lint format install install-demo install-dev migrate demo bench clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found). Set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

# Production needs only requirements.txt; the demo adds the CATS sandbox and honcho, and the
# tests (which run the sandbox too) add their tools on top of the demo's.
$(VENV)/.installed-demo: requirements.txt requirements-demo.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-demo.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed-demo
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-demo: $(VENV)/.installed-demo
install-dev: $(VENV)/.installed-dev

# Local demo: DEBUG on, sandbox CATS on loopback, a web server and a django-q2 cluster together.
run: export DEBUG ?= true
run: export CATS_API_URL ?= http://127.0.0.1:$(SANDBOX_PORT)/v3
# The CATS panel's candidate links open the sandbox's candidate page.
run: export CATS_CANDIDATE_URL ?= http://127.0.0.1:$(SANDBOX_PORT)/_sandbox/ui/{subdomain}/candidates/{candidate_id}
run: export WEB_PORT := $(PORT)
run: export SANDBOX_PORT := $(SANDBOX_PORT)
run: $(VENV)/.installed-demo
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo --base-url http://localhost:$(PORT)
	$(BIN)/honcho start -f Procfile.dev

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DJANGO_SETTINGS_MODULE=interseller.settings_test $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Every figure of the performance issue beside its target and floor, from one run (see
# bench/README.md; PostgreSQL and Redis on 127.0.0.1 when they run). BENCH_SCALE=small for a
# quick check of the harness, BENCH_ARGS=--strict to fail on a miss, BENCH_ARGS="--only live".
bench: $(VENV)/.installed-dev
	DEBUG=true $(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles
