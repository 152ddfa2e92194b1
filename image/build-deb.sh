#!/usr/bin/env bash
# Build our application as a Debian package: office-pbx_<version>_<arch>.deb
#
#   image/build-deb.sh OUT_DIR [ARCH]        (ARCH: amd64 (default) or arm64)
#
# The package holds a venv under /opt/pbx/venv (our wheel, its dependencies and our pjsua2
# build), the systemd units, udev rules, the built-in prompts and the maintainer scripts of
# image/debian/. The venv sees the system's site-packages for python3-systemd (journald),
# which has no wheel. VERSION overrides the version (tests build a newer one).
# SOURCE_DATE_EPOCH (default: the last commit's time) stamps every file, and .pyc files
# are hash-checked, so two builds of one commit give the same bytes for amd64.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
OUT=${1:?usage: build-deb.sh OUT_DIR [ARCH]}
ARCH=${2:-amd64}
CACHE=${PBX_CACHE:-$HOME/.cache/pbx}
PY=/usr/bin/python3          # Debian 12's python3.11: the same interpreter the box runs
log() { printf 'deb: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

case "$ARCH" in
  amd64) uname_arch=x86_64; pip_platform="" ;;
  arm64) uname_arch=aarch64; pip_platform=manylinux2014_aarch64 ;;  # + linux_aarch64 below
  *) die "unknown arch $ARCH (amd64 or arm64)" ;;
esac
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct)}
pyver=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml" | head -n1)
# Commits since the start order the builds of one branch (apt needs a growing version).
VERSION=${VERSION:-$pyver+$(git -C "$repo" rev-list --count HEAD).g$(git -C "$repo" rev-parse --short=8 HEAD)}
py_tag=$($PY -c 'import sys; print(sys.implementation.cache_tag)')
# amd64: the build `make pjsua2` installed (its cache key is recorded next to it); arm64: the
# cached build from `make pjsua2-arm64`.
key=$("$repo/.venv/bin/python" -c 'import json,pathlib,pjsua2; print(json.loads(pathlib.Path(pjsua2.__file__).with_name("pjsua2_build.json").read_text())["cache_key"])' 2>/dev/null || true)
key=${key%-*}; key=${key:-*-$py_tag}
pjwheel=$(ls -t "$CACHE"/pjsua2-wheels/$key-"$uname_arch"/pjsua2-*.whl 2>/dev/null | head -n1 || true)
[ -n "$pjwheel" ] || die "no cached pjsua2 wheel for $py_tag/$uname_arch in $CACHE/pjsua2-wheels \
(amd64: make pjsua2; arm64: make pjsua2-arm64)"
[ -f "$repo/share/prompts/.stamp" ] || die "the built-in prompts are missing (make prompts)"

work=$(mktemp -d "${TMPDIR:-/tmp}/pbx-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
venv=/opt/pbx/venv
mkdir -p "$root/opt/pbx" "$work/wheels"

log "building office-pbx $VERSION ($ARCH)"
# Our own wheel first (pure Python), built from a clean copy of the tracked files.
git -C "$repo" archive HEAD | tar -x -C "$work" --one-top-level=src
# Uncommitted changes of a developer's tree are not packaged; say so.
git -C "$repo" diff --quiet HEAD -- appliance hw webui pyproject.toml \
  || log "WARNING: uncommitted changes in appliance/hw/webui are not in the package"
$PY -m pip wheel -q --no-deps --no-build-isolation -w "$work/wheels" "$work/src" >&2 2>/dev/null \
  || "$repo/.venv/bin/python" -m pip wheel -q --no-deps -w "$work/wheels" "$work/src" >&2

$PY -m venv --without-pip --system-site-packages "$root$venv"
site=$root$venv/lib/python3.11/site-packages
pipx=("$repo/.venv/bin/python" -m pip install -q --no-compile --target "$site")
if [ -z "$pip_platform" ]; then
  "${pipx[@]}" "$work"/wheels/office_pbx-*.whl "$pjwheel" >&2
else
  # Another architecture: binary wheels only, for Debian 12's CPython 3.11.
  # Debian 12 has glibc 2.36: manylinux_2_28 wheels fit (numpy's newest, soundfile's with its
  # own libsndfile), and pip does not widen an explicit platform by itself. linux_aarch64 is
  # our cross-built pjsua2's tag (image/pjsua2-arm64.sh): a wheel for this system only.
  "${pipx[@]}" --platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64 \
    --platform "$pip_platform" --platform linux_aarch64 --only-binary=:all: --python-version 3.11 \
    --implementation cp "$work"/wheels/office_pbx-*.whl "$pjwheel" >&2
fi
# pip --target leaves scripts with the build's interpreter: ours is the box's venv python.
rm -rf "$site/bin"
cat >"$root$venv/bin/pbx" <<PBX
#!$venv/bin/python3
import sys
from appliance.cli import main
sys.exit(main())
PBX
chmod 0755 "$root$venv/bin/pbx"
# pyvenv.cfg names the build's temporary path; the box's is /opt/pbx/venv.
sed -i "s|$root||g" "$root$venv/pyvenv.cfg"
# What `pbx doctor` reads about our pjsua2 build: the host's record, with the cache key of
# the wheel packaged (arm64's differs from the host's in its architecture only).
"$repo/.venv/bin/python" - "$repo/.venv" "$site" "$(basename "$(dirname "$pjwheel")")" <<'PYEOF'
import json, pathlib, sys
src = next(pathlib.Path(sys.argv[1]).glob("lib/python3*/site-packages/pjsua2_build.json"), None)
if src:
    info = json.loads(src.read_text())
    info["cache_key"] = sys.argv[3]
    (pathlib.Path(sys.argv[2]) / "pjsua2_build.json").write_text(json.dumps(info, indent=1))
PYEOF
# Where the build's wheels were (direct_url.json) and the build's paths in the activate
# scripts differ between builds: out, for the same bytes from the same commit.
find "$site" -name '*.dist-info' -exec rm -f {}/direct_url.json {}/INSTALLER \;
find "$site" -path '*.dist-info/RECORD' -exec sed -i -E '/(direct_url\.json|INSTALLER),/d' {} +
sed -i "s|$root||g" "$root$venv"/bin/activate*
$PY -m compileall -q -j0 --invalidation-mode unchecked-hash -s "$root" -p / "$site" >/dev/null || true
echo "$VERSION" >"$root/opt/pbx/VERSION"

install -D -m0644 "$repo"/image/systemd/pbx-engine.service "$root/lib/systemd/system/pbx-engine.service"
install -D -m0644 "$repo"/image/systemd/pbx-web.service "$root/lib/systemd/system/pbx-web.service"
install -D -m0644 "$repo"/image/systemd/pbx-firewall.service "$root/lib/systemd/system/pbx-firewall.service"
for unit in pbx-remote-access.path pbx-remote-access.service; do
  install -D -m0644 "$repo/image/systemd/$unit" "$root/lib/systemd/system/$unit"
done
# Updates uploaded in the web UI: the path unit starts the (root) installer on a request.
install -D -m0644 "$repo"/image/systemd/pbx-update.path "$root/lib/systemd/system/pbx-update.path"
install -D -m0644 "$repo"/image/systemd/pbx-update.service "$root/lib/systemd/system/pbx-update.service"
install -D -m0755 "$repo"/image/pbxfirewall.py "$root/usr/lib/pbx/pbxfirewall.py"
for rules in "$repo"/deploy/udev/*.rules; do
  install -D -m0644 "$rules" "$root/lib/udev/rules.d/$(basename "$rules")"
done
mkdir -p "$root/usr/share/pbx"
cp -r "$repo/share/prompts" "$root/usr/share/pbx/prompts"
rm -f "$root/usr/share/pbx/prompts/.stamp"
install -D -m0644 "$repo/README.md" "$root/usr/share/doc/office-pbx/README.md"
install -D -m0644 "$repo/COPYING" "$root/usr/share/doc/office-pbx/copyright"

# Shared libraries our pjsua2 links: their Debian packages become dependencies. The host's
# packages name them (the same libraries on both architectures); the cross toolchain's own
# copies (*-arm64-cross) are not what the box has.
so=$(find "$site" -name '_pjsua2*.so' | head -n1)
libdeps=$(objdump -p "$so" | awk '/NEEDED/ {print $2}' | while read -r lib; do
  p=$(dpkg -S "*/$lib" 2>/dev/null | grep -v -e '-dev' -e '-cross' | head -n1 | cut -d: -f1) || true
  [ -n "$p" ] && echo "$p"; done | sort -u | grep -v -E '^(libc6|libgcc-s1|libstdc\+\+6)$' | paste -sd, | sed 's/,/, /g')
mkdir -p "$root/DEBIAN"
# Installed-Size as dpkg-gencontrol counts it (KiB per file rounded up, 1 per directory or
# link): du's block counts depend on the build file system's history, not on the package.
size=$(find "$root" -path "$root/DEBIAN" -prune -o -printf '%y %s\n' \
  | awk '$1 == "f" {k += int(($2 + 1023) / 1024); next} {k += 1} END {print k}')
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$size/" \
    -e "s/@LIBDEPS@/${libdeps:+, $libdeps}/" "$here/debian/control" >"$root/DEBIAN/control"
for s in preinst postinst prerm postrm; do install -m0755 "$here/debian/$s" "$root/DEBIAN/$s"; done
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$OUT"
deb=$OUT/office-pbx_${VERSION}_$ARCH.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
log "wrote $deb ($(du -h "$deb" | cut -f1))"
echo "$deb"
