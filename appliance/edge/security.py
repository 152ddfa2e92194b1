"""The edge's front-door policy: bans, rate limits and scanner rejection (pure).

Every small PBX on the internet is hit by SIP scanners and password
guessers. Thresholds follow the anchors: fail2ban/Asterisk ban after 5-10
failed authentications, Kamailio's pike flags 16 requests in 2 s. Banned
and throttled sources get no answer at all (an answer confirms a PBX is
there). The clock is injected, so tests drive windows and expiry.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# User agents of the common SIP scanners (lower case, matched as substrings).
SCANNER_AGENTS = (
    "friendly-scanner", "sipvicious", "sipcli", "vaxsipuseragent", "sip-scan", "sipsak",
    "sundayddr", "iwar", "smap", "pplsip", "cafesip", "sipptk", "eyebeam-scan", "voip-scan",
)
MAX_TRACKED = 10_000
# User agents whose scanner verdict is remembered: an office has a few phone models, and the
# check is a dozen substring searches on every request.
MAX_AGENTS = 1024


@dataclass(frozen=True)
class GuardConfig:
    """Thresholds of the policy."""

    auth_failures: int = 8  # failed authentications per source within the window -> ban
    failure_window_s: float = 60.0
    ban_s: float = 900.0
    # Requests per source per rate window; twice pike's 16 because a desk phone that boots
    # registers, subscribes its busy lamps and retransmits in one burst.
    rate_limit: int = 32
    rate_window_s: float = 2.0
    scanner_agents: tuple[str, ...] = SCANNER_AGENTS


@dataclass(frozen=True)
class Ban:
    """One banned source address."""

    host: str
    until: float
    reason: str


class Guard:
    """Tracks sources; answers 'drop it?' for every request from the outside."""

    def __init__(self, config: GuardConfig, clock: Callable[[], float],
                 on_ban: Callable[[Ban], None] | None = None) -> None:
        self.config = config
        self.clock = clock
        self.on_ban = on_ban
        self._bans: dict[str, Ban] = {}
        # host -> (window start, requests in window); bounded, oldest evicted first.
        self._rates: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._failures: OrderedDict[str, list[float]] = OrderedDict()
        self._agents: dict[str, bool] = {}
        self.dropped = 0

    def banned(self, host: str) -> bool:
        """True while host is banned (expired bans are lifted here)."""
        ban = self._bans.get(host)
        if ban is None:
            return False
        if ban.until <= self.clock():
            del self._bans[host]
            return False
        return True

    def admit(self, host: str, user_agent: str | None, *, rate_limited: bool = True) -> bool:
        """Whether to process a request from host at all.

        `rate_limited=False` for a trunk's own address: a provider carrying many calls
        sends more than a phone, and dropping its requests would drop calls.
        """
        if self.banned(host):
            self.dropped += 1
            return False
        if user_agent and self.is_scanner(user_agent):
            self.ban(host, f"scanner user agent {user_agent[:40]!r}")
            self.dropped += 1
            return False
        if not rate_limited:
            return True
        now = self.clock()
        start, count = self._rates.pop(host, (now, 0))
        if now - start >= self.config.rate_window_s:
            start, count = now, 0
        count += 1
        self._rates[host] = (start, count)
        _trim(self._rates)
        if count > self.config.rate_limit:
            self.dropped += 1
            return False
        return True

    def is_scanner(self, user_agent: str) -> bool:
        """True for the user agents of known SIP scanners."""
        verdict = self._agents.get(user_agent)
        if verdict is None:
            agent = user_agent.lower()
            verdict = any(name in agent for name in self.config.scanner_agents)
            if len(self._agents) >= MAX_AGENTS:
                self._agents.clear()
            self._agents[user_agent] = verdict
        return verdict

    def auth_failed(self, host: str) -> bool:
        """Count a failed authentication; True if it got host banned."""
        now = self.clock()
        times = [t for t in self._failures.pop(host, []) if now - t < self.config.failure_window_s]
        times.append(now)
        self._failures[host] = times
        _trim(self._failures)
        if len(times) >= self.config.auth_failures:
            self.ban(host, f"{len(times)} failed authentications")
            del self._failures[host]
            return True
        return False

    def ban(self, host: str, reason: str) -> None:
        """Ban host for the configured time."""
        ban = Ban(host, self.clock() + self.config.ban_s, reason)
        self._bans[host] = ban
        if self.on_ban is not None:
            self.on_ban(ban)

    def unban(self, host: str) -> bool:
        """Lift a ban (the admin's action); True if there was one."""
        return self._bans.pop(host, None) is not None

    def bans(self) -> list[Ban]:
        """The bans in force."""
        return [b for b in list(self._bans.values()) if self.banned(b.host)]


def _trim(table: OrderedDict[str, Any]) -> None:
    while len(table) > MAX_TRACKED:
        table.popitem(last=False)
