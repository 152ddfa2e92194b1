#!/usr/bin/env bash
# Our pjsua2 for arm64 (the Raspberry Pi image), built once and cached like the host's.
#
# pjsua2-build/build.sh runs unchanged inside a minimal arm64 Debian 12 root file system
# (mmdebstrap) under qemu-user through binfmt_misc, with the source tarball the host already
# fetched; the wheel lands in $PBX_CACHE/pjsua2-wheels/<key>-aarch64 where
# image/build-deb.sh finds it. Emulated compilation is slow (expect 30-60 minutes on two
# cores); later runs find the cached wheel and return at once.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
CACHE=${PBX_CACHE:-$HOME/.cache/pbx}
log() { printf 'pjsua2-arm64: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (mmdebstrap's root mode)"

if ls "$CACHE"/pjsua2-wheels/*-cpython-311-aarch64/pjsua2-*.whl >/dev/null 2>&1; then
  log "cached: $(ls -d "$CACHE"/pjsua2-wheels/*-cpython-311-aarch64 | head -n1)"
  exit 0
fi
# qemu-user for arm64 binaries: register the binfmt handler if the kernel has none yet.
[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
arch-test arm64 >/dev/null || die "arm64 binaries do not run here (qemu-user-static and binfmt_misc)"
ls "$CACHE"/pjproject-src/*orig-Xpjproject.tar.xz >/dev/null 2>&1 \
  || die "no pjproject source in $CACHE/pjproject-src (make pjsua2 fetches it)"

mirror_uri() {
  {
    grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{for (i=2;i<=NF;i++) print $i}'
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
      | sed -E 's/\[[^]]*\]//' | awk '{print $2}'
  } | grep -E '/debian/?$' | grep -v -- '-security' | head -n1
}
MIRROR=${IMAGE_MIRROR:-$(mirror_uri || true)}
[ -n "$MIRROR" ] || die "no Debian mirror in the apt configuration; set IMAGE_MIRROR"

work=$(mktemp -d "${TMPDIR:-/var/tmp}/pjsua2-arm64.XXXXXX")
cleanup() {
  findmnt -rn -o TARGET | grep -F "$work/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
mkdir -p "$work/out"
start=$(date +%s)
# Debian's setuptools and wheel (system site-packages of the venv): pip needs no index.
mmdebstrap --variant=minbase --architectures=arm64 \
  --include=build-essential,pkg-config,swig,python3-dev,python3-venv,python3-setuptools,python3-wheel,python3-pip,xz-utils,libssl-dev,libsrtp2-dev,libopus-dev,libspeex-dev,libspeexdsp-dev,libgsm1-dev,libsystemd-dev \
  --customize-hook="mkdir -p \"\$1/src\" \"\$1/cache/pjproject-src\"" \
  --customize-hook="copy-in '$repo/pjsua2-build' /src" \
  --customize-hook="sync-in '$CACHE/pjproject-src' /cache/pjproject-src" \
  --customize-hook='chroot "$1" sh -c "python3 -m venv --system-site-packages /venv && PBX_CACHE=/cache JOBS=$(nproc) bash /src/pjsua2-build/build.sh /venv/bin/python"' \
  --customize-hook="sync-out /cache/pjsua2-wheels '$work/out'" \
  bookworm "$work/rootfs" "deb $MIRROR bookworm main" >&2
mkdir -p "$CACHE/pjsua2-wheels"
cp -r "$work"/out/*-aarch64 "$CACHE/pjsua2-wheels/"
log "built in $(( $(date +%s) - start )) s: $(ls -d "$work"/out/*-aarch64 | xargs -n1 basename)"
