# Klientadministrasjon: `make run` serves the demo, `make test` runs every check.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
HOST   ?= 127.0.0.1
FLASK  := $(BIN)/flask --app app
# The server, worker and setup commands that `make run` starts are the development mode (public SECRET_KEY allowed).
DEV_FLASK := APP_ENV=development $(FLASK)

.PHONY: run test install translations messages lint test-sqlite test-postgresql migrate clean

$(BIN)/flask: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/flask translations

translations: $(BIN)/flask
	$(BIN)/pybabel compile -d translations -f

migrate: install
	mkdir -p "$${INSTANCE_PATH:-instance}"
	$(DEV_FLASK) db upgrade

# E-mail is delivered by the outbox worker and background jobs run in the jobs worker, both beside the server; the
# trap stops them with the server (also on Ctrl-C).
run: migrate
	$(DEV_FLASK) seed-demo --if-empty
	$(DEV_FLASK) outbox worker & WORKER=$$!; $(DEV_FLASK) jobs worker & JOBS=$$!; \
	trap 'kill $$WORKER $$JOBS 2>/dev/null' EXIT INT TERM; $(DEV_FLASK) run --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check .

test-sqlite: install
	$(BIN)/python -m pytest -q

test-postgresql: install
	TEST_DATABASE=postgresql $(BIN)/python -m pytest -q

test: lint test-sqlite test-postgresql

clean:
	rm -rf $(VENV) instance *.egg-info .pytest_cache .ruff_cache

# Re-extract UI text after changing it; then translate the new entries in translations/no/. The Swedish catalogue
# (translations/sv/, client e-mails and link pages only) is kept by hand; tests/test_i18n.py says what it lacks.
messages: $(BIN)/flask
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k _gettext -k _ngettext:1,2 -o translations/messages.pot app.py cli.py admin_views forms services templates
	$(BIN)/pybabel update --no-fuzzy-matching -i translations/messages.pot -d translations -l no
