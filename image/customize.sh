#!/usr/bin/env bash
# mmdebstrap customize hook: turn the installed root file system ($1) into the box's.
# Environment from build-image.sh: ARCH, ROOT_PART_UUID, ROOT_UUID, DATA_UUID, BOOTDIR.
set -euo pipefail
r=$1
here=$(cd "$(dirname "$0")" && pwd)
log() { printf 'customize: %s\n' "$*" >&2; }

cat >"$r/etc/fstab" <<FSTAB
# <file system>          <mount point>   <type> <options>               <dump> <pass>
UUID=$ROOT_UUID  /               ext4   rw,noatime,errors=remount-ro 0 1
LABEL=PBX-BOOT           $BOOTDIR        vfat   rw,noatime,umask=0077,nofail 0 2
UUID=$DATA_UUID  /var/lib/pbx    ext4   rw,noatime,nosuid,nodev  0 2
FSTAB

kver=$(basename "$(readlink -f "$r/vmlinuz")" | sed 's/^vmlinuz-//')
case "$ARCH" in
  amd64)
    b=$r$BOOTDIR
    mkdir -p "$b/EFI/BOOT" "$b/loader/entries"
    cp "$r/usr/lib/systemd/boot/efi/systemd-bootx64.efi" "$b/EFI/BOOT/BOOTX64.EFI"
    cp -L "$r/vmlinuz" "$b/vmlinuz"
    cp -L "$r/initrd.img" "$b/initrd.img"
    printf 'default pbx.conf\ntimeout 0\neditor no\n' >"$b/loader/loader.conf"
    # no_timer_check: the kernel's check that the legacy 8254 timer reaches the IO-APIC can
    # fail on a hypervisor that is slow to run it (qemu without KVM), and the kernel then
    # sometimes stopped for good after "MP-BIOS bug: 8254 timer not connected". Images made
    # for virtual machines commonly skip it; on a PC it guards only against a BIOS that routes
    # the timer wrongly, which UEFI machines do not.
    cat >"$b/loader/entries/pbx.conf" <<ENTRY
title   Office PBX ($kver)
linux   /vmlinuz
initrd  /initrd.img
options root=PARTUUID=$ROOT_PART_UUID rw quiet console=tty0 console=ttyS0,115200 no_timer_check
ENTRY
    ;;
  arm64)
    # raspi-firmware's kernel hook copies kernel, initrd and device trees to /boot/firmware
    # and writes cmdline.txt from this file.
    sed -i -e 's/^#\?ROOTPART=.*/ROOTPART=LABEL=pbx-root/' \
           -e 's/^#\?CONSOLES=.*/CONSOLES="ttyS1,115200 tty0"/' "$r/etc/default/raspi-firmware"
    # The hook does its work only when DEB_MAINT_PARAMS says "configure" (as the kernel's
    # postinst sets it); without it, it exits at once and cmdline.txt keeps the
    # root=/dev/mmcblk0p2 and console of the kernel's first install.
    chroot "$r" env DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware "$kver"
    grep -q 'root=LABEL=pbx-root' "$r$BOOTDIR/cmdline.txt" \
      || { log "cmdline.txt lacks root=LABEL=pbx-root: $(cat "$r$BOOTDIR/cmdline.txt")"; exit 1; }
    ;;
esac

# The box's apt source for our own updates (README: Updates): a signed repository, its key
# the vendor's public key. IMAGE_REPO_URL defaults to a folder on the box that an upload or
# a USB stick fills.
if [ -f "$here/../.keys/office-pbx.gpg" ]; then
  install -D -m0644 "$here/../.keys/office-pbx.gpg" "$r/usr/share/keyrings/office-pbx.gpg"
  cat >"$r/etc/apt/sources.list.d/office-pbx.sources" <<SRC
Types: deb
URIs: ${IMAGE_REPO_URL:-file:/srv/pbx-repo}
Suites: ./
Signed-By: /usr/share/keyrings/office-pbx.gpg
SRC
  mkdir -p "$r/srv/pbx-repo"
fi

# First-boot state: the box's identity is made on the box (pbx-firstboot.service).
echo pbx >"$r/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tpbx\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"
rm -f "$r"/etc/ssh/ssh_host_*
: >"$r/etc/machine-id"
rm -f "$r/var/lib/dbus/machine-id"
ln -sf ../run/systemd/resolve/stub-resolv.conf "$r/etc/resolv.conf"
# No account has a password: root is locked; the web wizard makes the first administrator.
chroot "$r" usermod -p '*' root
chroot "$r" passwd -l root >/dev/null
chroot "$r" systemctl disable ssh.service ssh.socket >/dev/null 2>&1 || true
chroot "$r" systemctl enable systemd-networkd.service systemd-resolved.service \
  systemd-timesyncd.service pbx-firstboot.service pbx-ssh.service >/dev/null
# Nothing of the build machine's: logs, caches, package lists (apt update fetches them).
find "$r/var/log" -type f -exec truncate -s0 {} +
rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/ldconfig/aux-cache \
  "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old "$r"/tmp/* "$r"/var/tmp/*
log "customized for $ARCH (kernel $kver)"
