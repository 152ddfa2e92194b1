#!/usr/bin/env bash
# Build our own pjsua2 (pjproject's Python binding) and install it into a venv.
#
#   pjsua2-build/build.sh VENV_PYTHON
#
# Sources: Debian ships pjproject inside the `asterisk` source package of
# unstable ("sid") as the component tarball *.orig-Xpjproject.tar.xz.  We
# fetch it with `apt-get source --download-only` through a private apt
# configuration made from the mirror this machine already uses (the system's
# apt sources are never touched); apt checks the file against the signed
# Sources index.  Downloads and built wheels are cached under $PBX_CACHE
# (default ~/.cache/pbx), keyed by (source hash, config, Python, arch), so a
# second run installs the cached wheel in seconds and never needs the mirror.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
PY=${1:?usage: build.sh VENV_PYTHON}
# Absolute, but not resolved: a venv's python is a symlink to the base one.
case "$PY" in /*) ;; *) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")" ;; esac
CACHE=${PBX_CACHE:-$HOME/.cache/pbx}
SRC_CACHE=$CACHE/pjproject-src
WHEEL_CACHE=$CACHE/pjsua2-wheels
JOBS=${JOBS:-$(nproc)}

# The tested source (TESTED_*) and the cache key, shared with image/pjsua2-arm64.sh.
# shellcheck source=key.sh
. "$here/key.sh"

log() { printf 'pjsua2: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

mkdir -p "$SRC_CACHE" "$WHEEL_CACHE"

# --- 1. the source tarball ---------------------------------------------------
mirror_uri() {
  # The first Debian archive URI of the machine's own apt config (deb822 or
  # one-line format), skipping the security archive.
  {
    grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{for (i=2;i<=NF;i++) print $i}'
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
      | sed -E 's/\[[^]]*\]//' | awk '{print $2}'
  } | grep -E '/debian/?$' | grep -v -- '-security' | head -n1
}

fetch_tarball() {
  # Prints the path of a verified pjproject tarball in the cache.
  if [ -f "$SRC_CACHE/$TESTED_TARBALL" ] \
     && echo "$TESTED_SHA256  $SRC_CACHE/$TESTED_TARBALL" | sha256sum -c --status; then
    echo "$SRC_CACHE/$TESTED_TARBALL"; return
  fi
  local mirror tmp O
  mirror=$(mirror_uri || true)
  if [ -z "$mirror" ]; then
    local cached; cached=$(ls -t "$SRC_CACHE"/*orig-Xpjproject.tar.xz 2>/dev/null | head -n1 || true)
    [ -n "$cached" ] || die "no Debian mirror in the apt configuration and no cached pjproject source"
    log "no Debian mirror found; using cached $(basename "$cached")"
    echo "$cached"; return
  fi
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' RETURN
  mkdir -p "$tmp/lists/partial" "$tmp/parts" "$tmp/dl"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  echo "deb-src [signed-by=$keyring] $mirror sid main" >"$tmp/sources.list"
  O=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o "Dir::Etc::SourceParts=$tmp/parts"
     -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache"
     -o "Acquire::Check-Valid-Until=false" -o "APT::Sandbox::User=root")
  log "reading the sid source index from the machine's mirror"
  apt-get "${O[@]}" -qq update >&2 || die "apt-get update of the private sid source list failed"
  local want=asterisk
  if apt-cache "${O[@]}" showsrc asterisk 2>/dev/null | grep -qxF "Version: $TESTED_VERSION"; then
    want="asterisk=$TESTED_VERSION"
  else
    log "WARNING: the tested asterisk source $TESTED_VERSION is gone from sid;"
    log "WARNING: falling back to the current one (untested pjproject version)"
  fi
  # Only the pjproject component is needed: ask apt for the URIs and hashes
  # from the signed index, then let apt fetch the whole source (it verifies
  # every file) and keep only that component.
  (cd "$tmp/dl" && apt-get "${O[@]}" -qq source --download-only "$want" >&2) \
    || die "apt-get source --download-only $want failed"
  local tarball; tarball=$(ls "$tmp"/dl/*orig-Xpjproject.tar.xz 2>/dev/null | head -n1 || true)
  [ -n "$tarball" ] || die "the asterisk source has no orig-Xpjproject component"
  if [ "$(basename "$tarball")" = "$TESTED_TARBALL" ]; then
    echo "$TESTED_SHA256  $tarball" | sha256sum -c --status \
      || die "$TESTED_TARBALL does not match the tested SHA-256"
  fi
  cp "$tarball" "$SRC_CACHE/"
  echo "$SRC_CACHE/$(basename "$tarball")"
}

# --- 2. the cache key ----------------------------------------------------------
tarball=$(fetch_tarball)
py_tag=$("$PY" -c 'import sys; print(sys.implementation.cache_tag)')
arch=$(uname -m)
key="$(pjsua2_key_prefix "$tarball")-$py_tag-$arch"
wheel_dir=$WHEEL_CACHE/$key

install_wheel() {
  "$PY" -m pip install -q --no-index --force-reinstall --no-deps "$wheel_dir"/pjsua2-*.whl
  # What `pbx doctor` reports: where the source came from and the limits we set.
  "$PY" - "$tarball" "$key" "$here/config_site.h" <<'EOF'
import json, re, sys, pathlib, pjsua2
tarball, key, config = sys.argv[1:4]
limits = dict(re.findall(r"^#define[ \t]+(\w+)[ \t]+(\S[^\n]*?)[ \t]*$", open(config).read(), re.M))
info = {"source": pathlib.Path(tarball).name, "cache_key": key, "limits": limits}
pathlib.Path(pjsua2.__file__).with_name("pjsua2_build.json").write_text(json.dumps(info, indent=1))
EOF
  "$PY" - <<'EOF'
import pjsua2 as pj
ep = pj.Endpoint()
print("pjsua2: installed", ep.libVersion().full, "(our build)")
EOF
}

if ls "$wheel_dir"/pjsua2-*.whl >/dev/null 2>&1; then
  log "using cached wheel $key"
  install_wheel
  exit 0
fi

# --- 3. build ------------------------------------------------------------------
for tool in swig make g++ pkg-config; do
  command -v "$tool" >/dev/null || die "$tool is missing (make deps installs it)"
done
build=$(mktemp -d "${TMPDIR:-/tmp}/pjsua2-build.XXXXXX")
trap 'rm -rf "$build"' EXIT
log "building pjproject from $(basename "$tarball") in $build (key $key)"
tar -xJf "$tarball" -C "$build"
srcdir=$(find "$build" -mindepth 1 -maxdepth 1 -type d | head -n1)
cd "$srcdir"
cp "$here/config_site.h" pjlib/include/pj/config_site.h

# Debian removed the BDSound sources but the audiodev makefile still lists
# the object; an empty translation unit satisfies it (the device is off).
[ -f pjmedia/src/pjmedia-audiodev/bdimad_dev.c ] || : >pjmedia/src/pjmedia-audiodev/bdimad_dev.c

# -fPIC because the static libs end up inside the Python extension module.
export CFLAGS="-O2 -g0 -fPIC -DNDEBUG -DPJ_HAS_IPV6=1"
export CXXFLAGS="$CFLAGS"
# shellcheck disable=SC2046  # one flag per word, comments stripped
./configure -q $(sed 's/#.*//' "$here/configure.flags") >&2
make -s dep >/dev/null 2>&1 || true
make -s -j"$JOBS" lib >&2 2>"$build/make.log" || { tail -40 "$build/make.log" >&2; die "pjproject build failed"; }

cd pjsip-apps/src/swig/python
swig -I../../../../pjlib/include -I../../../../pjlib-util/include \
     -I../../../../pjmedia/include -I../../../../pjsip/include \
     -I../../../../pjnath/include -c++ -w312 -threads \
     -python -o pjsua2_wrap.cpp ../pjsua2.i
"$PY" -m pip install -q setuptools wheel
mkdir -p "$wheel_dir.tmp"
"$PY" -m pip wheel -q --no-build-isolation --no-deps -w "$wheel_dir.tmp" . >&2 \
  || die "building the SWIG wheel failed"
rm -rf "$wheel_dir"; mv "$wheel_dir.tmp" "$wheel_dir"
log "cached wheel $key"
install_wheel
