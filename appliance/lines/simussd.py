"""USSD on a SIM line: a request and its answer, recorded; the periodic balance check."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from hw.modem.balance import parse_balance
from hw.modem.commands import AtError
from hw.modem.messages import UssdReply
from hw.modem.ussd import decode_reply

from . import store
from .base import BalanceChecked, LineState, LowBalance

if TYPE_CHECKING:
    from .sim import SimLine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UssdResult:
    """A USSD answer: the decoded text and, for balance checks, the amount found."""

    text: str
    status: int
    amount: Decimal | None = None
    currency: str | None = None


async def ussd(line: SimLine, code: str, *, record: bool = True) -> UssdResult:
    """Send a USSD request and wait for the network's answer (stored in ussd_history)."""
    port = line.port
    if port is None or line.state not in (LineState.READY, LineState.IN_CALL):
        raise RuntimeError(f"line {line.key} is {line.state.value}")
    channel = port.channel
    async with line.ussd_lock:
        error: str | None = None
        result = UssdResult("", -1)
        with channel.watch(lambda u: isinstance(u, UssdReply)) as watch:
            try:
                resp = await line.command(port.profile.ussd_command(code), 10.0)
                if not resp.ok:
                    raise RuntimeError(f"the modem refused the request: "
                                       f"{resp.final.reason}")
                reply = await watch.next(line.ctx.timers.ussd_timeout_s)
                assert isinstance(reply, UssdReply)
                text = decode_reply(reply, port.profile.ussd_encoding)
                if reply.status == 1:
                    # We never continue a menu: close the session the network left open.
                    with contextlib.suppress(AtError):
                        await line.command("AT+CUSD=2", 5.0)
                if reply.status in (4, 5):
                    error = "not supported by the network" if reply.status == 4 \
                        else "the network timed out"
                balance = parse_balance(text)
                result = UssdResult(text, reply.status,
                                    balance.amount if balance else None,
                                    balance.currency if balance else None)
            except TimeoutError:
                error = "no answer from the network"
            except (AtError, RuntimeError, ValueError) as exc:
                error = str(exc)
        if record and line.ctx.db is not None:
            key = line.key
            amount = float(result.amount) if result.amount is not None else None
            await line.ctx.db.awrite(lambda c: store.add_ussd(
                c, key, code, result.text or None, amount, result.currency, error))
        if error is not None:
            raise RuntimeError(error)
        if result.amount is not None and code == line.settings.ussd_balance:
            line.balance = {"amount": float(result.amount), "currency": result.currency}
        return result


async def check_balance(line: SimLine) -> UssdResult | None:
    """The configured balance code, parsed; a low-balance event under the threshold."""
    code = line.settings.ussd_balance
    if not code:
        return None
    result = await ussd(line, code)
    amount = float(result.amount) if result.amount is not None else None
    if amount is not None:
        line.balance = {"amount": amount, "currency": result.currency}
    line.events.emit(BalanceChecked(line.key, amount, result.currency, result.text))
    threshold = line.ctx.low_balance_threshold
    if amount is not None and threshold is not None and amount < threshold:
        line.events.emit(LowBalance(line.key, amount, result.currency, threshold))
    return result


async def balance_loop(line: SimLine) -> None:
    """Check the balance now and then, forever (cancelled with the line)."""
    timers = line.ctx.timers
    await line.ctx.clock.sleep(timers.balance_first_s)
    while True:
        if line.settings.ussd_balance and line.state is LineState.READY:
            try:
                await check_balance(line)
            except RuntimeError as exc:
                log.info("%s: balance check failed: %s", line.key, exc)
        # During a call the check waits: a USSD session can disturb some modems' audio.
        await line.ctx.clock.sleep(timers.balance_interval_s
                                   if line.state is not LineState.IN_CALL else 30.0)
