#!/usr/bin/env bash
# The box vendor's signing key and a signed apt repository of our packages.
#
#   image/repo.sh key                 make the development key in .keys/ (git-ignored) once
#   image/repo.sh build DIR DEB...    a flat repository in DIR: Packages, Release, InRelease
#   image/repo.sh bundle OUT_DIR DEB  that repository for one .deb as one file to upload in the
#                                     web UI: OUT_DIR/office-pbx_<version>_<arch>.pbxupdate
#
# The box trusts the public key (/usr/share/keyrings/office-pbx.gpg in the image) and apt
# checks InRelease's signature and every file's hash: a tampered or unsigned package is not
# installed. A release build uses the vendor's real key: PBX_KEYS=/path/to/keys.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
KEYS=${PBX_KEYS:-$here/../.keys}
export GNUPGHOME=$KEYS/gnupg
UID_NAME="Office PBX box vendor (development key)"

make_key() {
  [ -s "$KEYS/office-pbx.gpg" ] && return
  mkdir -p "$GNUPGHOME"; chmod 0700 "$KEYS" "$GNUPGHOME"
  gpg --batch --quiet --passphrase '' --quick-gen-key "$UID_NAME" ed25519 sign never
  gpg --batch --export "$UID_NAME" >"$KEYS/office-pbx.gpg"
  echo "repo: made the development signing key in $KEYS" >&2
}

build_repo() {
  local dir=$1; shift
  make_key
  mkdir -p "$dir"
  for deb in "$@"; do cp -f "$deb" "$dir/"; done
  (
    cd "$dir"
    apt-ftparchive packages . >Packages
    gzip -9nkf Packages
    apt-ftparchive -o APT::FTPArchive::Release::Origin=office-pbx \
      -o APT::FTPArchive::Release::Label=office-pbx release . >Release
    rm -f InRelease Release.gpg
    gpg --batch --quiet --yes -u "$UID_NAME" --clearsign -o InRelease Release
    gpg --batch --quiet --yes -u "$UID_NAME" -abs -o Release.gpg Release
  )
  echo "repo: $dir ($(ls "$dir"/*.deb | wc -l) packages)" >&2
}

# A plain tar (the .deb is compressed already) of the signed repository, files only, in a
# fixed order with the .deb's time stamp: the box reads it strictly (appliance/bundle.py).
make_bundle() {
  local out=$1 deb=$2 version arch name
  [ -f "$deb" ] || { echo "repo: no such package $deb" >&2; exit 2; }
  version=$(dpkg-deb -f "$deb" Version); arch=$(dpkg-deb -f "$deb" Architecture)
  name=office-pbx_${version}_$arch.pbxupdate
  work=$(mktemp -d "${TMPDIR:-/tmp}/pbx-bundle.XXXXXX")  # global: the EXIT trap reads it
  trap 'rm -rf "$work"' EXIT
  build_repo "$work/repo" "$deb"
  mkdir -p "$out"
  (cd "$work/repo" && tar --format=gnu --owner=0 --group=0 --numeric-owner --mode=0644 \
     --mtime="@$(stat -c %Y "$deb")" -cf "$work/$name" \
     InRelease Release Release.gpg Packages Packages.gz "$(basename "$deb")")
  mv -f "$work/$name" "$out/$name"
  echo "repo: wrote $out/$name" >&2
  echo "$out/$name"
}

case "${1:-}" in
  key) make_key ;;
  build) shift; build_repo "$@" ;;
  bundle) [ $# -eq 3 ] || { sed -n '2,11p' "$0" >&2; exit 2; }; make_bundle "$2" "$3" ;;
  *) sed -n '2,11p' "$0" >&2; exit 2 ;;
esac
