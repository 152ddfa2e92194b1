"""A small office for routing tests: YAML in, a snapshot out, plus live-state helpers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import yaml

from appliance.config.yamlio import parse_config
from appliance.routing.plan import CallContext, ManagerFact
from appliance.routing.snapshot import (
    LiveState,
    MemberState,
    Snapshot,
    frozen_map,
    snapshot_from_config,
)

MSK = dt.timezone(dt.timedelta(hours=3))
# Tuesday 3 March 2026, 10:00 in Moscow: the office is open.
OPEN = dt.datetime(2026, 3, 3, 10, 0, tzinfo=MSK)
CLOSED = dt.datetime(2026, 3, 3, 20, 0, tzinfo=MSK)
HOLIDAY = dt.datetime(2026, 1, 7, 12, 0, tzinfo=MSK)
MAIN = "+74955550001"
MOBILE_NUMBER = "+79165550002"
CUSTOMER = "+79161112233"

OFFICE = """
version: 1
box: {time_zone: Europe/Moscow, country: RU}
prompts:
  - {key: welcome, file: prompts/welcome.wav}
  - {key: closed, file: prompts/closed.wav}
  - {key: menu-main, file: prompts/menu.wav}
employees:
  - {extension: "101", name: Anna, mobiles: ["+79160000101"], ring_mobile_after: 5,
     devices: [{username: "101", password: Kx7-phone-pw-1}]}
  - {extension: "102", name: Boris, mobiles: ["+79160000102"], ring_mobile_after: never,
     devices: [{username: "102", password: Kx7-phone-pw-2}]}
  - {extension: "103", name: Vera, call_waiting: false,
     devices: [{username: "103", password: Kx7-phone-pw-3}]}
  - {extension: "104", name: Gleb, devices: [{username: "104", password: Kx7-phone-pw-4}]}
  - {extension: "105", name: Director, mobiles: ["+79160000105"], ring_mobile_after: 5,
     devices: [{username: "105", password: Kx7-phone-pw-5}]}
  - {extension: "106", name: Static,
     devices: [{username: "106", static_contact: "sip:106@10.0.0.6"}]}
departments:
  - {key: sales, name: Sales, extension: "500", strategy: all_at_once,
     members: ["101", "102", "103", "104"], timeout: 40, overflow: {voicemail: sales}}
  - {key: first-line, name: First line, strategy: all_at_once, members: ["101", "102"],
     timeout: 60}
lines:
  - {key: sim1, kind: sim, simulated: true}
numbers:
  - {number: "+7 495 555-00-01", flow: main}
  - {number: "+7 916 555-00-02", line: sim1, flow: menu}
schedules:
  - key: office
    time_zone: Europe/Moscow
    hours: {mon: ["09:00-18:00"], tue: ["09:00-18:00"], wed: ["09:00-18:00"],
            thu: ["09:00-18:00"], fri: ["09:00-17:00"]}
flows:
  - key: main
    schedule: office
    branches:
      - {when: backup, to: {external: "+79160000105", line: sim1}}
      - {when: holiday, to: {chain: duty}}
      - {when: open, greeting: welcome, to: {department: sales}}
      - {when: closed, greeting: closed, to: {voicemail: general}}
  - key: menu
    branches: [{to: {voice_menu: main}}]
forwarding_chains:
  - key: duty
    steps:
      - {to: {department: first-line}, timeout: 15}
      - {to: {department: sales}, timeout: 15}
      - {to: {external: "+79160000105", line: sim1}, timeout: 25}
    final: {voicemail: general}
voice_menus:
  - key: main
    greeting: menu-main
    timeout: 5
    invalid_retries: 2
    keys: {"1": {department: sales}, "2": {voice_menu: support}, "0": {employee: "101"},
           "9": {voicemail: general}}
    default: {department: sales}
  - key: support
    parent: main
    keys: {"1": {employee: "104"}}
    default: {employee: "104"}
voicemail_boxes:
  - {key: general, name: General, owner: "101"}
  - {key: sales, name: Sales box}
blacklist:
  - {number: "+7 999 555-66-77", reason: Robocaller}
repeat_caller:
  enabled: true
  sources: [call_history]
  exceptions: ["105"]
  local_area_code: "495"
  answer_timeout: 20
"""


def config(changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The office as plain data, with top-level sections replaced by `changes`."""
    data: dict[str, Any] = yaml.safe_load(OFFICE)
    data.update(changes or {})
    return data


def snapshot(changes: dict[str, Any] | None = None, *, live: LiveState | None = None,
             **members: MemberState) -> Snapshot:
    """The office's snapshot; members given as keyword arguments (m101=MemberState(...))."""
    cfg = parse_config(config(changes))
    if live is None:
        states = {ext: MemberState(registered=True) for ext in
                  ("101", "102", "103", "104", "105")}
        states.update({name.removeprefix("m"): state for name, state in members.items()})
        live = LiveState(members=frozen_map(states))
    return snapshot_from_config(cfg, live=live, years=[2025, 2026, 2027])


def call(now: dt.datetime = OPEN, *, caller: str = CUSTOMER, dialled: str = MAIN,
         managers: tuple[ManagerFact, ...] = (), **kwargs: Any) -> CallContext:
    """An inbound call to the main number."""
    return CallContext(caller=caller, dialled=dialled, now=now, managers=managers, **kwargs)
