"""The arm64 image in qemu-system-aarch64: first boot, and the engine on our cross-built pjsua2.

`make test-image-arm64` builds the image (`make image-arm64`) and runs this file;
PBX_ARM64_IMAGE names another image file. qemu's `virt` board with a Cortex-A72 (emulated:
TCG) stands in for a Raspberry Pi: there is no Pi firmware to run, so the kernel, the initrd
and the kernel command line are taken from the image's boot partition (where the Pi's
firmware finds them) and booted directly; only the console is swapped for the virt board's
serial port. The disk is a virtio disk: a qcow2 overlay of 4 GiB over the image, so the first
boot has to grow the data partition (/dev/vda3 here, /dev/mmcblk0p3 on a Pi). The guest is
reached through the qemu guest agent, as on amd64 (tests/image/vm.py; the classes there are
reused by subclassing, not edited), and the web UI through a loopback port forwarded to 443.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port_block
from tests.image.test_image_boot import health, wait_ready
from tests.image.vm import GUEST_MAC, VM

pytestmark = [pytest.mark.arm64_image, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
# An emulated Cortex-A72 on two shared x86 cores: several times slower than the emulated
# amd64 guest.
BOOT_TIMEOUT = 900.0


def arm64_image() -> Path:
    """The image file: PBX_ARM64_IMAGE, else `make image-arm64`'s output."""
    image = Path(os.environ.get("PBX_ARM64_IMAGE", REPO / "build" / "image" / "pbx-arm64.img"))
    if not image.is_file():
        pytest.skip(f"no arm64 image at {image}: run `make test-image-arm64` (builds it first)")
    if shutil.which("qemu-system-aarch64") is None or shutil.which("mcopy") is None:
        pytest.skip("qemu-system-aarch64 or mtools missing (make deps-image installs them)")
    return image


def boot_partition_offset(image: Path) -> int:
    """Byte offset of the first (FAT boot) partition, from the image's partition table."""
    table = json.loads(subprocess.run(["sfdisk", "-J", str(image)], check=True,
                                      capture_output=True, text=True).stdout)["partitiontable"]
    assert table["label"] == "dos", table["label"]
    first = table["partitions"][0]
    assert first["type"] == "c", first  # FAT32 (LBA): what the Pi's boot ROM reads
    return int(first["start"]) * int(table.get("sectorsize", 512))


def boot_files(image: Path, dest: Path) -> tuple[Path, Path, str]:
    """Kernel, initrd and command line from the boot partition, as the Pi's firmware sees it.

    raspi-firmware's config.txt names the kernel and initrd (`kernel=`, `initramfs`) and
    cmdline.txt holds the command line; all three are read from there, not guessed.
    """
    fat = f"{image}@@{boot_partition_offset(image)}"

    def read(name: str) -> str:
        return subprocess.run(["mtype", "-i", fat, f"::{name}"], check=True,
                              capture_output=True, text=True).stdout

    kernel_name = initrd_name = ""
    for line in read("config.txt").splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("kernel="):
            kernel_name = line.split("=", 1)[1].strip()
        elif line.startswith("initramfs "):
            initrd_name = line.split()[1]
    assert kernel_name and initrd_name, read("config.txt")
    kernel, initrd = dest / "vmlinuz", dest / "initrd.img"
    for name, out in ((kernel_name, kernel), (initrd_name, initrd)):
        subprocess.run(["mcopy", "-n", "-i", fat, f"::{name}", str(out)], check=True)
    return kernel, initrd, " ".join(read("cmdline.txt").split())


class Arm64VM(VM):
    """tests/image/vm.py's VM on qemu-system-aarch64 (virt, Cortex-A72), kernel booted directly."""

    def __init__(self, image: Path, workdir: Path, *, ports: dict[int, int], kernel: Path,
                 initrd: Path, cmdline: str) -> None:
        self.kernel, self.initrd, self.cmdline = kernel, initrd, cmdline
        super().__init__(image, workdir, ports=ports)
        self.kvm = False  # an x86 host: aarch64 is always emulated

    def _fresh_disk(self) -> None:
        """A new overlay over the image (no firmware variables: the kernel is booted directly)."""
        self.disk.unlink(missing_ok=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw",
                        "-b", str(self.image), str(self.disk), self.disk_size], check=True)

    def start(self) -> None:
        """Start qemu-system-aarch64 (returns at once; wait_agent waits for the guest)."""
        fwd = self.forwards()
        cmd = [
            "qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72",
            "-accel", "tcg,thread=multi", "-m", str(self.memory_mib), "-smp", "2",
            "-display", "none", "-no-user-config", "-nodefaults",
            "-kernel", str(self.kernel), "-initrd", str(self.initrd), "-append", self.cmdline,
            "-drive", f"file={self.disk},if=none,id=hd0,format=qcow2,cache=unsafe",
            "-device", "virtio-blk-pci,drive=hd0",
            "-nic", f"user,model=virtio-net-pci,mac={GUEST_MAC},{fwd}",
            "-chardev", f"socket,path={self.qga_path},server=on,wait=off,id=qga0",
            "-device", "virtio-serial-pci",
            "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
            "-serial", f"file:{self.serial}",
        ]
        self.launch(cmd)


def guest_cmdline(image_cmdline: str) -> str:
    """The image's command line with the virt board's serial console instead of the Pi's."""
    words = [w for w in image_cmdline.split() if not w.startswith("console=")]
    return " ".join([*words, "console=ttyAMA0,115200"])


def test_guest_cmdline_keeps_root_and_swaps_console() -> None:
    """Only the console changes: root= and the rest are the image's own."""
    got = guest_cmdline("console=tty0 console=ttyS1,115200 root=LABEL=pbx-root rw rootwait")
    assert got == "root=LABEL=pbx-root rw rootwait console=ttyAMA0,115200"


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Arm64VM]:
    """The booted arm64 VM."""
    image = arm64_image()
    work = tmp_path_factory.mktemp("vm-arm64")
    kernel, initrd, cmdline = boot_files(image, work)
    assert "root=LABEL=pbx-root" in cmdline.split(), cmdline
    base = free_port_block(2)
    vm = Arm64VM(image, work, ports={443: base, 80: base + 1}, kernel=kernel, initrd=initrd,
                 cmdline=guest_cmdline(cmdline))
    try:
        took = vm.first_boot(BOOT_TIMEOUT)
        print(f"arm64 first boot: guest agent after {took:.1f} s (TCG, cortex-a72)")
        yield vm
    finally:
        if (REPO / "build").is_dir():
            shutil.copy(vm.serial, REPO / "build" / "image-test-arm64-serial.log")
        vm.stop()


def test_arm64_engine_and_web_up(box: Arm64VM) -> None:
    """The engine (our cross-built pjsua2 on aarch64) is ready and HTTPS health says so."""
    start = time.monotonic()
    wait_ready(box, timeout=600)
    assert box.check("uname -m").strip() == "aarch64"
    # The engine's pjsua2 is the cross-built one: an aarch64 extension, loading in the venv.
    so = box.check("ls /opt/pbx/venv/lib/python3.11/site-packages/_pjsua2.*.so").strip()
    assert so.endswith("_pjsua2.cpython-311-aarch64-linux-gnu.so"), so
    version = box.check("/opt/pbx/venv/bin/python3 -c "
                        "'import pjsua2; print(pjsua2.Endpoint().libVersion().full)'").strip()
    assert version.startswith("2."), version
    deadline = time.monotonic() + 300
    body: dict[str, object] = {}
    scheme = ""
    while body.get("engine") != "ready":
        assert time.monotonic() < deadline, f"health never ready: {body}"
        try:
            scheme, body = health(box.ports[443])
        except ConnectionError:
            body = {}
        if body.get("engine") != "ready":
            time.sleep(2)
    print(f"arm64: engine and web ready {time.monotonic() - start:.1f} s after the agent; "
          f"health over {scheme}: {body}; pjsua2 {version}")
    assert scheme == "https"
    assert body["web"] == "ok"


def test_arm64_first_boot_grew_data_partition(box: Arm64VM) -> None:
    """First boot on a vdX disk: data partition grown, host keys made, hostname from the MAC."""
    box.wait_until("test -f /etc/pbx/firstboot.done", 120)
    source, size = box.check("findmnt -n -b -o SOURCE,SIZE /var/lib/pbx").split()
    assert source == "/dev/vda3"
    # 128 MiB in the image; the disk is 4 GiB, so the partition must have grown past 2 GiB.
    assert int(size) > 2 * 1024**3, size
    assert box.check("hostname").strip() == "pbx-" + GUEST_MAC.replace(":", "")[-4:].upper()
    assert box.check("ls /etc/ssh/ssh_host_ed25519_key.pub").strip()
    assert box.run("systemctl is-active ssh.service").out.strip() != "active"
