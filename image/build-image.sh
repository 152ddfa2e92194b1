#!/usr/bin/env bash
# Build the flashable image of the box: Debian 12 + our .deb, three partitions.
#
#   image/build-image.sh ARCH DEB OUT.img
#
#   amd64: GPT; 1 EFI system partition (systemd-boot, kernel, initrd), 2 root (ext4),
#          3 data (ext4, /var/lib/pbx), grown to fill the disk at first boot. UEFI only
#          (qemu with OVMF, any UEFI PC or hypervisor).
#   arm64: MBR; 1 FAT boot (Raspberry Pi firmware, Debian's kernel and initrd), 2 root,
#          3 data. Debian's raspi-firmware + linux-image-arm64: Pi 3, Pi 4, Pi 400, CM4.
#
# No loop devices and no mounts: mmdebstrap builds the root file system in a directory,
# mkfs.ext4 -d and mkfs.vfat + mcopy make the partitions as files, sfdisk writes the
# partition table into the image file and dd puts the partitions in place.
# The Debian mirror is the machine's own (apt configuration) unless IMAGE_MIRROR names one,
# e.g. a snapshot archive of a fixed date, which makes the package set reproducible.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
ARCH=${1:?usage: build-image.sh ARCH DEB OUT.img}
DEB=$(readlink -f "${2:?usage: build-image.sh ARCH DEB OUT.img}")
OUT=${3:?usage: build-image.sh ARCH DEB OUT.img}
SUITE=bookworm
DATA_MIB=${DATA_MIB:-128}       # grown at first boot
BOOT_MIB=${BOOT_MIB:-192}
ROOT_FREE_MIB=${ROOT_FREE_MIB:-512}  # room for updates on the root file system
log() { printf 'image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
[ "$(id -u)" -eq 0 ] || die "mmdebstrap's root mode needs root (the build uses no loop devices or mounts of its own)"
[ -f "$DEB" ] || die "no package $DEB (make deb)"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct)}

mirror_uri() {
  # The first Debian archive URI of the machine's own apt configuration (as pjsua2-build).
  {
    grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{for (i=2;i<=NF;i++) print $i}'
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
      | sed -E 's/\[[^]]*\]//' | awk '{print $2}'
  } | grep -E '/debian/?$' | grep -v -- '-security' | head -n1
}
MIRROR=${IMAGE_MIRROR:-$(mirror_uri || true)}
[ -n "$MIRROR" ] || die "no Debian mirror in the apt configuration; set IMAGE_MIRROR"
SECURITY=${IMAGE_SECURITY_MIRROR:-${MIRROR%/debian}/debian-security}

# Deterministic identifiers (the same for every build of one commit and arch).
uuid_of() { printf '%s' "$1-$ARCH-$SOURCE_DATE_EPOCH" | sha256sum \
  | sed -E 's/^(.{8})(.{4}).(.{3}).(.{3})(.{12}).*/\1-\2-4\3-8\4-\5/'; }
ROOT_UUID=$(uuid_of rootfs); DATA_UUID=$(uuid_of datafs)
ROOT_PART_UUID=$(uuid_of rootpart); SEED=$(uuid_of hashseed)
VFAT_ID=$(printf '%s' "esp-$ARCH-$SOURCE_DATE_EPOCH" | sha256sum | cut -c1-8)

common_pkgs=systemd,systemd-sysv,udev,dbus,systemd-timesyncd,systemd-resolved,iproute2,\
nftables,openssh-server,fdisk,e2fsprogs,kmod,initramfs-tools,python3,python3-systemd,\
ca-certificates,procps,less,netbase
case "$ARCH" in
  amd64)
    pkgs=$common_pkgs,linux-image-amd64,systemd-boot-efi,qemu-guest-agent
    components=main
    bootdir=/boot/efi ;;
  arm64)
    # qemu-guest-agent as on amd64: the arm64 boot test (qemu-system-aarch64) reaches the box
    # through it. On a Pi it never starts (its unit waits for qemu's virtio-serial port).
    pkgs=$common_pkgs,linux-image-arm64,raspi-firmware,firmware-brcm80211,qemu-guest-agent
    components="main non-free-firmware"
    bootdir=/boot/firmware ;;
  *) die "unknown arch $ARCH" ;;
esac

mkdir -p "$(dirname "$OUT")"
work=$(mktemp -d "${TMPDIR:-/var/tmp}/pbx-image.XXXXXX")
cleanup() {
  # An interrupted mmdebstrap can leave /proc, /sys or /dev mounted in the root file system:
  # unmount them first, and never let rm cross into another file system.
  findmnt -rn -o TARGET | grep -F "$work/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
rootfs=$work/rootfs
start=$(date +%s)
log "mmdebstrap $SUITE $ARCH from $MIRROR"

# The hooks run with the root file system as $1. What they do, in order:
#  (our .deb is installed with the Debian packages, so apt takes its dependencies from the
#  mirror; its postinst makes the pbx user and leaves the database to the first boot)
#  - our rootfs overlay (image/rootfs);
#  - the boot partition's contents under $bootdir (amd64: systemd-boot and the loader entry);
#  - first-boot state: no SSH host keys, no machine-id, SSH off, root locked.
# arm64: maintainer scripts run under qemu-user, where one mkinitramfs takes about 18 minutes.
# The kernel's postinst makes the initramfs; the update-initramfs -u runs that later packages
# trigger would make it again. So during the install update-initramfs is diverted to a
# wrapper that skips -u, and the real one is put back before customize.sh.
initramfs_hooks=()
if [ "$ARCH" = arm64 ]; then
  initramfs_hooks=(
    --essential-hook='chroot "$1" dpkg-divert --quiet --local --rename --divert /usr/sbin/update-initramfs.distrib --add /usr/sbin/update-initramfs && printf "#!/bin/sh\n[ \"\$1\" = -u ] && exit 0\nexec /usr/sbin/update-initramfs.distrib \"\$@\"\n" >"$1/usr/sbin/update-initramfs" && chmod 0755 "$1/usr/sbin/update-initramfs"'
    --customize-hook='rm -f "$1/usr/sbin/update-initramfs" && chroot "$1" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs && test -x "$1/usr/sbin/update-initramfs" && ls "$1"/boot/initrd.img-*'
  )
fi
mmdebstrap --variant=minbase --architectures="$ARCH" --components="${components// /,}" \
  --include="$pkgs" --include="$DEB" \
  --hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-include=/usr/share/doc/office-pbx/*' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  "${initramfs_hooks[@]}" \
  --customize-hook="sync-in '$here/rootfs' /" \
  --customize-hook='mkdir -p "$1/var/lib/pbx" "$1'"$bootdir"'"' \
  --customize-hook="ARCH=$ARCH ROOT_PART_UUID=$ROOT_PART_UUID ROOT_UUID=$ROOT_UUID DATA_UUID=$DATA_UUID BOOTDIR=$bootdir '$here/customize.sh' \"\$1\"" \
  "$SUITE" "$rootfs" \
  "deb $MIRROR $SUITE $components" \
  "deb $MIRROR $SUITE-updates $components" \
  "deb $SECURITY $SUITE-security $components" >&2

log "root file system ready after $(( $(date +%s) - start )) s; making partitions"
boot_dir=$work/boot; data_dir=$work/data
mkdir -p "$boot_dir" "$data_dir"
cp -a "$rootfs$bootdir/." "$boot_dir/"
find "$rootfs$bootdir" -mindepth 1 -delete
# The data partition starts with what the package put into /var/lib/pbx (owned by pbx).
cp -a "$rootfs/var/lib/pbx/." "$data_dir/"
chown --reference="$rootfs/var/lib/pbx" "$data_dir"; chmod --reference="$rootfs/var/lib/pbx" "$data_dir"
find "$rootfs/var/lib/pbx" -mindepth 1 -delete
find "$rootfs" "$boot_dir" "$data_dir" -newermt "@$SOURCE_DATE_EPOCH" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} + 2>/dev/null || true

root_used=$(du -s --block-size=1M "$rootfs" | cut -f1)
ROOT_MIB=$(( root_used + root_used / 5 + ROOT_FREE_MIB ))
export E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH
mkfs.ext4 -q -F -L pbx-root -U "$ROOT_UUID" -E "hash_seed=$SEED,root_owner=0:0" \
  -d "$rootfs" "$work/root.img" "${ROOT_MIB}M"
# 4 KiB blocks, as for the grown size: mkfs would pick 1 KiB for so small a file system.
mkfs.ext4 -q -F -L pbx-data -U "$DATA_UUID" -E "hash_seed=$SEED" -m 1 -b 4096 -T default \
  -d "$data_dir" "$work/data.img" "${DATA_MIB}M"
rm -f "$work/boot.img"
mkfs.vfat -C -n PBX-BOOT -i "$VFAT_ID" -F 32 --invariant "$work/boot.img" $(( BOOT_MIB * 1024 )) >/dev/null
(cd "$boot_dir" && for f in * .[!.]*; do
  if [ -e "$f" ]; then mcopy -s -m -i "$work/boot.img" "$f" ::/; fi; done)

# Layout: 1 MiB for the partition table, then boot, root, data; 1 MiB at the end for GPT's
# backup header.
b0=1; r0=$(( b0 + BOOT_MIB )); d0=$(( r0 + ROOT_MIB )); total=$(( d0 + DATA_MIB + 1 ))
rm -f "$OUT.tmp"; truncate -s "${total}M" "$OUT.tmp"
if [ "$ARCH" = amd64 ]; then
  sfdisk -q --no-reread --no-tell-kernel "$OUT.tmp" <<SF
label: gpt
label-id: $(uuid_of disk)
unit: sectors
start=$(( b0 * 2048 )), size=$(( BOOT_MIB * 2048 )), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=$(uuid_of esp), name=pbx-boot
start=$(( r0 * 2048 )), size=$(( ROOT_MIB * 2048 )), type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=$ROOT_PART_UUID, name=pbx-root
start=$(( d0 * 2048 )), size=$(( DATA_MIB * 2048 )), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=$(uuid_of datapart), name=pbx-data
SF
else
  sfdisk -q --no-reread --no-tell-kernel "$OUT.tmp" <<SF
label: dos
label-id: 0x$(printf '%s' "$ARCH-$SOURCE_DATE_EPOCH" | sha256sum | cut -c1-8)
unit: sectors
start=$(( b0 * 2048 )), size=$(( BOOT_MIB * 2048 )), type=c, bootable
start=$(( r0 * 2048 )), size=$(( ROOT_MIB * 2048 )), type=83
start=$(( d0 * 2048 )), size=$(( DATA_MIB * 2048 )), type=83
SF
fi
dd if="$work/boot.img" of="$OUT.tmp" bs=1M seek=$b0 conv=notrunc,sparse status=none
dd if="$work/root.img" of="$OUT.tmp" bs=1M seek=$r0 conv=notrunc,sparse status=none
dd if="$work/data.img" of="$OUT.tmp" bs=1M seek=$d0 conv=notrunc,sparse status=none
mv "$OUT.tmp" "$OUT"
log "wrote $OUT: $(( total )) MiB ($(du -h "$OUT" | cut -f1) allocated) in $(( $(date +%s) - start )) s"
