# Two entry points (see README): `make demo` and `make test`. Both set everything up themselves.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FONT_STAMP := /usr/share/fonts/truetype/lxgw-wenkai
# The corpus' writers: every Debian CJK font package that draws a useful share of GB2312 level 1
# (docs/DATA.md lists the coverage per writer). fonts-kouzan-mouhitsu, fonts-aoyagi-soseki,
# fonts-klee, fonts-kiloji and fonts-cwtex-kai are reserved for an independent evaluation: never
# add them here.
FONT_PACKAGES := fonts-arphic-ukai fonts-arphic-uming fonts-arphic-gkai00mp fonts-arphic-gbsn00lp \
	fonts-arphic-bkai00mp fonts-arphic-bsmi00lp fonts-cns11643-kai fonts-cns11643-sung \
	fonts-lxgw-wenkai fonts-noto-cjk fonts-noto-cjk-extra fonts-wqy-zenhei fonts-wqy-microhei \
	fonts-droid-fallback fonts-hanazono fonts-smiley-sans fonts-aoyagi-kouzan-t fonts-seto \
	fonts-ipafont-gothic fonts-ipafont-mincho fonts-ipaexfont-gothic fonts-ipaexfont-mincho \
	fonts-ipamj-mincho fonts-takao-gothic fonts-vlgothic fonts-sawarabi-gothic \
	fonts-sawarabi-mincho fonts-motoya-l-cedar fonts-motoya-l-maruberi fonts-horai-umefont \
	fonts-umeplus fonts-yozvox-yozfont fonts-unfonts-core fonts-unfonts-extra fonts-baekmuk \
	fonts-cwtex-heib fonts-cwtex-ming fonts-cwtex-yen fonts-cwtex-fs fonts-mplus fonts-konatu \
	fontconfig

.PHONY: setup fonts demo test lint format bench quality

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
	$(BIN)/pip install -q -e ".[dev,ocr]"
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

# Prints figures only; each script's --write (where it has one) updates docs/PERFORMANCE.md.
bench: setup
	$(BIN)/python benchmarks/bench_damage.py
	$(BIN)/python benchmarks/bench_train.py --models unet_mobilenetv3_small,ae_mobilenetv3 --sizes 128,224
	$(BIN)/python benchmarks/bench_inference.py

# The quality table (docs/RESULTS.md): font held-out writers (data/corpus128) + ../shared/real-dev,
# seed and real damage, with / without reference, undamaged inputs, per damage op.
QUALITY_ARGS ?=
quality: setup
	$(BIN)/restoreae eval --suite --out reports/quality $(QUALITY_ARGS)
