"""What a desk phone dials, read as a phone number: E.164, route class and mobile operator.

Pure: `phonenumbers` and its bundled metadata (no network, no clock). The box's country
and area code say how a number is read: in Russia `8 495 123-45-67` and `+7 495 ...` are the
same number, `8 10 44 ...` is international, and `123-45-67` dialled in Moscow is local.
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass, replace

import phonenumbers
from phonenumbers import PhoneNumberType, carrier, shortnumberinfo

from ..config.types import RouteClass

_SEPARATORS = re.compile(r"[\s\-().\u00a0/]")
_DIALLABLE = re.compile(r"\+?[0-9*#]{1,32}", re.ASCII)

# Emergency numbers per country, on top of phonenumbers' own short-number data. Russia:
# 112 (all services), 101 fire, 102 police, 103 ambulance, 104 gas, and the old 01-04.
_EMERGENCY: dict[str, frozenset[str]] = {
    "RU": frozenset({"112", "101", "102", "103", "104", "01", "02", "03", "04"}),
}
# GSM phones treat 112 and 911 as emergency numbers in every country (3GPP TS 22.101), and
# Russian networks route both; our lines are mostly SIMs, so they are always emergency here.
GSM_EMERGENCY = frozenset({"112", "911"})

# Operator names as phonenumbers, the modem (+COPS, long or numeric) or an admin write them,
# mapped to one key: 'MegaFon', 'МегаФон' and '25002' are all 'megafon'.
_OPERATORS: dict[str, str] = {
    "mts": "mts", "мтс": "mts", "mobiletelesystems": "mts", "25001": "mts",
    "megafon": "megafon", "мегафон": "megafon", "25002": "megafon",
    "beeline": "beeline", "билайн": "beeline", "vimpelcom": "beeline", "вымпелком": "beeline",
    "25099": "beeline",
    "tele2": "t2", "теле2": "t2", "t2": "t2", "т2": "t2", "25020": "t2",
    "yota": "yota", "йота": "yota", "25011": "yota",
    "motiv": "motiv", "мотив": "motiv", "25035": "motiv",
}
_OPERATOR_JUNK = re.compile(r"[\s\-_.,«»\"'()]")
# Shortest first would let 't2' claim 't2...' names only; longest first is unambiguous.
_OPERATOR_PREFIXES = sorted(_OPERATORS, key=len, reverse=True)

_LOCAL_TYPES = frozenset({PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE})


@dataclass(frozen=True)
class Dialling:
    """How the box reads dialled numbers: its country (ISO code) and its own area code."""

    country: str = "RU"
    area_code: str | None = None


@dataclass(frozen=True)
class DialledNumber:
    """A dialled number as routing sees it."""

    dialled: str  # separators removed ('' when it is not something a phone can dial)
    e164: str | None  # '+74951234567'; None for short codes and incomplete numbers
    route_class: RouteClass | None  # None: cannot tell (incomplete or not a number)
    emergency: bool = False
    operator: str | None = None  # operator key of a mobile number ('megafon'), a hint only
    area: str | None = None  # national destination code ('495', '916')
    national: str | None = None  # national significant number ('4951234567')
    places: tuple[str, ...] = ()  # where a fixed number is ('Moscow', 'г. Москва')
    why: str = ""


def clean(dialled: str) -> str:
    """The dialled string without separators; '' when it holds anything a phone cannot dial."""
    text = _SEPARATORS.sub("", dialled)
    return text if _DIALLABLE.fullmatch(text) else ""


def is_emergency(dialled: str, country: str) -> bool:
    """Whether `dialled` is an emergency number in `country` (or 112/911 anywhere)."""
    number = clean(dialled)
    if not number or not number.isdigit():
        return False
    if number in GSM_EMERGENCY or number in _EMERGENCY.get(country, frozenset()):
        return True
    try:
        return bool(shortnumberinfo.is_emergency_number(number, country))
    except Exception:  # phonenumbers has no data for an odd country code: not emergency
        return False


def emergency_numbers(country: str) -> frozenset[str]:
    """The emergency numbers we know for `country` (for configuration checks)."""
    return GSM_EMERGENCY | _EMERGENCY.get(country, frozenset())


def _parse(text: str, country: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException:
        return None


def parse_full(dialled: str, dialling: Dialling) -> phonenumbers.PhoneNumber | None:
    """The full number `dialled` means, or None (short codes, incomplete numbers).

    Tried as dialled (national `8 ...`, `8 10 ...`, `+...`), then with `00` read as the
    international prefix, then with the box's area code in front; a valid number wins over
    one that merely has the right length.
    """
    number = clean(dialled)
    if not number or "*" in number or "#" in number:
        return None
    candidates = [number]
    if number.startswith("00"):
        candidates.append("+" + number[2:])
    if dialling.area_code and not number.startswith("+"):
        candidates.append(dialling.area_code + number)
    parsed = [p for c in candidates if (p := _parse(c, dialling.country)) is not None]
    for p in parsed:
        if phonenumbers.is_valid_number(p):
            return p
    possible = phonenumbers.ValidationResult.IS_POSSIBLE
    for p in parsed:
        if phonenumbers.is_possible_number_with_reason(p) == possible:
            return p
    return None


def to_e164(dialled: str, dialling: Dialling) -> str | None:
    """`dialled` in E.164 ('+74951234567'), or None when it is not a full number."""
    parsed = parse_full(dialled, dialling)
    if parsed is None:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def national_digits(e164: str, dialling: Dialling) -> str:
    """How the number is dialled from the box's country, digits only ('84951234567',
    '81044...'), for lines that want national dialling; `e164` itself if unreadable."""
    parsed = _parse(e164, dialling.country)
    if parsed is None:
        return e164
    text = phonenumbers.format_out_of_country_calling_number(parsed, dialling.country)
    digits = "".join(ch for ch in text if ch.isdigit())
    return digits or e164


def operator_key(name: str | None) -> str | None:
    """One key per mobile operator, however it is written ('МТС', 'MTS RUS', '25001' -> 'mts');
    unknown names are compared as written (lower case, without spaces)."""
    if not name:
        return None
    compact = _OPERATOR_JUNK.sub("", name).casefold()
    if not compact:
        return None
    if compact in _OPERATORS:
        return _OPERATORS[compact]
    for alias in _OPERATOR_PREFIXES:
        if len(alias) >= 3 and compact.startswith(alias):
            return _OPERATORS[alias]
    return compact


def classify(dialled: str, dialling: Dialling, internal: Container[str] = ()) -> DialledNumber:
    """Read a dialled number: internal, emergency, service, local, mobile, long distance,
    international or premium, with its E.164 form and (for mobiles) its operator."""
    number = clean(dialled)
    if not number:
        return DialledNumber(dialled="", e164=None, route_class=None, why="not a number")
    # 112 and 911 reach emergency services even where an office numbered a phone so (the
    # configuration check refuses that); other short codes (101-104 ...) are the office's
    # own extensions when it uses them as such, the way Russian offices often number 1xx.
    if number in internal and number not in GSM_EMERGENCY:
        return DialledNumber(number, None, "internal", why="an internal number")
    if is_emergency(number, dialling.country):
        return DialledNumber(number, None, "emergency", emergency=True,
                             why="an emergency number")
    if "*" in number or "#" in number:
        return DialledNumber(number, None, "service", why="an operator code")
    parsed = parse_full(number, dialling)
    if parsed is None:
        if number.isdigit() and len(number) <= 6 and not _trunk_prefixed(number, dialling):
            return DialledNumber(number, None, "service", why="a short service number")
        return DialledNumber(number, None, None, why="not a full number")
    return _full(number, parsed, dialling)


def _trunk_prefixed(number: str, dialling: Dialling) -> bool:
    """Whether a short number begins like a long one ('8495' in Russia: still being dialled)."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(dialling.country)
    prefix = meta.national_prefix if meta is not None else None
    return bool(prefix) and number.startswith(prefix or "")


def _full(digits: str, parsed: phonenumbers.PhoneNumber, dialling: Dialling) -> DialledNumber:
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    nsn = phonenumbers.national_significant_number(parsed)
    area = nsn[:phonenumbers.length_of_national_destination_code(parsed)] or None
    region = phonenumbers.region_code_for_number(parsed)
    kind = phonenumbers.number_type(parsed)
    number = replace(DialledNumber(digits, e164, None), area=area, national=nsn)
    # +7 is shared by Russia and Kazakhstan: the region, not the country code, decides.
    if region != dialling.country:
        return replace(number, route_class="international",
                       why=f"a number in {region or 'another country'}")
    if kind == PhoneNumberType.MOBILE:
        # Carrier data is where the number range was issued; with number portability the
        # number may have moved to another operator since, so this is only a hint.
        name = carrier.name_for_number(parsed, "en")
        operator = operator_key(name)
        text = f" ({name})" if name else ""
        return replace(number, route_class="mobile", operator=operator,
                       why=f"a mobile number{text}")
    if kind == PhoneNumberType.PREMIUM_RATE:
        return replace(number, route_class="premium", why="a premium-rate number")
    if kind == PhoneNumberType.TOLL_FREE:
        return replace(number, route_class="service", why="a toll-free number")
    local = (kind in _LOCAL_TYPES and dialling.area_code is not None
             and nsn.startswith(dialling.area_code))
    if local:
        return replace(number, route_class="local",
                       why=f"a local number (area code {dialling.area_code})")
    return replace(number, route_class="long_distance", why="a long-distance number")


def places_of(e164: str | None) -> tuple[str, ...]:
    """Where a fixed number is ('Moscow', 'г. Москва'), in English and Russian.

    Looked up only when asked (a caller-ID rule naming a region by name): phonenumbers'
    geocoder data costs the engine about 90 MB of memory once loaded.
    """
    if not e164:
        return ()
    from phonenumbers import geocoder

    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ()
    return tuple(dict.fromkeys(
        p for lang in ("en", "ru") if (p := geocoder.description_for_number(parsed, lang))))
