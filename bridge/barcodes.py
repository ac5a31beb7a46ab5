"""What a scan is: loyalty card, product GTIN, weight/price item, marking code, or unknown.

The cashier scans everything with one scanner, so every scan has to be sorted before
the POS sees it.  Order matters: a loyalty card in a private EAN-13 range (20-29) would
otherwise look like a weight item, and a marking code starts like a GS1 GTIN.

GS1 parsing is biip's (`biip.parse`), check digits are python-stdnum's; we only add the
register-specific rules: loyalty ranges and weight templates from the config, and the
Russian marking codes (GS1 DataMatrix with AIs 01+21 and 91/92 or 93, and the 29
character tobacco pack code).  GS (0x1D) stays in `text`: the POS passes marking codes
on to the fiscal side byte for byte.  When a scanner has dropped the GS separators we
never cut the data at the first "91"/"92" digits (a serial can contain them); we accept
only the layouts whose field lengths are fixed by the marking rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from drivers.check_digits import ean_check_digit, ean_valid, luhn_check_digit, luhn_valid
from drivers.scanner.aim import split_aim

GS = "\x1d"
Kind = Literal["loyalty_card", "gtin", "weight_item", "marking_code", "unknown"]


class LoyaltyRule(BaseModel):
    """One range of loyalty cards: a prefix, a length, a check digit, optionally a symbology."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    prefix: str = Field(default="", pattern=r"^[0-9A-Za-z]*$")
    length: int = Field(ge=4, le=64)
    check: Literal["ean", "luhn", "none"] = "ean"
    symbology: str | None = Field(default=None, pattern=r"^\][A-Za-z][0-9A-Za-z]$")

    def matches(self, data: str, symbology: str | None) -> bool:
        if len(data) != self.length or not data.startswith(self.prefix):
            return False
        if self.symbology is not None and symbology is not None and symbology != self.symbology:
            return False
        if self.check == "ean":
            return data.isdigit() and ean_valid(data)
        if self.check == "luhn":
            return data.isdigit() and luhn_valid(data)
        return data.isascii() and data.isalnum()


class BarcodeSettings(BaseModel):
    """`[barcodes]` in the config."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    loyalty: list[LoyaltyRule] = Field(
        default_factory=lambda: [LoyaltyRule(prefix="2775", length=13, check="ean")]
    )
    # 13 characters: literal digits, P = PLU, W = weight in grams, $ = price in cents, C = check
    weight_templates: list[str] = Field(
        default_factory=lambda: ["20PPPPPWWWWWC", "21PPPPPWWWWWC", "22PPPPPWWWWWC", "23PPPPP$$$$$C"]
    )

    @field_validator("weight_templates")
    @classmethod
    def _templates(cls, value: list[str]) -> list[str]:
        for t in value:
            if not re.fullmatch(r"\d+P+(W+|\$+)C", t) or len(t) != 13:
                raise ValueError(
                    f"template {t!r}: expected 13 characters: prefix digits, P (PLU), "
                    "W (grams) or $ (cents), then C, e.g. 22PPPPPWWWWWC"
                )
        return value


@dataclass(frozen=True)
class Classification:
    kind: Kind
    text: str  # the payload without the AIM identifier, GS kept
    symbology: str | None = None
    gtin: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "symbology": self.symbology,
            "gtin": self.gtin,
            "text": self.text,
            **self.extra,
        }


class UnusableInput(ValueError):
    """Nothing to classify (empty, or control bytes only)."""


def classify(raw: str, settings: BarcodeSettings | None = None) -> Classification:
    settings = settings or BarcodeSettings()
    if not raw or not raw.strip("\r\n\t \x00"):
        raise UnusableInput("empty scan")
    aim = split_aim(raw.rstrip("\r\n"))
    data, sym = aim.data, aim.symbology
    for check in (_loyalty, _tobacco, _gs1_marking, _weight, _gtin):
        found = check(data, sym, settings)
        if found is not None:
            return found
    return Classification("unknown", data, sym, extra={"reason": _why_unknown(data, sym, settings)})


# ---------------------------------------------------------------------- rules


def _loyalty(data: str, sym: str | None, s: BarcodeSettings) -> Classification | None:
    for rule in s.loyalty:
        if rule.matches(data, sym):
            return Classification("loyalty_card", data, sym, extra={"card": data})
    return None


def _weight(data: str, sym: str | None, s: BarcodeSettings) -> Classification | None:
    if len(data) != 13 or not data.isdigit() or not ean_valid(data):
        return None
    for template in s.weight_templates:
        head = template[: template.index("P")]
        if not data.startswith(head):
            continue
        plu = "".join(d for d, t in zip(data, template, strict=True) if t == "P")
        extra: dict[str, Any] = {"plu": plu, "template": template}
        if "W" in template:
            grams = int("".join(d for d, t in zip(data, template, strict=True) if t == "W"))
            extra["weight_grams"] = grams
            extra["weight_kg"] = Decimal(grams) / 1000
        else:
            cents = int("".join(d for d, t in zip(data, template, strict=True) if t == "$"))
            extra["price"] = Decimal(cents) / 100
        return Classification("weight_item", data, sym, gtin=data.zfill(14), extra=extra)
    return None


def _gtin(data: str, sym: str | None, s: BarcodeSettings) -> Classification | None:
    if not data.isdigit():
        return None
    n = len(data)
    if n in (6, 7) or (n == 8 and sym == "]E0"):
        return _upc_e(data, sym)
    if n in (8, 12, 13, 14) and ean_valid(data):
        return Classification("gtin", data, sym, gtin=data.zfill(14))
    if n == 8 and sym is None:  # EAN-8 first; a UPC-E only when EAN-8's check digit fails
        return _upc_e(data, sym)
    return None


def _upc_e(data: str, sym: str | None) -> Classification | None:
    # lazy: biip builds its GS1 tables on import, ~16 MB of the service's RSS, and only a
    # scan needs it (a service without scanners, and every purchase, never does)
    from biip import ParseError
    from biip.upc import Upc

    try:
        upc = Upc.parse(data)
        expanded = upc.as_upc_a()
    except (ParseError, ValueError):
        return None
    return Classification(
        "gtin", data, sym, gtin=expanded.zfill(14), extra={"upc_e": data, "upc_a": expanded}
    )


# Tobacco pack: GTIN(14) + serial(7) + max retail price(4) + verification code(4), no AIs.
_TOBACCO = re.compile(r"^(\d{14})([!-~]{7})([!-~]{4})([!-~]{4})$")


def _tobacco(data: str, sym: str | None, s: BarcodeSettings) -> Classification | None:
    m = _TOBACCO.match(data)
    if m is None or not ean_valid(m.group(1)):
        return None
    return Classification(
        "marking_code",
        data,
        sym,
        gtin=m.group(1),
        extra={
            "marking": "tobacco_pack",
            "serial": m.group(2),
            "mrp": m.group(3),
            "verification": m.group(4),
        },
    )


# Layouts with fixed field lengths, for codes whose GS separators were lost on the way.
_NO_GS_LAYOUTS: list[tuple[re.Pattern[str], tuple[str, ...]]] = [
    (re.compile(r"^01(\d{14})21([!-~]{13})91([!-~]{4})92([!-~]{44})$"), ("01", "21", "91", "92")),
    (re.compile(r"^01(\d{14})21([!-~]{13})91([!-~]{4})92([!-~]{88})$"), ("01", "21", "91", "92")),
    (re.compile(r"^01(\d{14})21([!-~]{13})93([!-~]{4})$"), ("01", "21", "93")),
    (re.compile(r"^01(\d{14})21([!-~]{6})93([!-~]{4})$"), ("01", "21", "93")),
    (re.compile(r"^01(\d{14})21([!-~]{7})8005(\d{6})93([!-~]{4})$"), ("01", "21", "8005", "93")),
]


def _gs1_marking(data: str, sym: str | None, s: BarcodeSettings) -> Classification | None:
    if not data.startswith("01") or len(data) < 20:
        return None
    fields = _gs1_fields(data) if GS in data else _fixed_layout(data)
    if fields is None or "01" not in fields or "21" not in fields:
        return None
    if not ({"91", "92"} <= fields.keys() or "93" in fields):
        return None
    extra: dict[str, Any] = {"marking": "gs1", "serial": fields["21"]}
    for ai, name in (("91", "key_id"), ("92", "signature"), ("93", "verification")):
        if ai in fields:
            extra[name] = fields[ai]
    extra["ais"] = fields
    if GS not in data:
        extra["note"] = "GS separators missing; fields taken from their fixed lengths"
    return Classification("marking_code", data, sym, gtin=fields["01"], extra=extra)


def _gs1_fields(data: str) -> dict[str, str] | None:
    from biip import ParseConfig, ParseError  # lazy: ~16 MB, only scans need it (_upc_e)
    from biip.gs1_messages import GS1Message  # lazy: as above

    try:
        message = GS1Message.parse(
            data, config=ParseConfig(separator_chars=[GS], gs1_element_strings_verify_date=False)
        )
    except (ParseError, ValueError):
        return None
    return {es.ai.ai: es.value for es in message.element_strings}


def _fixed_layout(data: str) -> dict[str, str] | None:
    for layout, ais in _NO_GS_LAYOUTS:
        m = layout.match(data)
        if m is not None and ean_valid(m.group(1)):
            return dict(zip(ais, m.groups(), strict=True))
    return None


# ---------------------------------------------------------------------- reasons


def _why_unknown(data: str, sym: str | None, s: BarcodeSettings) -> str:
    """Why no rule took the scan, in words a technician can act on (never the data)."""
    for rule in s.loyalty:
        if len(data) == rule.length and data.startswith(rule.prefix) and _digits(data):
            if rule.check == "ean":
                return f"loyalty range {rule.prefix}: {_check_digit(data)}"
            if rule.check == "luhn":
                should = luhn_check_digit(data[:-1])
                return f"loyalty range {rule.prefix}: Luhn check digit should be {should}"
    if _digits(data):
        n = len(data)
        if n in (6, 7) or (n == 8 and sym == "]E0"):
            return f"UPC-E: {_upc_e_problem(data)}"
        if n == 8 and sym is None and data[0] in "01":
            return (
                f"check digit should be {ean_check_digit(data[:-1])} (EAN-8) or "
                f"{_upc_e_check(data[:7])} (UPC-E)"
            )
        if n in (8, 12, 13, 14):
            return _check_digit(data)
        return f"{n} digits: no GTIN, loyalty range or weight template has that length"
    gtin = _embedded_gtin(data)
    if gtin is not None and not ean_valid(gtin):
        return f"GTIN {_check_digit(gtin)}"
    if gtin is not None:
        return "GS1 data without a marking serial (21) and crypto tail (91+92 or 93)"
    return "matches no rule: not a loyalty card, GTIN, weight item or marking code"


def _embedded_gtin(data: str) -> str | None:
    """The GTIN a tobacco pack code or a GS1 string (AI 01) starts with, if it has one."""
    if _TOBACCO.match(data):
        return data[:14]
    if data.startswith("01") and len(data) > 16 and _digits(data[2:16]):
        return data[2:16]
    return None


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()  # str.isdigit alone accepts "²"


def _check_digit(digits: str) -> str:
    return f"check digit should be {ean_check_digit(digits[:-1])}"


def _upc_e_check(seven: str) -> str:
    from biip.upc import Upc  # lazy: ~16 MB, only scans need it (_upc_e)

    return Upc.parse(seven).as_upc_a()[-1]  # biip computes the check of a 7-digit UPC-E


def _upc_e_problem(data: str) -> str:
    if len(data) in (7, 8) and data[0] not in "01":
        return f"number system should be 0 or 1, not {data[0]}"
    if len(data) == 8:
        return f"check digit should be {_upc_e_check(data[:7])}"
    return "not a valid UPC-E"


def decode_escapes(raw: str) -> str:
    """`\\x1d`, `\\t`, `\\r`, `\\n` and `\\\\` in a command-line argument, as real characters."""
    out, i = [], 0
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            if nxt == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", raw[i + 2 : i + 4]):
                out.append(chr(int(raw[i + 2 : i + 4], 16)))
                i += 4
                continue
            simple = {"t": "\t", "r": "\r", "n": "\n", "\\": "\\"}.get(nxt)
            if simple is not None:
                out.append(simple)
                i += 2
                continue
        out.append(c)
        i += 1
    return "".join(out)
