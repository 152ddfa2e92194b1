# Office PBX appliance. `make run` and `make test` set everything up first:
# Debian packages, the venv, and our own pjsua2 build (cached after the first).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := $(VENV)/.stamps

# Debian packages the project needs: building pjsua2 and the voice prompts (espeak-ng), and
# real peers for tests (nftables: the edge's kernel bans, tested inside a network namespace;
# lame: an MP3 encoder, to test the import of MP3 prompts; openssl: throwaway certificates
# for the mail tests' TLS).
APT_BUILD := build-essential pkg-config swig python3-dev python3-venv xz-utils \
	debian-archive-keyring dpkg-dev libssl-dev libsrtp2-dev libopus-dev libspeex-dev \
	libspeexdsp-dev libgsm1-dev libsystemd-dev espeak-ng
APT_TEST := sip-tester baresip sipvicious sox systemd nftables lame openssl chromium
APT_PACKAGES := $(APT_BUILD) $(APT_TEST)

# The built-in voice prompts (8 kHz WAV per language and key), spoken by espeak-ng.
PROMPTS_DIR := share/prompts

.PHONY: all deps venv pjsua2 prompts run test test-fast lint bench clean distclean

all: test

deps: $(STAMPS)/deps
$(STAMPS)/deps: Makefile
	@bash tools/apt-ensure.sh $(APT_PACKAGES)
	@mkdir -p $(STAMPS) && touch $@

venv: $(STAMPS)/venv
$(STAMPS)/venv: pyproject.toml $(STAMPS)/deps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip setuptools wheel
	@$(PY) -m pip install -q -e '.[dev,systemd]'
	@mkdir -p $(STAMPS) && touch $@

# Our pjsua2: the script checks its cache, so this is quick after the first build.
pjsua2: $(STAMPS)/pjsua2
$(STAMPS)/pjsua2: $(STAMPS)/venv pjsua2-build/build.sh pjsua2-build/config_site.h pjsua2-build/configure.flags
	@bash pjsua2-build/build.sh $(PY)
	@touch $@

# The script also compares a hash of the catalogue, itself and espeak-ng's version with the
# one in the stamp, so a touched file that changed nothing does not respeak every prompt.
prompts: $(PROMPTS_DIR)/.stamp
$(PROMPTS_DIR)/.stamp: $(STAMPS)/venv tools/gen_prompts.py $(wildcard appliance/prompts/*.py)
	@$(PY) tools/gen_prompts.py $(PROMPTS_DIR)

run: pjsua2 prompts
	$(VENV)/bin/pbx dev

test: pjsua2 prompts
	$(PY) -m pytest -q

# Everything but the 100-leg capacity test.
test-fast: pjsua2 prompts
	$(PY) -m pytest -q -m 'not slow'

lint: venv
	$(VENV)/bin/ruff check appliance hw webui tests bench
	$(VENV)/bin/mypy

bench: pjsua2
	$(PY) bench/engine_capacity.py

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache build *.egg-info

distclean: clean
	rm -rf $(VENV) $(PROMPTS_DIR)
