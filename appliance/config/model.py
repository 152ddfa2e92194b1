"""Pydantic v2 models for everything an admin configures, and `BoxConfig`, the whole box.

This is the one validation layer: the YAML importer, the CLI, the REST API and the web
pages all build these models, so a mistake is reported the same way everywhere
(`ConfigError` with a path per problem). Field-level rules live on the models; rules that
need the whole configuration (references, unique extensions, loops) live in `validate.py`
and run when a `BoxConfig` is built.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)

from .destination import Destination, DestinationKind, optional_text
from .policies import (
    BlacklistEntry,
    CallerIdRule,
    CrmSettings,
    NotificationRule,
    NotificationSettings,
    OutboundRoute,
    RepeatCallerSettings,
    Smtp,
    Webhook,
    WebhookEvent,
)
from .types import (
    ConfigModel,
    Digit,
    Email,
    Extension,
    Host,
    HostPort,
    IsoDate,
    Key,
    Md5Hex,
    Name,
    Options,
    Period,
    Phone,
    RecordingPolicy,
    RelativePath,
    RouteClass,
    Sha256Hex,
    SipUri,
    SipUser,
    TimeZoneName,
    Weekday,
    int_keys_to_text,
    sip_ha1,
)

__all__ = [
    "BlacklistEntry", "BoxConfig", "BoxSettings", "CallFlow", "CallerIdRule", "ChainStep",
    "ConfigModel", "CrmSettings", "Department", "Destination", "DestinationKind", "Device",
    "Employee", "FlowBranch", "ForwardingChain", "FxoGatewayLine", "Holiday", "HolidaySet",
    "Line", "NotificationRule", "NotificationSettings", "Number", "OutboundRoute", "Prompt",
    "Queue", "RepeatCallerSettings", "Schedule", "SimLine", "SipTrunkLine", "Smtp",
    "SpecialDate", "VoiceMenu", "VoicemailBox", "Webhook", "WebhookEvent",
]


# -- people ----------------------------------------------------------------------------------

Codec = Literal["opus", "g722", "pcma", "pcmu", "gsm", "speex"]
DEFAULT_ROUTES: tuple[RouteClass, ...] = (
    "internal", "local", "mobile", "long_distance", "emergency", "service",
)


def check_sip_password(password: str, username: str) -> None:
    """Refuse SIP passwords that scanners on the internet guess in minutes."""
    if len(password) < 8:
        raise ValueError("a SIP password needs at least 8 characters")
    if len(password) > 128:
        raise ValueError("a SIP password has at most 128 characters")
    if not password.isascii() or not password.isprintable():
        raise ValueError("a SIP password uses printable latin characters only "
                         "(phones cannot type others)")
    if username.lower() in password.lower():
        raise ValueError("a SIP password must not contain the user name")


class Device(ConfigModel):
    """A desk phone or softphone of an employee (one SIP account)."""

    username: SipUser
    kind: Literal["desk_phone", "softphone"] = "desk_phone"
    label: str | None = Field(default=None, max_length=100)
    # Input only: turned into the digests below on import, never stored or exported.
    password: SecretStr | None = Field(default=None, exclude=True)
    realm: str | None = Field(default=None, max_length=64)
    ha1_md5: Md5Hex | None = None
    ha1_sha256: Sha256Hex | None = None
    static_contact: SipUri | None = None
    # Digest challenges: "sha256" offers SHA-256 then MD5 (RFC 8760); "md5" offers MD5 alone,
    # for phones that read only the first challenge or fail on SHA-256.
    auth: Literal["sha256", "md5"] = "sha256"
    codecs: list[Codec] = Field(default_factory=list)
    recording: RecordingPolicy = "default"
    enabled: bool = True

    @model_validator(mode="after")
    def _credentials(self) -> Device:
        password = self.password.get_secret_value() if self.password is not None else None
        digests = (self.ha1_md5, self.ha1_sha256, self.realm)
        if password is not None and any(d is not None for d in digests):
            raise ValueError("give either `password` or the digests (ha1_md5, ha1_sha256, realm)")
        if any(d is not None for d in digests) and not all(d is not None for d in digests):
            raise ValueError("ha1_md5, ha1_sha256 and realm go together (as `pbx config export` "
                             "writes them); or give a `password` instead")
        if password is None and self.ha1_md5 is None and self.static_contact is None:
            raise ValueError("a device that registers needs a `password` (a device that does "
                             "not register needs a `static_contact`)")
        if password is not None:
            check_sip_password(password, self.username)
        if len(set(self.codecs)) != len(self.codecs):
            raise ValueError("a codec is listed twice")
        return self

    def hashed(self, realm: str) -> Device:
        """A copy holding HA1 digests for `realm` instead of the plain password."""
        if self.password is None:
            return self
        password = self.password.get_secret_value()
        return self.model_copy(update={
            "password": None,
            "realm": realm,
            "ha1_md5": sip_ha1(self.username, realm, password, "MD5"),
            "ha1_sha256": sip_ha1(self.username, realm, password, "SHA-256"),
        })


def _never(value: Any) -> Any:
    # 'never' (or false) rather than null, so that an export keeps it (nulls are left out).
    return None if value == "never" or value is False else value


class Employee(ConfigModel):
    """A person with an extension, devices and mobile numbers."""

    extension: Extension
    name: Name
    role: Literal["administrator", "user"] = "user"
    email: Email | None = None
    mobiles: list[Phone] = Field(default=[], max_length=5)
    devices: list[Device] = Field(default=[], max_length=10)
    dnd: bool = False
    # Seconds after the desk devices start ringing before the mobiles join, or 'never'.
    ring_mobile_after: Annotated[int | None, BeforeValidator(_never)] = Field(
        default=10, ge=0, le=300)
    no_answer_timeout: int = Field(default=30, ge=5, le=600)
    call_waiting: bool = True
    recording: RecordingPolicy = "default"
    allowed_routes: list[RouteClass] = Field(default_factory=lambda: list(DEFAULT_ROUTES))
    # A mobile that answers must press 1 before it gets the call, so that the mobile's own
    # voicemail (which answers too) cannot swallow it.
    confirm_mobile: bool = False
    enabled: bool = True
    # Outgoing calls a working day this employee plans (cold calling); the reports compare
    # the day's outgoing calls with it. None: no plan.
    daily_call_plan: int | None = Field(default=None, ge=1, le=1000)

    @field_serializer("ring_mobile_after")
    def _show_never(self, value: int | None) -> int | str:
        return "never" if value is None else value

    @field_validator("mobiles", "allowed_routes")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("an entry is listed twice")
        return values


GroupStrategy = Literal[
    "all_at_once", "one_after_another", "cascading", "longest_idle", "fewest_calls",
    "random", "round_robin_memory", "fixed_order",
]
QueueStrategy = Literal[
    "all_at_once", "longest_idle", "fewest_calls", "random", "round_robin_memory",
    "fixed_order",
]


class Department(ConfigModel):
    """A group of employees with a short number and a distribution strategy."""

    key: Key
    name: Name
    extension: Extension | None = None
    strategy: GroupStrategy = "all_at_once"
    members: list[Extension] = Field(default=[], max_length=100)
    ring_delay: int = Field(default=10, ge=1, le=120)
    member_timeout: int = Field(default=20, ge=5, le=300)
    timeout: int = Field(default=60, ge=5, le=3600)
    call_waiting: Literal["skip_busy", "ring_busy"] = "skip_busy"
    recording: RecordingPolicy = "default"
    overflow: Destination | None = None


class VoicemailBox(ConfigModel):
    """An answering machine; messages are e-mailed to `email`."""

    key: Key
    name: Name
    extension: Extension | None = None
    owner: Extension | None = None
    greeting: Key | None = None
    email: list[Email] = Field(default=[], max_length=20)
    attach_audio: bool = True
    max_message: int = Field(default=180, ge=10, le=3600)
    language: Literal["ru", "en"] | None = None  # of its e-mails; None: the box's language


class Prompt(ConfigModel):
    """An audio file (greeting, menu, music on hold) under the data directory."""

    key: Key
    name: str = Field(default="", max_length=100)
    file: RelativePath
    language: Literal["ru", "en"] | None = None


# -- lines -----------------------------------------------------------------------------------



class _LineBase(ConfigModel):
    key: Key
    name: str = Field(default="", max_length=100)
    enabled: bool = True
    operator: str | None = Field(default=None, max_length=50)
    cost_per_minute: float | None = Field(default=None, ge=0, le=10000)
    options: Options = Field(default={}, max_length=50)

    @model_serializer(mode="wrap")
    def _kind_first(self, handler: SerializerFunctionWrapHandler) -> Any:
        # `kind` is declared by each subclass (it is the union tag), so it would come last.
        data = handler(self)
        if isinstance(data, dict) and "kind" in data:
            return {"key": data.pop("key"), "kind": data.pop("kind"), **data}
        return data


def _digits(value: str | None, low: int, high: int, what: str) -> str | None:
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and low <= len(value) <= high):
        size = f"{low}-{high}" if low != high else str(low)
        raise ValueError(f"{what} is {size} digits")
    return value


class SimLine(_LineBase):
    """A SIM card in a GSM/LTE modem: one call at a time, SMS, USSD."""

    kind: Literal["sim"]
    imei: Annotated[str | None, BeforeValidator(optional_text)] = None
    iccid: Annotated[str | None, BeforeValidator(optional_text)] = None
    pin: SecretStr | None = Field(default=None, exclude=True)
    usb_path: str | None = Field(default=None, max_length=200)
    simulated: bool = False
    sms: bool = True
    ussd_balance: str | None = Field(default=None, pattern=r"^[0-9*#]{2,20}$")

    @field_validator("imei")
    @classmethod
    def _imei(cls, value: str | None) -> str | None:
        return _digits(value, 15, 15, "an IMEI")

    @field_validator("iccid")
    @classmethod
    def _iccid(cls, value: str | None) -> str | None:
        return _digits(value, 18, 22, "an ICCID")

    @field_validator("pin")
    @classmethod
    def _pin(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _digits(value.get_secret_value(), 4, 8, "a SIM PIN")
        return value


class SipTrunkLine(_LineBase):
    """A SIP provider account: the box registers to it; several channels; DIDs as numbers."""

    kind: Literal["sip_trunk"]
    host: Host
    port: int | None = Field(default=None, ge=1, le=65535)
    transport: Literal["udp", "tcp", "tls"] = "udp"
    username: str | None = Field(default=None, max_length=100)
    auth_username: str | None = Field(default=None, max_length=100)
    secret: SecretStr | None = Field(default=None, exclude=True)
    registration: bool = True  # the box registers to the provider
    from_domain: Host | None = None
    outbound_proxy: HostPort | None = None  # host or host:port; requests go there first
    channels: int = Field(default=2, ge=1, le=256)


class FxoGatewayLine(_LineBase):
    """Analog lines through an FXO-to-SIP gateway (it registers to the box by default)."""

    kind: Literal["fxo_gateway"]
    host: Host | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    transport: Literal["udp", "tcp", "tls"] = "udp"
    username: str | None = Field(default=None, max_length=100)
    secret: SecretStr | None = Field(default=None, exclude=True)
    registration: bool = False  # the box registers to the gateway (usually the reverse)
    channels: int = Field(default=1, ge=1, le=64)

    @model_validator(mode="after")
    def _reachable(self) -> FxoGatewayLine:
        if self.host is None and self.username is None:
            raise ValueError("give the gateway's `username` (it registers to the box) or its "
                             "`host` (the box sends calls to it)")
        if self.registration and self.host is None:
            raise ValueError("`registration: true` needs the gateway's `host`")
        return self


Line = Annotated[SimLine | SipTrunkLine | FxoGatewayLine, Field(discriminator="kind")]


class Number(ConfigModel):
    """An incoming number (SIM number, trunk DID, FXO line) and the flow its calls follow."""

    number: Phone
    line: Key | None = None
    flow: Key
    label: str | None = Field(default=None, max_length=100)
    # Tells where the caller found the number (one number per advertising channel).
    ad_source: str | None = Field(default=None, max_length=100)
    # Region (area code) the number belongs to, for "caller ID of the callee's region".
    region: str | None = Field(default=None, max_length=50)
    recording: RecordingPolicy = "default"
    repeat_caller: bool = True
    enabled: bool = True


# -- schedules and flows ---------------------------------------------------------------------


class SpecialDate(ConfigModel):
    """A one-off date: closed (no hours) or open with its own hours."""

    date: IsoDate
    hours: list[Period] = Field(default=[], max_length=10)
    note: str | None = Field(default=None, max_length=200)


class Holiday(ConfigModel):
    """One date of a holiday set."""

    date: IsoDate
    name: str = Field(default="", max_length=100)


class HolidaySet(ConfigModel):
    """Named list of public holidays shared by schedules."""

    key: Key
    name: str = Field(default="", max_length=100)
    dates: list[Holiday] = Field(default=[], max_length=400)


class Schedule(ConfigModel):
    """Working hours per weekday in a time zone, with holidays, one-off dates and an override."""

    key: Key
    name: str = Field(default="", max_length=100)
    time_zone: TimeZoneName | None = None  # None: the box's time zone
    hours: dict[Weekday, list[Period]] = Field(default_factory=dict)
    holidays: list[Key] = Field(default_factory=list)
    dates: list[SpecialDate] = Field(default=[], max_length=400)
    override: Literal["auto", "open", "closed"] = "auto"


FlowCondition = Literal["always", "open", "closed", "holiday", "backup"]


class FlowBranch(ConfigModel):
    """One branch of a call flow: when it applies, an optional greeting, the destination."""

    when: FlowCondition = "always"
    greeting: Key | None = None
    to: Destination


class CallFlow(ConfigModel):
    """What happens to a call to a number: branches by schedule state, first match wins."""

    key: Key
    name: str = Field(default="", max_length=100)
    schedule: Key | None = None
    description: str | None = Field(default=None, max_length=500)
    branches: list[FlowBranch] = Field(min_length=1, max_length=10)

    @model_validator(mode="after")
    def _covered(self) -> CallFlow:
        whens = [b.when for b in self.branches]
        if self.schedule is None and set(whens) - {"always", "backup"}:
            raise ValueError("'open', 'closed' and 'holiday' branches need a `schedule`")
        if len(set(whens)) != len(whens):
            raise ValueError("two branches have the same `when`; only the first would be used")
        if "always" in whens and whens.index("always") != len(whens) - 1:
            raise ValueError("the 'always' branch must be the last one (later ones never run)")
        if "always" not in whens and not {"open", "closed"} <= set(whens):
            raise ValueError("calls must go somewhere both in and out of hours: add 'open' and "
                             "'closed' branches, or an 'always' branch")
        return self


_STEP_KINDS = frozenset({"employee", "department", "queue", "external", "sip_uri"})


class ChainStep(ConfigModel):
    """A step of a forwarding chain: ring `to` for `timeout` seconds, then move on."""

    to: Destination
    timeout: int = Field(default=20, ge=1, le=600)

    @field_validator("to")
    @classmethod
    def _rings(cls, value: Destination) -> Destination:
        if value.kind not in _STEP_KINDS:
            raise ValueError(f"a step rings someone (employee, department, queue, external, "
                             f"sip_uri); put '{value.kind}' in `final`")
        return value


class ForwardingChain(ConfigModel):
    """Ordered steps with timeouts, then a mandatory final destination (never "nowhere")."""

    key: Key
    name: str = Field(default="", max_length=100)
    steps: list[ChainStep] = Field(default=[], max_length=20)
    final: Destination

    @field_validator("final")
    @classmethod
    def _final(cls, value: Destination) -> Destination:
        if value.kind in ("hangup", "webhook"):
            raise ValueError("a chain must end where the call is taken (voicemail, a person, "
                             f"a department ...), not '{value.kind}'")
        return value


# YAML reads `1:` as the integer 1; menu keys are the characters a caller presses.
KeyMap = Annotated[dict[Digit, Destination], BeforeValidator(int_keys_to_text)]


class VoiceMenu(ConfigModel):
    """IVR: greeting, keys to destinations, direct extension dialling, default on timeout."""

    key: Key
    name: str = Field(default="", max_length=100)
    extension: Extension | None = None
    greeting: Key | None = None
    invalid_greeting: Key | None = None
    timeout: int = Field(default=5, ge=1, le=60)
    invalid_retries: int = Field(default=2, ge=0, le=10)
    direct_dial: bool = True
    parent: Key | None = None
    keys: KeyMap = Field(default_factory=dict)
    default: Destination


class Queue(ConfigModel):
    """Callers wait (music, position announcements, keys) until an agent is free."""

    key: Key
    name: str = Field(default="", max_length=100)
    extension: Extension | None = None
    strategy: QueueStrategy = "longest_idle"
    agents: list[Extension] = Field(default=[], max_length=100)
    music_on_hold: Key | None = None
    announce_position: bool = True
    announce_every: int = Field(default=30, ge=10, le=600)
    max_wait: int = Field(default=300, ge=10, le=7200)
    max_callers: int | None = Field(default=None, ge=1, le=500)
    agent_timeout: int = Field(default=20, ge=5, le=300)
    wrapup: int = Field(default=10, ge=0, le=600)
    skip_waiting: bool = False
    service_level: int = Field(default=20, ge=1, le=600)
    recording: RecordingPolicy = "default"
    overflow: Destination
    keys: KeyMap = Field(default_factory=dict)


class BoxSettings(ConfigModel):
    """Box-wide settings."""

    name: Name = "Office PBX"
    time_zone: TimeZoneName = "Europe/Moscow"
    country: str = Field(default="RU", pattern=r"^[A-Z]{2}$")
    # The box's own area code ('495'): short local numbers dialled without it get it added.
    area_code: str | None = Field(default=None, pattern=r"^[0-9]{1,5}$")
    language: Literal["ru", "en"] = "ru"
    sip_realm: str = Field(default="office-pbx", pattern=r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,63}$")
    day_night: Literal["auto", "day", "night"] = "auto"
    # What `default` means at the top of the recording chain: every call recorded.
    recording: Literal["always", "never"] = "always"
    # A prompt played to callers on hold; none: the box's own synthesised music.
    music_on_hold: Key | None = None


# Stored one per row in box_settings, by field name.
BOX_SETTINGS = tuple(BoxSettings.model_fields)


class BoxConfig(ConfigModel):
    """The whole configuration of a box, as one YAML document."""

    # Required, so that an empty or unrelated YAML file is never taken for "no configuration"
    # (importing that would delete every employee).
    version: Literal[1]
    box: BoxSettings = Field(default_factory=BoxSettings)
    prompts: list[Prompt] = Field(default=[], max_length=1000)
    employees: list[Employee] = Field(default=[], max_length=5000)  # benchmarks load 1000+ users
    departments: list[Department] = Field(default=[], max_length=200)
    lines: list[Line] = Field(default=[], max_length=64)
    numbers: list[Number] = Field(default=[], max_length=1000)
    schedules: list[Schedule] = Field(default=[], max_length=100)
    holiday_sets: list[HolidaySet] = Field(default=[], max_length=50)
    flows: list[CallFlow] = Field(default=[], max_length=500)
    forwarding_chains: list[ForwardingChain] = Field(default=[], max_length=500)
    voice_menus: list[VoiceMenu] = Field(default=[], max_length=200)
    queues: list[Queue] = Field(default=[], max_length=100)
    voicemail_boxes: list[VoicemailBox] = Field(default=[], max_length=1000)
    blacklist: list[BlacklistEntry] = Field(default=[], max_length=100000)
    repeat_caller: RepeatCallerSettings = Field(default_factory=RepeatCallerSettings)
    outbound_routes: list[OutboundRoute] = Field(default=[], max_length=200)
    caller_id_rules: list[CallerIdRule] = Field(default=[], max_length=200)
    crm: list[CrmSettings] = Field(default=[], max_length=10)
    webhooks: list[Webhook] = Field(default=[], max_length=50)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)

    @model_validator(mode="after")
    def _whole(self, info: ValidationInfo) -> BoxConfig:
        # Raises ConfigError (not ValueError, so pydantic lets it through unchanged) listing
        # every cross-reference problem. Skipped for data read back from the database.
        from .validate import cross_check

        context = info.context or {}
        if not context.get("from_database"):
            cross_check(self)
            realm = self.box.sip_realm
            for employee in self.employees:
                employee.devices = [device.hashed(realm) for device in employee.devices]
        return self
