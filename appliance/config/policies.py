"""Models for box-wide policies (blacklist, repeat callers, outbound routing, caller ID) and
integrations (CRM, webhooks, notifications)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from .destination import Destination
from .types import (
    ConfigModel,
    DialPattern,
    Email,
    Extension,
    Host,
    Key,
    Options,
    Phone,
    RouteClass,
    Url,
    int_keys_to_text,
    normalize_email,
    normalize_key,
    normalize_phone,
)


class BlacklistEntry(ConfigModel):
    """A blocked number; the reason is mandatory."""

    number: Phone
    reason: str = Field(max_length=500)
    added_by: str | None = Field(default=None, max_length=100)

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a reason is mandatory: say why this number is blocked")
        return value


class RepeatCallerSettings(ConfigModel):
    """Repeat-caller routing (ICM): send known callers to their manager first."""

    enabled: bool = False
    sources: list[str] = Field(default_factory=lambda: ["call_history"])
    exceptions: list[Extension] = Field(default_factory=list)
    local_area_code: str | None = Field(default=None, pattern=r"^[0-9]{1,5}$")
    ring_mobiles: bool = False
    lookback_days: int = Field(default=90, ge=1, le=3650)
    answer_timeout: int = Field(default=20, ge=5, le=120)
    default: Destination | None = None

    @field_validator("sources")
    @classmethod
    def _sources(cls, values: list[str]) -> list[str]:
        for value in values:
            if value != "call_history" and not value.startswith("crm:"):
                raise ValueError(f"{value!r}: a source is 'call_history' or 'crm:<key>'")
            if value.startswith("crm:"):
                normalize_key(value[4:])
        if len(set(values)) != len(values):
            raise ValueError("a source is listed twice")
        return values


class OutboundRoute(ConfigModel):
    """Calls dialled by staff that match `pattern` go out through `lines`."""

    key: Key
    name: str = Field(default="", max_length=100)
    pattern: DialPattern
    route_class: RouteClass
    line_choice: Literal["pattern_order", "same_operator", "least_cost", "round_robin"] = (
        "pattern_order"
    )
    lines: list[Key] = Field(min_length=1, max_length=32)
    failover: bool = True
    strip: int = Field(default=0, ge=0, le=15)
    prepend: str = Field(default="", pattern=r"^\+?[0-9]{0,15}$")
    enabled: bool = True

    @field_validator("lines")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("a line is listed twice")
        return values


class CallerIdRule(ConfigModel):
    """Which number the callee sees for outgoing calls (first matching rule wins)."""

    pattern: DialPattern | None = None
    route: Key | None = None
    mode: Literal["line_number", "fixed", "callee_region", "previous_contact", "withheld"]
    number: Phone | None = None

    @model_validator(mode="after")
    def _number(self) -> CallerIdRule:
        if (self.mode == "fixed") != (self.number is not None):
            raise ValueError("`number` is given exactly when mode is 'fixed'")
        return self



class CrmSettings(ConfigModel):
    """A CRM the box syncs contacts from and sends call events to."""

    key: Key
    name: str = Field(default="", max_length=100)
    adapter: Literal["generic_webhook", "amocrm", "bitrix24"]
    enabled: bool = True
    base_url: Url
    api_secret: SecretStr | None = Field(default=None, exclude=True)
    signing_secret: SecretStr | None = Field(default=None, exclude=True)
    sync_interval: int = Field(default=300, ge=30, le=86400)
    callback_deadline: int = Field(default=60, ge=1, le=10080)  # minutes for "call back" tasks
    users: dict[Annotated[str, Field(min_length=1, max_length=64)], Extension] = Field(
        default_factory=dict)
    options: Options = Field(default={}, max_length=50)

    @field_validator("users", mode="before")
    @classmethod
    def _user_ids(cls, value: Any) -> Any:
        return int_keys_to_text(value)


WebhookEvent = Literal[
    "call.started", "call.answered", "call.ended", "call.missed", "voicemail.new",
    "sms.received", "callback.requested", "line.down",
]


class Webhook(ConfigModel):
    """An outgoing webhook: JSON events signed with HMAC-SHA256 (and a call destination)."""

    key: Key
    name: str = Field(default="", max_length=100)
    url: Url
    secret: SecretStr | None = Field(default=None, exclude=True)
    events: list[WebhookEvent] = Field(default_factory=list)
    enabled: bool = True
    timeout: int = Field(default=10, ge=1, le=60)


class Smtp(ConfigModel):
    """The mail server notifications are sent through."""

    host: Host
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str | None = Field(default=None, max_length=200)
    password: SecretStr | None = Field(default=None, exclude=True)
    from_address: Email


class NotificationRule(ConfigModel):
    """Who hears about an event, by e-mail or by SMS through the box's own SIM."""

    event: Literal["missed_call", "voicemail", "low_balance", "line_down", "blocked_call"]
    channel: Literal["email", "sms"]
    to: list[str] = Field(default=[], max_length=20)
    responsible_manager: bool = False

    @model_validator(mode="after")
    def _recipients(self) -> NotificationRule:
        normalize = normalize_email if self.channel == "email" else normalize_phone
        self.to = [normalize(v) for v in self.to]
        if not self.to and not self.responsible_manager:
            raise ValueError("give recipients in `to` or set `responsible_manager: true`")
        return self


class NotificationSettings(ConfigModel):
    """Notification settings: mail server, SMS line, low-balance threshold, rules."""

    smtp: Smtp | None = None
    sms_line: Key | None = None
    low_balance_threshold: float | None = None
    rules: list[NotificationRule] = Field(default=[], max_length=50)
