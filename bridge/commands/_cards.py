"""Card numbers and phones typed on the command line, checked before processing sees them.

A typo caught here costs nothing; sent on, it costs a round trip and comes back as
"card not found", which sends the technician looking in the wrong place.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bridge.commands import UsageError
from bridge.loyalty.protocol import mask_card
from drivers.masking import mask_text

if TYPE_CHECKING:
    from bridge.barcodes import BarcodeSettings

_PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{5,30}$")


def checked_card(value: str, rules: BarcodeSettings, option: str = "CARD") -> str:
    """`value` stripped, or UsageError: empty, not a card number, or a wrong check digit."""
    card = value.strip()
    if not card:
        raise UsageError(f"{option} is empty: give the card number printed on the card")
    letters_allowed = any(r.check == "none" for r in rules.loyalty)  # a range without a check
    if (
        not (card.isascii() and card.isalnum())
        or len(card) > 64
        or (not card.isdigit() and not letters_allowed)
    ):
        raise UsageError(
            f"{option} {mask_text(card)!r} is not a card number: digits only,"
            " as printed on the card"
        )
    for rule in rules.loyalty:
        in_range = len(card) == rule.length and card.startswith(rule.prefix)
        if in_range and rule.check != "none" and not rule.matches(card, None):
            raise UsageError(
                f"{option} {mask_card(card)} fails its {rule.check.upper()} check digit"
                f" (cards {rule.prefix}... of {rule.length} digits carry one): check for a"
                " typo, or scan the card"
            )
    return card


def checked_phone(value: str) -> str:
    phone = value.strip()
    if not _PHONE.match(phone) or sum(c.isdigit() for c in phone) < 6:
        raise UsageError(f"phone {phone!r} is not a phone number: digits, e.g. +79161234567")
    return phone
