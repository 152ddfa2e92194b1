"""Who an extension reaches and whether its calls are recorded (a real SQLite file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import directory, features
from appliance.config.yamlio import import_yaml
from appliance.db import Database
from appliance.features import Feature, FeatureCall


@pytest.mark.parametrize(
    ("box", "employee", "recorded"),
    [("always", "default", True), ("never", "default", False),
     ("always", "never", False), ("never", "always", True)],
)
def test_recording_policy(tmp_path: Path, box: str, employee: str, recorded: bool) -> None:
    with Database.open(tmp_path / "pbx.db") as db:
        import_yaml(db, f"""
version: 1
box: {{recording: {box}}}
employees:
  - extension: "101"
    name: A
    recording: {employee}
    devices: [{{username: "101", static_contact: "sip:101@192.168.1.50"}}]
""")
        snapshot = directory.load(db)
        assert snapshot.records("101") is recorded
        assert snapshot.records("999") is False


def test_contacts_static_registered_and_dnd(tmp_path: Path) -> None:
    with Database.open(tmp_path / "pbx.db") as db:
        import_yaml(db, """
version: 1
employees:
  - extension: "101"
    name: A
    devices:
      - {username: "101", password: "Kx7-desk-alpha"}
      - {username: "101-gw", static_contact: "sip:101@192.168.1.60"}
  - extension: "102"
    name: B
    dnd: true
    devices: [{username: "102", password: "Kx7-desk-bravo"}]
""")
        live = {"101": ["sip:101@192.168.1.50:5062"], "102": ["sip:102@192.168.1.51"]}
        snapshot = directory.load(db, lambda user: live.get(user, []))
        assert snapshot.contacts("101") == ["sip:101@192.168.1.60", "sip:101@192.168.1.50:5062"]
        assert snapshot.contacts("102") == []  # do not disturb
        assert snapshot.contacts("103") is None


def test_pickup_groups_and_device_owners(tmp_path: Path) -> None:
    with Database.open(tmp_path / "pbx.db") as db:
        import_yaml(db, """
version: 1
employees:
  - {extension: "101", name: A, devices: [{username: "101", password: "Kx7-desk-alpha"}]}
  - {extension: "102", name: B, devices: [{username: "b-desk", password: "Kx7-desk-bravo"}]}
  - {extension: "103", name: C}
departments:
  - {key: sales, name: Sales, members: ["101", "102"]}
  - {key: support, name: Support, members: ["102", "103"]}
""")
        snapshot = directory.load(db)
        assert snapshot.owner_of("b-desk") == "102"
        assert snapshot.owner_of("nobody") is None
        assert snapshot.same_group("101", "102") and snapshot.same_group("103", "102")
        assert not snapshot.same_group("101", "103")
        assert not snapshot.same_group("101", "999")


@pytest.mark.parametrize(("dialled", "expected"), [
    ("*8", FeatureCall(Feature.GROUP_PICKUP)),
    ("**102", FeatureCall(Feature.DIRECTED_PICKUP, "102")),
    ("**1", None), ("**1234567", None), ("**10a", None), ("*80", None), ("102", None),
    ("", None), ("*", None),
])
def test_feature_codes(dialled: str, expected: FeatureCall | None) -> None:
    assert features.parse(dialled) == expected
