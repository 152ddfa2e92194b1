# Shared by pjsua2-build/build.sh (the host) and image/pjsua2-arm64.sh (the cross build), so
# both name their cached wheels alike: $PBX_CACHE/pjsua2-wheels/<src16>-<cfg16>-<py>-<arch>.
# Sourced, not run.

# The asterisk source version (and its pjproject tarball) this project tested.
TESTED_VERSION='1:22.10.1+dfsg+~cs6.17.60671434-1'
TESTED_TARBALL='asterisk_22.10.1+dfsg+~cs6.17.60671434.orig-Xpjproject.tar.xz'
TESTED_SHA256='6860c2f7604b4eee75f38151a9ef69774eb3f0c5286fc1d14bc1db2dc5a9e8aa'

# The recipe: compile-time limits, configure flags and a revision number bumped by hand when
# the build steps change in a way that alters the wheel. Changing any of these changes the
# key, so a stale wheel is never picked up.
RECIPE_REVISION=1

pjsua2_key_prefix() {
  # Prints <src16>-<cfg16> for the pjproject tarball $1 and the recipe in this folder.
  local tarball=$1 dir src_sha cfg_sha
  dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  src_sha=$(sha256sum "$tarball" | cut -c1-16)
  cfg_sha=$( (cat "$dir/config_site.h" "$dir/configure.flags"; echo "$RECIPE_REVISION") | sha256sum | cut -c1-16)
  echo "$src_sha-$cfg_sha"
}
