#!/usr/bin/env bash
# The box vendor's signing key and a signed apt repository of our packages.
#
#   image/repo.sh key                 make the development key in .keys/ (git-ignored) once
#   image/repo.sh build DIR DEB...    a flat repository in DIR: Packages, Release, InRelease
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

case "${1:-}" in
  key) make_key ;;
  build) shift; build_repo "$@" ;;
  *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
