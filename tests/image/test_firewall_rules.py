"""The image's LAN firewall (image/pbxfirewall.py): rules rendered from ports, checked by nft."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

PATH = Path(__file__).resolve().parents[2] / "image" / "pbxfirewall.py"


def load() -> ModuleType:
    """The script as a module (it is installed as /usr/lib/pbx/pbxfirewall.py, not a package)."""
    spec = importlib.util.spec_from_file_location("pbxfirewall", PATH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["pbxfirewall"] = mod
    spec.loader.exec_module(mod)
    return mod


fw = load()
can_check = os.geteuid() == 0 and shutil.which("nft") is not None


def nft_check(script: str) -> subprocess.CompletedProcess[str]:
    """nft -c: parse and validate in the kernel's terms without changing anything."""
    return subprocess.run(["nft", "-c", "-f", "-"], input=script, text=True,
                          capture_output=True, timeout=10, check=False)


def test_default_rules_open_only_lan_sources() -> None:
    """Every accept for a service port is tied to a LAN source set."""
    script = fw.render(fw.Ports())
    accepts = [ln.strip() for ln in script.splitlines() if "dport" in ln and "accept" in ln]
    service = [ln for ln in accepts if "5060" in ln or "443" in ln or "10000-20000" in ln]
    assert len(service) == 4
    assert all("@lan4" in ln or "@lan6" in ln for ln in service)
    assert "policy drop" in script
    assert "192.168.0.0/16" in script and "fe80::/10" in script


def test_our_table_only() -> None:
    """The script replaces the table pbx_lan and never flushes the ruleset (the engine's
    ban table `inet pbx` must survive a reload of the firewall)."""
    script = fw.render(fw.Ports())
    assert "flush ruleset" not in script
    tables = [ln for ln in script.splitlines() if "table" in ln]
    assert len(tables) == 3
    assert all("inet pbx_lan" in ln for ln in tables)


def test_bad_ports_refused() -> None:
    """Ports outside 1-65535 or a reversed RTP range never reach nft."""
    with pytest.raises(ValueError):
        fw.Ports(sip=0)
    with pytest.raises(ValueError):
        fw.Ports(rtp_min=20000, rtp_max=10000)


@pytest.mark.skipif(not can_check, reason="nft -c needs root and nft")
def test_default_rules_valid_for_nft() -> None:
    """The kernel's own parser takes the rules."""
    r = nft_check(fw.render(fw.Ports()))
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(not can_check, reason="nft -c needs root and nft")
@settings(max_examples=25, deadline=None)
@given(sip=st.integers(1, 65535), web=st.integers(1, 65535),
       rtp=st.one_of(st.integers(1, 65535).map(lambda p: [p, p]),
                     st.tuples(st.integers(1, 65535), st.integers(1, 65535)).map(sorted)))
def test_any_ports_valid_for_nft(sip: int, web: int, rtp: list[int]) -> None:
    """Whatever ports the settings hold (overlapping the SIP port or not), nft accepts."""
    r = nft_check(fw.render(fw.Ports(sip=sip, web=web, rtp_min=rtp[0], rtp_max=rtp[1])))
    assert r.returncode == 0, r.stderr
