# The two commands of the README, and the steps behind them. Everything runs from ./.venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint typecheck check bench clean messages

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# A real job on the built-in local provider: progress in the terminal, a 16:9 grid and four tiles in ./out.
demo: setup
	$(BIN)/imagine-bot imagine "a lighthouse at dusk --ar 16:9" --out out

# Most tests wait on loopback servers and subprocesses rather than compute: 4 workers fit 2 cores.
test: setup
	$(BIN)/pytest -q -n 4

lint: setup
	$(BIN)/ruff check bot providers tests bench

typecheck: setup
	$(BIN)/mypy bot providers

check: lint typecheck test

# The message catalogues (bot/locales) brought in step with the code: new messages arrive untranslated.
messages: setup
	$(BIN)/python -m bot.i18n_catalogues

bench: setup
	$(BIN)/python bench/core.py
	$(BIN)/python bench/providers.py
	$(BIN)/python bench/telegram.py
	$(BIN)/python bench/discord.py
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/crash.py
	$(BIN)/python bench/web.py

clean:
	rm -rf $(VENV) out build *.egg-info
