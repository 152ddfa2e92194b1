"""The amd64 image in qemu: first boot, a reboot, an update, and a failed update.

The image is built once per set of inputs and cached (image/test-image.sh, run by
`make test` before pytest); the VM boots a copy-on-write overlay of it, 4 GiB large, so the
first boot grows the data partition. Tests run in file order on one VM: each later one
builds on the state the earlier ones left (an extension made before the reboot, the update
after it).
"""

from __future__ import annotations

import http.cookiejar
import http.server
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from appliance.db.migrations import MIGRATIONS
from tests.conftest import free_port_block
from tests.image.vm import GUEST_MAC, HOST_FROM_GUEST, VM, GuestError

pytestmark = [pytest.mark.image, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
# Without KVM (nested virtualisation often lacks it) qemu emulates the CPU: a boot takes
# 1.5-2.5 minutes on two busy cores instead of seconds.
BOOT_TIMEOUT = 300.0
PBX = "runuser -u pbx -- /opt/pbx/venv/bin/pbx"


def cached_image() -> Path:
    """The folder with the cached image and its .deb (built here if missing).

    PBX_IMAGE_DIR names another folder with both (a `make image-amd64` output, say).
    """
    if os.environ.get("PBX_IMAGE_DIR"):
        return Path(os.environ["PBX_IMAGE_DIR"])
    if os.geteuid() != 0:
        pytest.skip("building and booting the image needs root (mmdebstrap's root mode)")
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is missing (make deps-image installs it)")
    out = subprocess.run(["bash", str(REPO / "image" / "test-image.sh")], check=True,
                         capture_output=True, text=True, timeout=1800).stdout.strip()
    return Path(out.splitlines()[-1])


def repack(deb: Path, out_dir: Path, version: str, *, failing_migration: bool) -> Path:
    """A copy of deb with another version (and, if asked, a migration that always fails)."""
    tree = out_dir / f"tree-{version}"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    control = tree / "DEBIAN" / "control"
    control.write_text("".join(
        f"Version: {version}\n" if line.startswith("Version:") else line
        for line in control.read_text().splitlines(keepends=True)))
    (tree / "opt" / "pbx" / "VERSION").write_text(version + "\n")
    if failing_migration:
        mig = next(tree.glob("opt/pbx/venv/lib/python3*/site-packages/appliance/db/migrations.py"))
        # A new last entry of the registry tuple (functions take it as a default argument,
        # so it must be in the tuple itself, not appended to the module afterwards).
        text = mig.read_text()
        head = "MIGRATIONS: tuple[Migration, ...] = ("
        start = text.index(head)
        end = text.index("\n)\n", start)
        mig.write_text(
            text[:start]
            + "def _broken(db):\n    raise RuntimeError('this migration always fails')\n\n\n"
            + text[start:end]
            + f"\n    Migration({len(MIGRATIONS) + 1}, 'broken', _broken),"
            + text[end:])
        for pyc in mig.parent.glob("__pycache__/migrations.*.pyc"):
            pyc.unlink()
    out = out_dir / f"office-pbx_{version}_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build",
                    str(tree), str(out)], check=True, capture_output=True)
    shutil.rmtree(tree)
    return out


class Repo:
    """A signed apt repository on a loopback HTTP server (the guest reaches it via 10.0.2.2)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        handler = partial(_QuietHandler, directory=str(root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, *debs: Path) -> None:
        """Put the packages in and sign the index (image/repo.sh, the vendor's key)."""
        subprocess.run(["bash", str(REPO / "image" / "repo.sh"), "build", str(self.root),
                        *map(str, debs)], check=True, capture_output=True)

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Requests are not logged (apt fetches several files)."""


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VM, Path]]:
    """The booted VM, and the cache folder of its image."""
    cache = cached_image()
    image = cache / "pbx-amd64.img"
    work = tmp_path_factory.mktemp("vm")
    base = free_port_block(4)
    vm = VM(image, work, ports={443: base, 22: base + 1, 5060: base + 2, 80: base + 3})
    try:
        took = vm.first_boot(BOOT_TIMEOUT)
        print(f"first boot: guest agent after {took:.1f} s (kvm={vm.kvm})")
        yield vm, cache
    finally:
        shutil.copy(vm.serial, REPO / "build" / "image-test-serial.log") if (
            REPO / "build").is_dir() else None
        vm.stop()


def installed_version(vm: VM) -> str:
    """The office-pbx version whose files are on the box."""
    return vm.check("cat /opt/pbx/VERSION").strip()


def schema_version(vm: VM) -> int:
    """The newest migration applied to the box's database."""
    out = vm.check("/opt/pbx/venv/bin/python3 -c \"import sqlite3; print(sqlite3.connect("
                   "'file:/var/lib/pbx/pbx.sqlite3?mode=ro', uri=True).execute("
                   "'select max(number) from schema_migrations').fetchone()[0])\"")
    return int(out.strip())


def health(port: int) -> tuple[str, dict[str, object]]:
    """GET /api/v1/health on the forwarded web port: (scheme, JSON). HTTPS first."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the box's own self-signed certificate
    for scheme in ("https", "http"):
        try:
            with urllib.request.urlopen(f"{scheme}://127.0.0.1:{port}/api/v1/health",
                                        timeout=5, context=ctx if scheme == "https" else None
                                        ) as resp:
                return scheme, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return scheme, json.loads(exc.read() or b"{}")
        except (urllib.error.URLError, ssl.SSLError, ConnectionError, OSError):
            continue
    raise ConnectionError("the web UI does not answer on the forwarded port")


def wait_health(port: int, timeout: float = 120.0) -> tuple[str, dict[str, object]]:
    """Health once the web UI answers (after an update it restarts; emulated, that is slow)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return health(port)
        except ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        """Redirects are answers to look at, not to follow."""
        return None


def get_location(url: str) -> str:
    """The Location of a redirect answer to GET url (the box's certificate not checked)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    opener = urllib.request.build_opener(_NoRedirect, urllib.request.HTTPSHandler(context=ctx))
    try:
        with opener.open(url, timeout=10) as resp:
            raise AssertionError(f"{url}: {resp.status}, not a redirect")
    except urllib.error.HTTPError as exc:
        assert exc.code in (301, 302, 303, 307, 308), exc.code
        return str(exc.headers["Location"])


def wait_ready(vm: VM, timeout: float = 120.0) -> None:
    """Engine and web active, and the engine answering its control socket."""
    vm.wait_until("systemctl is-active pbx-engine.service pbx-web.service "
                  "&& test -S /run/pbx/control.sock", timeout)


def test_first_boot_services_and_web(box: tuple[VM, Path]) -> None:
    """Engine and web UI active; /api/v1/health answers through the LAN firewall."""
    vm, _ = box
    wait_ready(vm)
    deadline = time.monotonic() + 60
    while True:
        try:
            scheme, body = health(vm.ports[443])
            if body.get("engine") == "ready":
                break
        except ConnectionError:
            body = {}
        assert time.monotonic() < deadline, f"health never ready: {body}"
        time.sleep(1)
    print(f"web UI health over {scheme}: {body}")
    assert body["web"] == "ok"
    assert scheme == "https"
    # A new box: the first-run wizard, over HTTPS; plain HTTP on 80 redirects there.
    assert get_location(f"https://127.0.0.1:{vm.ports[443]}/").endswith("/setup")
    assert get_location(f"http://127.0.0.1:{vm.ports[80]}/").startswith("https://")
    # The firewall is up (our table) and did not remove the engine's ban table.
    tables = vm.check("nft list tables")
    assert "inet pbx_lan" in tables
    assert "inet pbx" in tables.split("inet pbx_lan")[0] + tables.split("inet pbx_lan")[1]
    # Uploads spill to the data partition, not to the small root file system's /tmp.
    environ = vm.check("tr '\\0' '\\n' </proc/$(systemctl show -p MainPID --value "
                       "pbx-web.service)/environ")
    assert "TMPDIR=/var/lib/pbx/tmp" in environ.splitlines()
    assert vm.check("stat -c '%U %a' /var/lib/pbx/tmp").split() == ["pbx", "750"]


def test_first_boot_identity_and_data_partition(box: tuple[VM, Path]) -> None:
    """Hostname from the MAC, own host keys, the data partition grown, the DB migrated."""
    vm, _ = box
    vm.wait_until("test -f /etc/pbx/firstboot.done", 60)
    assert vm.check("hostname").strip() == "pbx-" + GUEST_MAC.replace(":", "")[-4:].upper()
    assert vm.check("ls /etc/ssh/ssh_host_ed25519_key.pub").strip()
    source, size = vm.check("findmnt -n -b -o SOURCE,SIZE /var/lib/pbx").split()
    assert source == "/dev/vda3"
    # 128 MiB in the image; the disk is 4 GiB, so the partition must have grown past 2 GiB.
    assert int(size) > 2 * 1024**3, size
    wait_ready(vm)
    assert schema_version(vm) == len(MIGRATIONS)
    assert vm.check("stat -c %U /var/lib/pbx/pbx.sqlite3").strip() == "pbx"


def test_ssh_closed_and_no_passwords(box: tuple[VM, Path]) -> None:
    """SSH is off (nothing answers on 22) and no account has a password hash."""
    vm, _ = box
    assert vm.run("systemctl is-active ssh.service").out.strip() != "active"
    assert ":22 " not in vm.check("ss -Hltn")
    # Through the forwarded port: qemu accepts, but no SSH banner ever comes.
    with socket.create_connection(("127.0.0.1", vm.ports[22]), timeout=5) as s:
        s.settimeout(3)
        try:
            banner = s.recv(64)
        except (TimeoutError, ConnectionResetError):
            banner = b""
    assert not banner.startswith(b"SSH-"), banner
    shadow = vm.check("cat /etc/shadow")
    for line in shadow.splitlines():
        user, pw = line.split(":")[:2]
        assert pw and pw[0] in "*!", f"{user} has a password or an empty one: {pw[:3]}..."
    # The root side of remote access reported at boot, for the web UI's security page.
    vm.wait_until("test -s /var/lib/pbx/system/ssh-status.json", 60)
    status = json.loads(vm.check("cat /var/lib/pbx/system/ssh-status.json"))
    assert status["active"] is False and status["keys"] == 0, status


def test_reboot_keeps_configuration(box: tuple[VM, Path]) -> None:
    """An extension made before a reboot is there after it; the first boot does not rerun."""
    vm, _ = box
    wait_ready(vm)
    vm.check(f"echo Tangerine-Lamp-47 | {PBX} ext add 201 Alice --password-stdin")
    keys = vm.check("cat /etc/ssh/ssh_host_ed25519_key.pub")
    took = vm.reboot(BOOT_TIMEOUT)
    print(f"reboot: guest agent after {took:.1f} s")
    wait_ready(vm)
    assert "201" in vm.check(f"{PBX} ext list --json")
    assert vm.check("cat /etc/ssh/ssh_host_ed25519_key.pub") == keys


def apt_from(vm: VM, repo: Repo) -> None:
    """Point the box's office-pbx source at the test repository and read its index."""
    vm.check(
        "cat >/etc/apt/sources.list.d/office-pbx.sources <<EOF\n"
        f"Types: deb\nURIs: http://{HOST_FROM_GUEST}:{repo.port}/\nSuites: ./\n"
        "Signed-By: /usr/share/keyrings/office-pbx.gpg\nEOF")
    # Only our repository: the test must not depend on the Debian mirror.
    vm.check("apt-get update -q -o Dir::Etc::SourceList=/dev/null "
             "-o Dir::Etc::SourceParts=/etc/apt/sources.list.d", timeout=120)


def apt_install(vm: VM) -> tuple[int, str]:
    """apt-get install the newest office-pbx; (exit code, output)."""
    # unsafe-io: dpkg skips its fsync per file. Emulated (no KVM), the fsyncs of the venv's
    # ten thousand files take minutes; what is tested here is the maintainer scripts.
    r = vm.run("DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
               "-o Dpkg::Options::=--force-unsafe-io "
               "-o Dir::Etc::SourceList=/dev/null office-pbx 2>&1", timeout=480)
    return r.code, r.out + r.err


def assert_updated(vm: VM, new: str) -> None:
    """The box runs version new, installed cleanly, with the extension and schema kept."""
    assert installed_version(vm) == new
    assert vm.check("dpkg-query -W -f='${Version} ${Status}' office-pbx") == \
        f"{new} install ok installed"
    wait_ready(vm)
    assert "201" in vm.check(f"{PBX} ext list --json")
    assert schema_version(vm) == len(MIGRATIONS)


def test_update_keeps_configuration(box: tuple[VM, Path], tmp_path: Path) -> None:
    """A newer .deb from the signed repository: the DB stays, is migrated, services restart."""
    vm, cache = box
    deb = next(cache.glob("office-pbx_*_amd64.deb"))
    old = installed_version(vm)
    new = old + ".1"
    repo = Repo(tmp_path / "repo")
    try:
        repo.publish(repack(deb, tmp_path, new, failing_migration=False))
        apt_from(vm, repo)
        code, out = apt_install(vm)
        assert code == 0, out
    finally:
        repo.close()
    assert "schema" in out  # the postinst ran `pbx db migrate`
    assert_updated(vm, new)
    scheme, body = wait_health(vm.ports[443])
    assert body.get("web") == "ok", (scheme, body)
    # postinst stopped the old engine: it ended on its own (SIGTERM), not by abort or kill.
    journal = vm.check("journalctl -b -u pbx-engine.service --no-pager -o cat")
    for unclean in ("terminate called", "code=dumped", "status=6/ABRT", "SIGKILL",
                    "timed out"):
        assert unclean not in journal, journal[-3000:]


def test_failed_update_leaves_old_version_working(box: tuple[VM, Path], tmp_path: Path) -> None:
    """A .deb whose migration fails: apt fails, the old files, DB and services stay."""
    vm, cache = box
    deb = next(cache.glob("office-pbx_*_amd64.deb"))
    old = installed_version(vm)
    repo = Repo(tmp_path / "repo")
    try:
        repo.publish(repack(deb, tmp_path, old + ".9", failing_migration=True))
        apt_from(vm, repo)
        code, out = apt_install(vm)
    finally:
        repo.close()
    assert code != 0, out
    assert "putting the previous version back" in out
    assert installed_version(vm) == old
    wait_ready(vm, timeout=60)
    assert schema_version(vm) == len(MIGRATIONS)
    assert "201" in vm.check(f"{PBX} ext list --json")
    assert "broken" not in vm.check(
        "grep -c broken /opt/pbx/venv/lib/python3.11/site-packages/appliance/db/migrations.py"
        " || true").replace("0", "")
    _, body = wait_health(vm.ports[443])
    assert body.get("engine") == "ready", body


class Browser:
    """A browser over HTTPS to the box's forwarded port: cookies, CSRF tokens from pages,
    a Referer (the web UI checks it on HTTPS), multipart uploads."""

    def __init__(self, port: int) -> None:
        self.base = f"https://127.0.0.1:{port}"
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the box's own self-signed certificate
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
            urllib.request.HTTPSHandler(context=ctx))

    def request(self, path: str, body: bytes | None = None, content_type: str = "",
                timeout: float = 120.0) -> tuple[int, str]:
        """(status, text) of GET path, or of a POST when body is given."""
        headers = {"Referer": self.base + path}
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.base + path, data=body, headers=headers)
        try:
            with self.opener.open(req, timeout=timeout) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def token(self, path: str) -> str:
        """The CSRF token from a page."""
        status, text = self.request(path)
        match = re.search(r'name="csrf_token" value="([^"]+)"', text)
        assert status == 200 and match, (status, text[:500])
        return match.group(1)

    def post(self, path: str, fields: dict[str, str], files: dict[str, Path] | None = None,
             page: str | None = None, timeout: float = 120.0) -> tuple[int, str]:
        """POST a form (multipart when there are files) with the page's CSRF token."""
        fields = {"csrf_token": self.token(page or path), **fields}
        if not files:
            return self.request(path, urllib.parse.urlencode(fields).encode(),
                                "application/x-www-form-urlencoded", timeout)
        boundary = "pbx-" + os.urandom(8).hex()
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                 .encode() for k, v in fields.items()]
        for name, file in files.items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                         f'filename="{file.name}"\r\nContent-Type: application/octet-stream'
                         "\r\n\r\n".encode() + file.read_bytes() + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.request(path, body, f"multipart/form-data; boundary={boundary}", timeout)


def bundle_of(deb: Path, out: Path, keys: Path | None = None) -> Path:
    """image/repo.sh bundle (the vendor's development key, or another one in `keys`)."""
    env = {**os.environ, **({"PBX_KEYS": str(keys)} if keys else {})}
    r = subprocess.run(["bash", str(REPO / "image" / "repo.sh"), "bundle", str(out), str(deb)],
                       check=True, capture_output=True, text=True, env=env)
    return Path(r.stdout.strip().splitlines()[-1])


def admin_browser(vm: VM) -> Browser:
    """The administrator (made inside the guest the first time) logged in over HTTPS, with
    English pages."""
    made = vm.run(f"env PBX_ADMIN_PASSWORD=Kor0va-Moloko-7 {PBX} admin create admin "
                  "--password-env")
    assert made.code == 0 or "already exists" in made.out + made.err, made
    wait_health(vm.ports[443])
    browser = Browser(vm.ports[443])
    status, text = browser.post("/login", {"username": "admin", "password": "Kor0va-Moloko-7"})
    assert status == 200 and "/logout" in text, (status, text[:800])
    assert browser.request("/lang/en")[0] == 200
    return browser


def wait_update(browser: Browser, timeout: float) -> str:
    """The progress block once the install ended (the web UI restarts on the way)."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            status, text = browser.request("/update/progress", timeout=30)
        except (urllib.error.URLError, ConnectionError, OSError):
            status = 0
        if status == 200 and "hx-trigger" not in text:
            return text
        time.sleep(3)
    raise AssertionError(f"the update did not end in {timeout} s: {text[-1500:]}")


def test_update_uploaded_in_web_ui(box: tuple[VM, Path], tmp_path: Path) -> None:
    """An admin uploads a newer signed bundle over HTTPS, presses Install, and the page
    shows the new version; the configuration stays."""
    vm, cache = box
    deb = next(cache.glob("office-pbx_*_amd64.deb"))
    old = installed_version(vm)
    # Newer than dpkg's record too, which the failed update above left at its version.
    new = vm.check("dpkg-query -W -f='${Version}' office-pbx").strip() + ".1"
    bundle = bundle_of(repack(deb, tmp_path, new, failing_migration=False), tmp_path / "b")
    # Emulated, dpkg's fsync per file of the venv takes minutes; the test is not about that.
    vm.check("echo 'Dpkg::Options {\"--force-unsafe-io\";};' >/etc/apt/apt.conf.d/99pbx-test")
    vm.wait_until("systemctl is-active pbx-update.path", 60)
    browser = admin_browser(vm)
    page = browser.request("/update/")[1]
    assert f'id="installed-version">{old}<' in page and "development installation" not in page
    status, page = browser.post("/update/upload", {}, {"bundle": bundle}, page="/update/",
                                timeout=300)
    assert status == 200 and f'id="pending-version">{new}<' in page, (status, page[-2000:])
    status, page = browser.post("/update/install", {}, page="/update/")
    assert status == 200, page[-2000:]
    started = time.monotonic()
    progress = wait_update(browser, 700)
    print(f"web update: installed in {time.monotonic() - started:.0f} s")
    assert 'data-state="installed"' in progress, progress
    assert f'id="installed-version">{new}<' in progress
    assert_updated(vm, new)
    assert vm.check("ls /srv/pbx-repo | grep -c deb").strip() == "1"
    audit = vm.check("/opt/pbx/venv/bin/python3 -c \"import sqlite3; print(sqlite3.connect("
                     "'file:/var/lib/pbx/pbx.sqlite3?mode=ro', uri=True).execute("
                     "\\\"select group_concat(action) from audit_log where area='update'\\\")"
                     ".fetchone()[0])\"")
    assert "upload" in audit and "install" in audit


def test_update_signed_by_another_key_is_refused(box: tuple[VM, Path], tmp_path: Path) -> None:
    """A bundle signed by a key the box does not trust is refused on upload."""
    vm, cache = box
    deb = next(cache.glob("office-pbx_*_amd64.deb"))
    version = installed_version(vm) + ".7"
    bundle = bundle_of(repack(deb, tmp_path, version, failing_migration=False), tmp_path / "b",
                       keys=tmp_path / "stranger")
    browser = admin_browser(vm)
    status, page = browser.post("/update/upload", {}, {"bundle": bundle}, page="/update/",
                                timeout=300)
    assert status == 400 and "does not trust" in page, (status, page[-2000:])
    assert vm.run("test -e /var/lib/pbx/updates/pending.pbxupdate").code != 0


def test_ssh_file_on_boot_partition_turns_ssh_on(box: tuple[VM, Path], tmp_path: Path) -> None:
    """A file `ssh` on the boot partition (with a public key) enables SSH; the key is root's."""
    vm, _ = box
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    pub = (tmp_path / "id.pub").read_text().strip()
    vm.check(f"echo '{pub}' >/boot/efi/ssh && systemctl start pbx-ssh.service")
    vm.wait_until("systemctl is-active ssh.service", 120)
    assert vm.check("systemctl is-enabled ssh.service").strip() == "enabled"
    assert vm.run("test -e /boot/efi/ssh").code != 0  # used up, as on Raspberry Pi OS
    assert pub in vm.check("cat /root/.ssh/authorized_keys")
    with socket.create_connection(("127.0.0.1", vm.ports[22]), timeout=10) as s:
        s.settimeout(30)
        assert s.recv(64).startswith(b"SSH-2.0-")  # through the forwarded port: LAN allowed


def ssh_banner(port: int) -> bytes:
    """The first bytes an SSH server sends through the forwarded port (b"" if none)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.settimeout(5)
        try:
            return s.recv(64)
        except (TimeoutError, ConnectionResetError):
            return b""


def request_ssh(vm: VM, enabled: bool, keys: list[str]) -> None:
    """What the web UI's security page does: write the request as the web UI's user."""
    code = ("import sys; from pathlib import Path; from appliance import remote_access as ra; "
            "ra.submit(Path('/var/lib/pbx'), ra.Request(sys.argv[1] == 'on', "
            "ra.parse_keys(sys.argv[2]), by='admin'))")
    vm.check(f"runuser -u pbx -- /opt/pbx/venv/bin/python -c \"{code}\" "
             f"{'on' if enabled else 'off'} '{chr(10).join(keys)}'")


def test_ssh_switched_from_the_web_ui(box: tuple[VM, Path], tmp_path: Path) -> None:
    """The web UI's request turns SSH off (keys gone) and on again with a new key, as root."""
    vm, _ = box
    request_ssh(vm, False, [])
    vm.wait_until("! systemctl is-active ssh.service && ! test -e "
                  "/var/lib/pbx/system/ssh-request.json", 60)
    assert vm.run("test -e /root/.ssh/authorized_keys").code != 0
    assert vm.check("systemctl is-enabled ssh.service || true").strip() == "disabled"
    assert not ssh_banner(vm.ports[22]).startswith(b"SSH-")
    status = json.loads(vm.check("cat /var/lib/pbx/system/ssh-status.json"))
    assert (status["active"], status["keys"], status["requested_by"]) == (False, 0, "admin")
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "office-admin",
                    "-f", str(key)], check=True)
    pub = (tmp_path / "id.pub").read_text().strip()
    request_ssh(vm, True, [pub])
    vm.wait_until("systemctl is-active ssh.service && ! test -e "
                  "/var/lib/pbx/system/ssh-request.json", 60)
    assert vm.check("cat /root/.ssh/authorized_keys").strip() == pub
    assert vm.check("stat -c %a /root/.ssh/authorized_keys").strip() == "600"
    assert ssh_banner(vm.ports[22]).startswith(b"SSH-2.0-")
    status = json.loads(vm.check("cat /var/lib/pbx/system/ssh-status.json"))
    assert (status["active"], status["authorized"]) == (True, [pub])


def test_guest_errors_are_reported(box: tuple[VM, Path]) -> None:
    """The harness itself: a failing guest command raises with its output."""
    vm, _ = box
    with pytest.raises(GuestError, match="no-such-file"):
        vm.check("cat /no-such-file")
