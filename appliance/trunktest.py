"""A test call out through a trunk or gateway: does the line carry a call now?

The admin's check after setting up a line (`pbx trunks test LINE NUMBER`, `POST
/trunks/test-call`): the engine dials the number with `X-PBX-Line`, so the call leaves
exactly as a routed call would (the edge's credentials, caller ID and channel limit),
holds it for a moment once answered, hangs up and tells the SIP outcome. The call is
no one's: the switchboard ignores legs it did not start, and no call record is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from typing import Any

from .engine import Engine, EngineError, EngineEvent, LegEvent, LegInfo, LegState

NUMBER = re.compile(r"\+?[0-9*#]{1,32}", re.ASCII)
ANSWER_TIMEOUT_S = 45.0
HANGUP_TIMEOUT_S = 5.0


async def place_test_call(engine: Engine, edge_port: int, line: str, number: str, *,
                    caller_id: str | None = None, hold_s: float = 2.0,
                    answer_timeout_s: float = ANSWER_TIMEOUT_S) -> dict[str, Any]:
    """Dial number through line; the outcome as the control API reports it."""
    leg_id = f"trunk-test-{secrets.token_hex(4)}"
    states: asyncio.Queue[LegInfo] = asyncio.Queue()

    def on_event(event: EngineEvent) -> None:
        if isinstance(event, LegEvent) and event.leg.leg_id == leg_id \
                and not event.media_changed:
            states.put_nowait(event.leg)

    headers = {"X-PBX-Line": line}
    if caller_id:
        headers["X-PBX-Caller-Id"] = caller_id
    started = time.monotonic()
    unsubscribe = engine.subscribe(on_event)
    last: LegInfo | None = None
    answered = False
    try:
        # Addressed to the edge: the engine's outbound proxy takes it there anyway, and
        # X-PBX-Line makes the edge send it out through the line (edge/trunks.py).
        await engine.dial(f"sip:{number}@127.0.0.1:{edge_port}", leg_id=leg_id,
                          headers=headers)
        deadline = started + answer_timeout_s
        while last is None or last.state not in (LegState.CONFIRMED,
                                                 LegState.DISCONNECTED):
            last = await asyncio.wait_for(states.get(),
                                          max(0.01, deadline - time.monotonic()))
        if last.state is LegState.CONFIRMED:
            answered = True
            await asyncio.sleep(hold_s)  # the far end hears the call for a moment
            await engine.hangup(leg_id)
            while last.state is not LegState.DISCONNECTED:
                last = await asyncio.wait_for(states.get(), HANGUP_TIMEOUT_S)
    except TimeoutError:
        # No answer in time (or no end after hanging up): give up on the leg.
        with contextlib.suppress(EngineError):  # already gone
            await engine.hangup(leg_id)
    except EngineError as exc:
        return {"line": line, "number": number, "answered": False, "code": 0,
                "reason": str(exc), "seconds": round(time.monotonic() - started, 2)}
    finally:
        unsubscribe()
    code = last.sip_code if last is not None else 0
    return {"line": line, "number": number, "answered": answered,
            "code": 200 if answered else code,
            "reason": "answered" if answered else (last.reason if last is not None
                                                  else "no answer in time"),
            "seconds": round(time.monotonic() - started, 2)}
