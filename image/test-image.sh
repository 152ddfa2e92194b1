#!/usr/bin/env bash
# The amd64 image that tests/image boots: built once per set of inputs and cached outside
# the tree ($PBX_CACHE/images/<key>/), like pjsua2-build caches its wheel. Prints the folder
# (pbx-amd64.img and the .deb inside it). The key hashes what goes into the image: the
# committed trees of the application and the recipe, the prompts, the vendor key and our
# pjsua2 build; the Debian packages are whatever the mirror has on the day of the build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
CACHE=${PBX_CACHE:-$HOME/.cache/pbx}
log() { printf 'test-image: %s\n' "$*" >&2; }
if [ "$(id -u)" -ne 0 ]; then
  log "not root: the image cannot be built here (mmdebstrap's root mode); tests/image will skip"
  exit 0
fi
bash "$here/repo.sh" key
key=$( (git -C "$repo" rev-parse HEAD:image HEAD:deploy HEAD:appliance HEAD:hw HEAD:webui \
          HEAD:pyproject.toml
        cat "$repo/share/prompts/.stamp" "${PBX_KEYS:-$repo/.keys}/office-pbx.gpg"
        "$repo/.venv/bin/python" -c 'import json,pathlib,pjsua2; print(json.loads(pathlib.Path(pjsua2.__file__).with_name("pjsua2_build.json").read_text())["cache_key"])'
      ) | sha256sum | cut -c1-16)
dir=$CACHE/images/$key
if [ -f "$dir/pbx-amd64.img" ] && ls "$dir"/office-pbx_*_amd64.deb >/dev/null 2>&1; then
  log "using cached image $key"
  echo "$dir"; exit 0
fi
start=$(date +%s)
mkdir -p "$dir.tmp"
deb=$(bash "$here/build-deb.sh" "$dir.tmp" amd64 | tail -n1)
bash "$here/build-image.sh" amd64 "$deb" "$dir.tmp/pbx-amd64.img"
rm -rf "$dir"; mv "$dir.tmp" "$dir"
# Keep the two newest images: each is about a gigabyte (sparse).
ls -dt "$CACHE"/images/*/ 2>/dev/null | tail -n +3 | xargs -r rm -rf
log "built image $key in $(( $(date +%s) - start )) s"
echo "$dir"
