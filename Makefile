# Two entry points (see README): `make demo` and `make test`. Both set everything up themselves.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FONT_STAMP := /usr/share/fonts/truetype/lxgw-wenkai
FONT_PACKAGES := fonts-arphic-ukai fonts-arphic-uming fonts-arphic-gkai00mp fonts-arphic-gbsn00lp \
	fonts-cns11643-kai fonts-lxgw-wenkai fonts-noto-cjk fonts-wqy-zenhei fonts-droid-fallback \
	fonts-hanazono fonts-smiley-sans fonts-aoyagi-kouzan-t fonts-seto fontconfig

.PHONY: setup fonts demo test lint format bench

setup: fonts $(STAMP)

# Debian CJK font packages: the corpus' writers. Needs root (or sudo).
fonts:
	@if ! dpkg -s $(FONT_PACKAGES) >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(FONT_PACKAGES); \
	fi

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

demo: setup
	$(BIN)/restoreae demo --out demo-output

test: setup
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/python -m pytest -q tests

lint: setup
	$(BIN)/ruff check src tests benchmarks scripts

format: setup
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

bench: setup
	$(BIN)/python benchmarks/run_all.py
