#!/bin/sh
# First boot of a flashed card: grow the data partition to fill it, create this box's own
# SSH host keys, name it pbx-XXXX after its MAC address. Runs once (firstboot.done).
set -eu
log() { echo "pbx-firstboot: $*"; }

# 1. The data partition (/var/lib/pbx) is the last one: grow it to the end of the card.
data=$(findmnt -n -o SOURCE /var/lib/pbx || true)
if [ -n "$data" ]; then
    disk=/dev/$(lsblk -n -o PKNAME "$data" | head -n1)
    part=$(cat "/sys/class/block/$(basename "$data")/partition")
    if sfdisk -d "$disk" | grep -q '^label: gpt'; then
        # The backup GPT sits at the image's end, not the card's: move it first.
        sfdisk --relocate gpt-bak-std "$disk" || true
    fi
    echo ", +" | sfdisk --no-reread --no-tell-kernel -N "$part" "$disk" || log "sfdisk: partition not grown"
    partx -u --nr "$part" "$disk" || log "partx: the kernel keeps the old size until reboot"
    resize2fs "$data" || log "resize2fs failed"
    log "data partition $data: $(df -h --output=size /var/lib/pbx | tail -n1 | tr -d ' ')"
else
    log "no data partition mounted on /var/lib/pbx; data stays on the root file system"
fi
chown pbx:pbx /var/lib/pbx 2>/dev/null || true
chmod 0750 /var/lib/pbx

# 2. SSH host keys of this box alone (the image ships none).
rm -f /etc/ssh/ssh_host_*
ssh-keygen -A >/dev/null

# 3. Hostname pbx-XXXX: the last four hex digits of the first wired interface's MAC.
mac=""
for dev in /sys/class/net/*; do
    name=$(basename "$dev")
    case "$name" in lo|wl*|ww*|docker*|veth*|br*) continue ;; esac
    [ -f "$dev/address" ] || continue
    mac=$(cat "$dev/address"); break
done
suffix=$(echo "$mac" | tr -d ':' | tail -c 5 | tr 'a-f' 'A-F')
[ -n "$suffix" ] || suffix=$(od -An -N2 -tx2 /dev/urandom | tr -d ' ' | tr 'a-f' 'A-F')
name="pbx-$suffix"
echo "$name" >/etc/hostname
hostname "$name"
sed -i '/^127\.0\.1\.1/d' /etc/hosts
echo "127.0.1.1	$name" >>/etc/hosts
log "hostname $name"

touch /etc/pbx/firstboot.done
