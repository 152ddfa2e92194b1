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
# for the mail tests' TLS; gnupg, gpgv and apt-utils: signed update bundles made and checked).
APT_BUILD := build-essential pkg-config swig python3-dev python3-venv xz-utils \
	debian-archive-keyring dpkg-dev libssl-dev libsrtp2-dev libopus-dev libspeex-dev \
	libspeexdsp-dev libgsm1-dev libsystemd-dev espeak-ng
APT_TEST := sip-tester baresip sipvicious sox systemd nftables lame openssl chromium \
	gnupg gpgv apt-utils
APT_PACKAGES := $(APT_BUILD) $(APT_TEST)
# Building the images and the .deb, and booting the amd64 image in tests (`make image`, and
# `make test` through the cached test image): mmdebstrap, partitions without loop devices
# (mkfs.ext4 -d, mkfs.vfat + mtools, sfdisk), arm64 under qemu-user, qemu + OVMF, apt-ftparchive
# and gpg for the signed repository; for arm64 the cross toolchain (our pjsua2) and
# qemu-system-arm (the arm64 boot test boots the kernel directly: no firmware package).
APT_IMAGE := mmdebstrap e2fsprogs dosfstools mtools fdisk qemu-system-x86 ovmf qemu-utils \
	qemu-user-static binfmt-support arch-test apt-utils gnupg debian-archive-keyring \
	crossbuild-essential-arm64 qemu-system-arm

# The built-in voice prompts (8 kHz WAV per language and key), spoken by espeak-ng.
PROMPTS_DIR := share/prompts

.PHONY: all deps venv pjsua2 prompts run test test-fast lint bench clean distclean \
	deps-image deb update-bundle image image-amd64 image-arm64 pjsua2-arm64 image-test-cache test-image \
	test-image-arm64

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
$(STAMPS)/pjsua2: $(STAMPS)/venv pjsua2-build/build.sh pjsua2-build/key.sh pjsua2-build/config_site.h pjsua2-build/configure.flags
	@bash pjsua2-build/build.sh $(PY)
	@touch $@

# The script also compares a hash of the catalogue, itself and espeak-ng's version with the
# one in the stamp, so a touched file that changed nothing does not respeak every prompt.
prompts: $(PROMPTS_DIR)/.stamp
$(PROMPTS_DIR)/.stamp: $(STAMPS)/venv tools/gen_prompts.py $(wildcard appliance/prompts/*.py)
	@$(PY) tools/gen_prompts.py $(PROMPTS_DIR)

run: pjsua2 prompts
	$(VENV)/bin/pbx dev

# The whole suite, the image booted in qemu included (tests/image, marker `image`, which a
# bare `pytest` leaves out): the amd64 image is built first, once per set of inputs (cached).
# The -m here replaces pyproject's (which leaves out both image markers). The arm64 boot
# (marker arm64_image) needs the arm64 image, about 20 minutes to build: test-image-arm64.
test: pjsua2 prompts image-test-cache
	$(PY) -m pytest -q -m 'not arm64_image'

# Only the amd64 image tests (7-9 minutes under emulation with a cached image).
test-image: pjsua2 prompts image-test-cache
	$(PY) -m pytest -q -m image tests/image

# The arm64 image booted in qemu-system-aarch64 (emulated Cortex-A72; tests/image/test_arm64_boot.py):
# builds build/image/pbx-arm64.img first (make image-arm64), then boots it.
test-image-arm64: image-arm64
	$(PY) -m pytest -q -m arm64_image tests/image/test_arm64_boot.py

# Everything but the 100-leg capacity test.
test-fast: pjsua2 prompts
	$(PY) -m pytest -q -m 'not slow and not image and not arm64_image'

lint: venv
	$(VENV)/bin/ruff check appliance hw webui tests bench image
	$(VENV)/bin/mypy

bench: pjsua2
	$(PY) bench/engine_capacity.py

# --- the image (README: The image) -------------------------------------------------------
IMAGE_OUT := build/image
DEB_OUT := build/deb

deps-image: $(STAMPS)/deps-image
$(STAMPS)/deps-image: Makefile
	@bash tools/apt-ensure.sh $(APT_IMAGE)
	@mkdir -p $(STAMPS) && touch $@

# Our application as office-pbx_<version>_<arch>.deb in build/deb (the path is printed last).
deb: pjsua2 prompts
	@bash image/build-deb.sh $(DEB_OUT) amd64 | tail -n1

# The same package as an update bundle to upload in the web UI (System > Update):
# build/update/office-pbx_<version>_amd64.pbxupdate, signed with the vendor key.
UPDATE_OUT := build/update
update-bundle: deps-image pjsua2 prompts
	@deb=$$(bash image/build-deb.sh $(DEB_OUT) amd64 | tail -n1) && bash image/repo.sh key \
	  && bash image/repo.sh bundle $(UPDATE_OUT) $$deb | tail -n1

image: image-amd64 image-arm64

# Each image also refreshes the signed apt repository build/repo that boxes can follow.
image-amd64: deps-image pjsua2 prompts
	@deb=$$(bash image/build-deb.sh $(DEB_OUT) amd64 | tail -n1) && bash image/repo.sh key \
	  && bash image/repo.sh build build/repo $$deb \
	  && bash image/build-image.sh amd64 $$deb $(IMAGE_OUT)/pbx-amd64.img

# arm64 needs our pjsua2 built for aarch64: cross-compiled against an arm64 sysroot, then
# checked under qemu-user (a call on loopback); once, the wheel is cached like the host's.
# The host build comes first: it fetches the pjproject source both use.
pjsua2-arm64: deps deps-image pjsua2
	@bash image/pjsua2-arm64.sh

image-arm64: deps-image pjsua2-arm64 prompts venv
	@deb=$$(bash image/build-deb.sh $(DEB_OUT) arm64 | tail -n1) && bash image/repo.sh key \
	  && bash image/repo.sh build build/repo $$deb \
	  && bash image/build-image.sh arm64 $$deb $(IMAGE_OUT)/pbx-arm64.img

# The amd64 image tests/image boots, cached outside the tree by a hash of its inputs (built
# only when they change); tests/image finds it through the same script.
image-test-cache: deps-image pjsua2 prompts
	@bash image/test-image.sh

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache build *.egg-info

distclean: clean
	rm -rf $(VENV) $(PROMPTS_DIR)
