# The two commands a user needs: `make run` serves the site, `make test` checks it.
# Both set up the virtual environment first, from the pins in pyproject.toml.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

# PostgreSQL server for `make test-postgres-redis` (trust auth); each run makes a
# fresh database and drops it afterwards.
PG_URL ?= postgres://postgres@127.0.0.1:5432

.PHONY: run test test-postgres-redis install install-test lint format chromium nginx caddy clean
.PHONY: messages makemessages gettext
.PHONY: backup restore superuser

$(VENV)/.installed-run: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed-run
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed-run
install-test: $(VENV)/.installed-test

# The node tools the tests use (axe-core for the accessibility audit), exactly as
# package-lock.json pins them; installed again only when the lock file changes.
node_modules: node_modules/.package-lock.json
node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund
	touch $@

## Serve the whole site on http://$(HOST):$(PORT) (DEBUG on unless set).
run: install messages
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput
	@# At a terminal the server runs as a foreground job of its own (job control, set -m):
	@# Ctrl+C then reaches the server alone, which stops cleanly with status 0, and not
	@# make, which would report an "Interrupt" that looks like a failure.
	DEBUG=$${DEBUG:-1} HOST=$(HOST) PORT=$(PORT) bash -c 'test -t 0 && set -m; $(PY) -m chatsite.server; exit $$?'

## Create an administrator account (asks for a username and password; DEBUG on unless set).
superuser: install
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(PY) manage.py createsuperuser

## Back up the database of DATABASE_URL and the uploaded files into backups/
## (chat-<UTC time>.dump or .sqlite3, and chat-<UTC time>-media.tar).
backup: install
	DEBUG=$${DEBUG:-1} $(PY) manage.py backup --output-dir backups

## Replace the database and put the files back from a backup (asks first; stop the
## site before): make restore FILE=backups/chat-<UTC time>.dump
restore: install
	@test -n "$(FILE)" || { echo "usage: make restore FILE=backups/chat-<UTC time>.dump" >&2; exit 2; }
	DEBUG=$${DEBUG:-1} $(PY) manage.py restore "$(FILE)"

## Lint, then run the whole suite (browser tests included).
test: install-test messages node_modules chromium nginx caddy
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest
	node --test tests/js/

## The whole suite again in Redis mode (a private redis-server per session) on
## PostgreSQL (a database created for this run and dropped after it).
test-postgres-redis: install-test messages node_modules chromium nginx caddy
	CHAT_TEST_REDIS=1 DATABASE_URL=$(PG_URL)/chat_run_$$$$ $(PY) -m pytest

## Benchmark the site against a naive Channels consumer and a raw websockets server
## (under 10 minutes; results in bench/results/, method in docs/performance.md).
.PHONY: bench
bench: install-test
	BENCH_PG_URL=$(PG_URL) $(PY) -m bench.run

## The reconnect storm (10,000 clients dropped by a restart) and the room run of the
## site as one and as two processes on one Redis and database (docs/scaling.md).
.PHONY: bench-scale
bench-scale: install-test
	BENCH_PG_URL=$(PG_URL) $(PY) -m bench.run --only site --only site-2p --scenarios room,storm

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format:
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

## Compile the translations (locale/*/LC_MESSAGES/*.po) into the .mo files Django
## reads, next to them, each again only when its .po changed; the .mo files are built,
## never committed (docs/i18n.md). msgfmt --check-format is what compilemessages runs.
MO_FILES := $(patsubst %.po,%.mo,$(wildcard locale/*/LC_MESSAGES/*.po))
messages: $(MO_FILES)
locale/%.mo: locale/%.po | gettext
	msgfmt --check-format -o $@ $<

## After adding or changing a text: collect the texts into the .po catalogues, then
## translate the new entries (docs/i18n.md); tests/test_translations.py checks both.
makemessages: install gettext
	DEBUG=$${DEBUG:-1} $(PY) manage.py makemessages -l ru --no-obsolete --ignore=.venv --ignore=node_modules --ignore=tests --ignore=bench --ignore=docs --ignore=staticfiles
	DEBUG=$${DEBUG:-1} $(PY) manage.py makemessages -d djangojs -l ru --no-obsolete --ignore=.venv --ignore=node_modules --ignore=tests --ignore=bench --ignore=docs --ignore=staticfiles

## Compiling and collecting translations needs GNU gettext (msgfmt, xgettext);
## install it when we may.
gettext:
	@command -v msgfmt >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing GNU gettext for the translations..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gettext >/dev/null; \
	  else \
	    echo "The translations need GNU gettext: run 'sudo apt-get install gettext'." >&2; \
	    exit 1; \
	  fi; }

## The browser tests drive Debian's chromium; install it when we may.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's chromium for the browser tests..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "The browser tests need Debian's chromium: run 'sudo apt-get install chromium'." >&2; \
	    exit 1; \
	  fi; }

## The deployment test (tests/test_deploy.py) runs Debian's nginx as a process of its
## own; install it when we may. Where the package starts a system nginx on port 80,
## stop and disable it: the test never uses it, and it would squat on the port.
nginx:
	@test -x /usr/sbin/nginx || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's nginx for the deployment test..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; \
	    if [ -d /run/systemd/system ]; then \
	      systemctl disable --now nginx >/dev/null 2>&1 || true; \
	    elif [ -s /run/nginx.pid ]; then \
	      /usr/sbin/nginx -s quit || true; \
	    fi; \
	  else \
	    echo "The deployment test needs Debian's nginx: run 'sudo apt-get install nginx'." >&2; \
	    exit 1; \
	  fi; }

## The HTTPS deployment test runs Debian's caddy in front of that nginx; install it
## when we may, and stop and disable the system caddy the package may start (it would
## take ports 80 and 443, which the test never uses).
caddy:
	@test -x /usr/bin/caddy || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's caddy for the deployment test..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq caddy >/dev/null; \
	    if [ -d /run/systemd/system ]; then \
	      systemctl disable --now caddy >/dev/null 2>&1 || true; \
	    fi; \
	  else \
	    echo "The deployment test needs Debian's caddy: run 'sudo apt-get install caddy'." >&2; \
	    exit 1; \
	  fi; }

## Regenerate the README's screenshots (docs/screenshots/*.png): starts the site on a
## throwaway database and photographs each situation in Debian's chromium.
.PHONY: screenshots
screenshots: install-test chromium
	$(PY) docs/screenshots.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache staticfiles node_modules
