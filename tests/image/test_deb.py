"""The office-pbx .deb that goes into the image: metadata, files and maintainer scripts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.image.test_image_boot import REPO, cached_image

pytestmark = [pytest.mark.image, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def deb() -> Path:
    """The .deb of the cached test image."""
    return next(cached_image().glob("office-pbx_*_amd64.deb"))


def test_control_fields(deb: Path) -> None:
    """Name, architecture, and the libraries our pjsua2 links are dependencies."""
    fields = subprocess.run(["dpkg-deb", "-f", str(deb)], check=True, capture_output=True,
                            text=True).stdout
    assert "Package: office-pbx" in fields
    assert "Architecture: amd64" in fields
    depends = next(ln for ln in fields.splitlines() if ln.startswith("Depends:"))
    for lib in ("python3-systemd", "nftables", "libssl3", "libopus0", "libsrtp2-1"):
        assert lib in depends, depends


def test_files(deb: Path) -> None:
    """Units, udev rules, prompts, the firewall and the venv's entry point are inside."""
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], check=True, capture_output=True,
                             text=True).stdout
    names = {line.split()[5] for line in listing.splitlines()}
    for path in ("./lib/systemd/system/pbx-engine.service",
                 "./lib/systemd/system/pbx-web.service",
                 "./lib/systemd/system/pbx-firewall.service",
                 "./lib/systemd/system/pbx-update.path",
                 "./lib/systemd/system/pbx-update.service",
                 "./lib/systemd/system/pbx-remote-access.path",
                 "./lib/systemd/system/pbx-remote-access.service",
                 "./lib/udev/rules.d/77-pbx-modems.rules",
                 "./lib/udev/rules.d/78-pbx-gpio.rules",
                 "./usr/lib/pbx/pbxfirewall.py",
                 "./usr/share/pbx/prompts/ru/",
                 "./opt/pbx/venv/bin/pbx",
                 "./opt/pbx/VERSION"):
        assert path in names, path
    assert not any(n.startswith("./var/lib/pbx/") for n in names), "the package ships data"
    assert any("/site-packages/pjsua2" in n for n in names)
    # Every template, static file and catalog of the web UI (sub-folders too: once only the
    # top-level templates were packaged and every admin page failed on the box).
    site = next(n for n in names if n.endswith("/site-packages/webui/")).removesuffix("webui/")
    tracked = subprocess.run(["git", "ls-files", "webui/templates", "webui/static", "webui/i18n"],
                             cwd=REPO, check=True, capture_output=True, text=True).stdout.split()
    assert len(tracked) > 50
    missing = [f for f in tracked if f"{site}{f}" not in names]
    assert not missing, missing


def test_entry_point_and_venv_are_for_the_box(deb: Path, tmp_path: Path) -> None:
    """Shebang and pyvenv.cfg name /opt/pbx/venv and the system python, not the build's."""
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    assert (tmp_path / "opt/pbx/venv/bin/pbx").read_text().startswith(
        "#!/opt/pbx/venv/bin/python3\n")
    cfg = (tmp_path / "opt/pbx/venv/pyvenv.cfg").read_text()
    assert "include-system-site-packages = true" in cfg
    assert "/tmp" not in cfg and "pbx-deb." not in cfg


def test_maintainer_scripts_parse(deb: Path, tmp_path: Path) -> None:
    """Every maintainer script is valid POSIX sh."""
    subprocess.run(["dpkg-deb", "-e", str(deb), str(tmp_path)], check=True)
    for name in ("preinst", "postinst", "prerm", "postrm"):
        r = subprocess.run(["sh", "-n", str(tmp_path / name)], capture_output=True, text=True)
        assert r.returncode == 0, (name, r.stderr)
