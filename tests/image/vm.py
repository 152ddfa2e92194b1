"""A qemu VM of the amd64 image for tests: boot, run commands through the guest agent, reboot.

The image has no account with a password and SSH is off, so tests reach the inside through
the qemu guest agent (a virtio-serial port only a hypervisor can open): `run` executes a
shell command as root and returns its exit code and output. The disk is a qcow2 overlay
over the cached image, larger than it, so the first boot grows the data partition and the
cached image is never written.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
# qemu's user-mode network gives the guest this MAC unless told otherwise: the hostname
# the first boot derives from it is pbx-3456.
GUEST_MAC = "52:54:00:12:34:56"
# The host's loopback as the guest sees it through user-mode networking.
HOST_FROM_GUEST = "10.0.2.2"


class GuestError(RuntimeError):
    """The guest agent did not answer, or a command could not run."""


@dataclass(frozen=True)
class Result:
    """A finished guest command."""

    code: int
    out: str
    err: str


def kvm_usable() -> bool:
    """True when a KVM guest really runs here (else qemu emulates: TCG, several times slower).

    Opening /dev/kvm is not enough: nested under another hypervisor, KVM may refuse the
    CPU's MSRs or stop with an internal error as soon as the firmware runs. So a firmware
    is started for two seconds and must still be running without complaint.
    """
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    probe = subprocess.Popen(
        ["qemu-system-x86_64", "-enable-kvm", "-cpu", "host", "-machine", "q35", "-m", "128",
         "-display", "none", "-nodefaults", "-no-user-config",
         "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = probe.communicate(timeout=2.0)
        return False  # exited within two seconds: KVM failed
    except subprocess.TimeoutExpired:
        probe.kill()
        out, _ = probe.communicate()
    return b"error" not in out.lower()


def _decoded(status: dict[str, object], key: str) -> str:
    """A guest-exec-status output field (base64) as text."""
    data = status.get(key)
    return base64.b64decode(str(data)).decode(errors="replace") if data else ""


class Agent:
    """The qemu guest agent protocol (JSON lines) over the VM's Unix socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock: socket.socket | None = None
        self.buf = b""
        self.sync_id = int(time.time()) % 100000

    def close(self) -> None:
        """Drop the connection (the VM keeps running)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.buf = b""

    def _connect(self) -> socket.socket:
        if self.sock is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(str(self.path))
            self.sock = s
        return self.sock

    def _read_reply(self, deadline: float) -> dict[str, object]:
        sock = self._connect()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from the guest agent")
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                raise GuestError("the guest agent's socket closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        reply: dict[str, object] = json.loads(line.lstrip(b"\xff"))
        return reply

    def sync(self, timeout: float) -> None:
        """guest-sync-delimited: flush stale replies; raises TimeoutError if the agent is down."""
        self.sync_id += 1
        sock = self._connect()
        sock.sendall(b"\xff" + json.dumps(
            {"execute": "guest-sync-delimited", "arguments": {"id": self.sync_id}}).encode())
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_reply(deadline)
            if reply.get("return") == self.sync_id:
                return

    def call(self, command: str, timeout: float = 10.0, **arguments: object) -> object:
        """One agent command; its `return` value."""
        sock = self._connect()
        msg: dict[str, object] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        sock.sendall(json.dumps(msg).encode() + b"\n")
        reply = self._read_reply(time.monotonic() + timeout)
        if "error" in reply:
            raise GuestError(f"{command}: {reply['error']}")
        return reply.get("return")


class VM:
    """One qemu process running a copy-on-write view of the image."""

    def __init__(self, image: Path, workdir: Path, *, ports: dict[int, int],
                 disk_size: str = "4G", memory_mib: int = 1024) -> None:
        self.workdir = workdir
        self.ports = ports  # guest TCP port -> host loopback port
        self.disk = workdir / "disk.qcow2"
        self.vars = workdir / "OVMF_VARS.fd"
        self.serial = workdir / "serial.log"
        self.qga_path = workdir / "qga.sock"
        self.image = image
        self.disk_size = disk_size
        self._fresh_disk()
        self.memory_mib = memory_mib
        self.proc: subprocess.Popen[bytes] | None = None
        self.agent = Agent(self.qga_path)
        self.kvm = kvm_usable()

    def _fresh_disk(self) -> None:
        """A new overlay over the image and new firmware variables: a machine never booted."""
        self.disk.unlink(missing_ok=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw",
                        "-b", str(self.image), str(self.disk), self.disk_size], check=True)
        shutil.copy(OVMF_VARS, self.vars)

    def first_boot(self, timeout: float, attempts: int = 2) -> float:
        """Start a never-booted machine and wait for its agent; seconds the good boot took.

        Emulated (TCG) on a busy host, the kernel now and then stops for good right after
        "MP-BIOS bug: 8254 timer not connected" (qemu idle, no further console output); a
        second machine from the same image then boots. Each attempt is reported.
        """
        for attempt in range(1, attempts + 1):
            self.start()
            try:
                return self.wait_agent(timeout)
            except TimeoutError:
                if attempt == attempts:
                    raise
                print(f"boot attempt {attempt} hung; console:\n{self.console_tail(5)}")
                self.stop()
                self.serial.unlink(missing_ok=True)
                self.qga_path.unlink(missing_ok=True)
                self._fresh_disk()
        raise AssertionError("unreachable")

    def forwards(self) -> str:
        """qemu's user-mode network options forwarding loopback ports to the guest's."""
        return ",".join(f"hostfwd=tcp:127.0.0.1:{host}-:{guest}"
                        for guest, host in sorted(self.ports.items()))

    def start(self) -> None:
        """Start qemu (returns at once; wait_agent waits for the booted guest)."""
        fwd = self.forwards()
        cmd = [
            "qemu-system-x86_64", "-machine", "q35", "-m", str(self.memory_mib), "-smp", "2",
            "-display", "none", "-no-user-config", "-nodefaults",
            "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
            "-drive", f"if=pflash,format=raw,file={self.vars}",
            "-drive", f"file={self.disk},if=virtio,format=qcow2,cache=unsafe",
            "-nic", f"user,model=virtio-net-pci,mac={GUEST_MAC},{fwd}",
            "-chardev", f"socket,path={self.qga_path},server=on,wait=off,id=qga0",
            "-device", "virtio-serial",
            "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
            "-serial", f"file:{self.serial}",
        ]
        cmd[1:1] = (["-enable-kvm", "-cpu", "host"] if self.kvm
                    else ["-accel", "tcg,thread=multi", "-cpu", "max"])
        self.launch(cmd)

    def launch(self, cmd: list[str]) -> None:
        """Run a qemu command line and wait until its guest agent socket exists."""
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=open(self.workdir / "qemu.log", "ab"))  # noqa: SIM115
        deadline = time.monotonic() + 10
        while not self.qga_path.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise GuestError(f"qemu did not start: {(self.workdir / 'qemu.log').read_text()}")
            time.sleep(0.05)

    def wait_agent(self, timeout: float) -> float:
        """Wait until the guest agent answers (the guest has booted); seconds it took."""
        start = time.monotonic()
        deadline = start + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise GuestError(f"qemu exited with {self.proc.returncode}")
            try:
                self.agent.sync(timeout=2.0)
                return time.monotonic() - start
            except (TimeoutError, GuestError, OSError):
                self.agent.close()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the guest agent did not answer within {timeout} s; "
                                       f"serial console:\n{self.console_tail()}") from None

    def run(self, command: str, timeout: float = 60.0) -> Result:
        """Run a shell command in the guest as root."""
        ret = self.agent.call("guest-exec", path="/bin/sh", arg=["-c", command],
                              **{"capture-output": True})
        assert isinstance(ret, dict)
        pid = ret["pid"]
        deadline = time.monotonic() + timeout
        while True:
            status = self.agent.call("guest-exec-status", pid=pid)
            assert isinstance(status, dict)
            if status.get("exited"):
                return Result(int(status.get("exitcode", -1)), _decoded(status, "out-data"),
                              _decoded(status, "err-data"))
            if time.monotonic() > deadline:
                raise TimeoutError(f"guest command did not finish in {timeout} s: {command}")
            time.sleep(0.3)

    def check(self, command: str, timeout: float = 60.0) -> str:
        """Run a command that must succeed; its standard output."""
        r = self.run(command, timeout)
        if r.code != 0:
            raise GuestError(f"{command!r} failed ({r.code}): {r.out}{r.err}")
        return r.out

    def wait_until(self, command: str, timeout: float) -> None:
        """Run command every half second until it succeeds."""
        deadline = time.monotonic() + timeout
        last = Result(-1, "", "")
        while time.monotonic() < deadline:
            last = self.run(command, timeout=max(1.0, deadline - time.monotonic()))
            if last.code == 0:
                return
            time.sleep(0.5)
        raise TimeoutError(f"{command!r} still fails after {timeout} s: {last}")

    def reboot(self, timeout: float) -> float:
        """Reboot the guest and wait for its agent; seconds until it answered again."""
        boot_id = self.check("cat /proc/sys/kernel/random/boot_id").strip()
        # Started, not waited for: the agent may die before it could report the exit.
        self.agent.call("guest-exec", path="/bin/sh", arg=["-c", "sleep 1; systemctl reboot"])
        self.agent.close()
        start = time.monotonic()
        deadline = start + timeout
        power_cycled = False
        while True:
            try:
                # Half the time first: an emulated (TCG) guest sometimes stops for good after
                # its firmware on the way back up, as a first boot sometimes does.
                wait = (deadline - time.monotonic()) / (1 if power_cycled else 2)
                self.wait_agent(timeout=max(1.0, wait))
            except TimeoutError:
                if power_cycled:
                    raise
                print(f"reboot hung; console:\n{self.console_tail(5)}\npower-cycling")
                self.stop()
                self.qga_path.unlink(missing_ok=True)
                self.start()  # the same disk: what the reboot is about is still there
                power_cycled = True
                continue
            try:
                now = self.check("cat /proc/sys/kernel/random/boot_id", timeout=5).strip()
            except (GuestError, TimeoutError, OSError):
                now = boot_id
                self.agent.close()
            if now != boot_id:
                return time.monotonic() - start
            if time.monotonic() > deadline:
                raise TimeoutError("the guest did not reboot")
            time.sleep(0.5)

    def console_tail(self, lines: int = 40) -> str:
        """The end of the serial console log."""
        try:
            text = self.serial.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Power off (kill qemu)."""
        self.agent.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
