"""The SIM balance in an operator's USSD text ("Баланс: 123,45 р."). Pure.

Operators word it every which way, so the parser looks for an amount with a currency, and
prefers the one after a balance keyword ("баланс", "остаток", "balance", "на счете"). A bare
number counts only right after such a keyword, so dates, phone numbers and tariff prices
elsewhere in the text are not taken for the balance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

_SPACES = " \u00a0\u202f\u2009"
_KEYWORD = re.compile(
    r"баланс|остаток|на\s+сч[её]т[уе]?|сч[её]т|balance|balans|ostatok|na\s+schetu", re.I)
# A minus sign glued to the digits ("-12.30", "−5"), or the word; a spaced dash is punctuation.
_AMOUNT = re.compile(
    r"(?P<sign>[-−](?=\d)|минус\s+|minus\s+)?"
    r"(?P<num>\d{1,3}(?:[" + _SPACES + r"]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d+)*)",
    re.I)
_CURRENCY_AFTER = re.compile(
    r"[" + _SPACES + r"]*(?P<cur>руб(?:лей|ля|ль|\.)?|р(?:\.|\b)|₽|rub\b|rur\b|r\.|р$"
    r"|грн|uah\b|тг\b|тенге|kzt\b|byn\b|usd\b|\$|eur\b|€)",
    re.I)
_CURRENCY_BEFORE = re.compile(r"(?P<cur>\$|€|RUB|USD|EUR)[" + _SPACES + r"]*$", re.I)
_KOPECKS = re.compile(r"[" + _SPACES + r"]*(?P<kop>\d{1,2})[" + _SPACES + r"]*(?:коп|k\.)", re.I)
_CODES = {
    "р": "RUB", "руб": "RUB", "₽": "RUB", "rub": "RUB", "rur": "RUB", "r": "RUB",
    "грн": "UAH", "uah": "UAH", "тг": "KZT", "тенге": "KZT", "kzt": "KZT", "byn": "BYN",
    "usd": "USD", "$": "USD", "eur": "EUR", "€": "EUR",
}
# Right after a keyword: "Баланс: ", "balance is ", "Ваш баланс составляет ".
_NEAR = 24


@dataclass(frozen=True)
class Balance:
    """An amount found in the text, with its currency when the text names one."""

    amount: Decimal
    currency: str | None


def _currency_code(token: str) -> str:
    key = token.lower().rstrip(".")
    if key.startswith("руб"):
        key = "руб"
    return _CODES.get(key, key.upper())


def _to_decimal(number: str) -> Decimal | None:
    digits = "".join(ch for ch in number if ch not in _SPACES)
    separators = [ch for ch in digits if ch in ".,"]
    if separators:
        last = max(digits.rfind("."), digits.rfind(","))
        tail = digits[last + 1:]
        if len(set(separators)) == 2 or (len(separators) == 1 and len(tail) != 3):
            whole = digits[:last].replace(".", "").replace(",", "")
            digits = f"{whole}.{tail}"
        else:
            # "1,234" or "1.234.567": thousands separators only.
            digits = digits.replace(".", "").replace(",", "")
    if len(digits.replace(".", "")) > 12:
        return None
    try:
        return Decimal(digits)
    except InvalidOperation:
        return None


@dataclass(frozen=True)
class _Candidate:
    start: int
    amount: Decimal
    currency: str | None


def _candidates(text: str) -> list[_Candidate]:
    out: list[_Candidate] = []
    for match in _AMOUNT.finditer(text):
        amount = _to_decimal(match["num"])
        if amount is None:
            continue
        currency: str | None = None
        after = _CURRENCY_AFTER.match(text, match.end())
        if after:
            currency = _currency_code(after["cur"])
            kop = _KOPECKS.match(text, after.end())
            if kop and amount == amount.to_integral_value():
                amount += Decimal(kop["kop"]) / 100
        else:
            before = _CURRENCY_BEFORE.search(text, 0, match.start())
            if before:
                currency = _currency_code(before["cur"])
        if match["sign"]:
            amount = -amount
        out.append(_Candidate(match.start(), amount, currency))
    return out


def parse_balance(text: str) -> Balance | None:
    """The balance in text, or None when it holds no amount we can trust."""
    if not text:
        return None
    candidates = _candidates(text)
    if not candidates:
        return None
    keyword = _KEYWORD.search(text)
    if keyword:
        for cand in candidates:
            if cand.start < keyword.start():
                continue
            if cand.currency is not None:
                return Balance(cand.amount, cand.currency)
            between = text[keyword.end():cand.start]
            if len(between) <= _NEAR and not any(ch.isdigit() for ch in between):
                return Balance(cand.amount, None)
    for cand in candidates:
        if cand.currency is not None:
            return Balance(cand.amount, cand.currency)
    return None
