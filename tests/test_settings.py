"""Settings: defaults, TOML file, PBX_* environment, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.settings import SettingsError, load


def test_defaults_are_a_real_box() -> None:
    s = load(environ={})
    assert s.data_dir == Path("/var/lib/pbx")
    assert s.sip_port == 5060
    assert s.bridge_clock_rate == 8000
    assert s.control_socket == Path("/var/lib/pbx/run/control.sock")
    assert s.simulate is False
    assert s.firewall == "auto"
    assert load(environ={"PBX_FIREWALL": "off"}).firewall == "off"


def test_file_then_environment_then_overrides(tmp_path: Path) -> None:
    file = tmp_path / "pbx.toml"
    file.write_text('data_dir = "/srv/pbx"\nsip_port = 5070\nsimulate = true\n')
    env = {"PBX_CONFIG": str(file), "PBX_SIP_PORT": "5090", "PBX_RUN_DIR": "/run/pbx"}
    s = load(environ=env, web_port=8443)
    assert s.data_dir == Path("/srv/pbx")
    assert s.sip_port == 5090  # the environment beats the file
    assert s.simulate is True
    assert s.web_port == 8443
    assert s.control_socket == Path("/run/pbx/control.sock")
    assert s.source == ("defaults", str(file), "PBX_RUN_DIR", "PBX_SIP_PORT")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PBX_SIP_PORT": "sixty"}, "PBX_SIP_PORT"),
        ({"PBX_SIP_PORT": "70000"}, r"sip_port: 70000 is not a port"),
        ({"PBX_SIMULATE": "maybe"}, "not a boolean"),
        ({"PBX_SIP_BIND": "localhost:5060"}, "sip_bind"),
        ({"PBX_BRIDGE_CLOCK_RATE": "11025"}, "bridge_clock_rate"),
        ({"PBX_MAX_CALLS": "2000"}, "max_calls"),
        ({"PBX_FIREWALL": "iptables"}, "firewall must be auto, nftables or off"),
        ({"PBX_RTP_PORT_MIN": "20000", "PBX_RTP_PORT_MAX": "10000"}, "rtp_port_min"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load(environ=env)


def test_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("sip_port = [1,\n")
    with pytest.raises(SettingsError, match=r"bad\.toml"):
        load(bad, environ={})
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("sip_prot = 5060\n")
    with pytest.raises(SettingsError, match="unknown setting 'sip_prot'"):
        load(unknown, environ={})
    with pytest.raises(SettingsError, match="does not exist"):
        load(tmp_path / "missing.toml", environ={})
