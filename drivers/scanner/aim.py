"""AIM symbology identifiers (ISO/IEC 15424): `]` + code character + modifier.

Scanners can be told to put `]E0` (EAN-13), `]C1` (GS1-128), `]d2` (GS1 DataMatrix),
`]Q3` (GS1 QR) in front of every scan.  The POS needs to know a GS1 DataMatrix marking
code from a plain Code 128 with the same digits, so we take the identifier off and pass
it on.  biip knows the table of code characters; we only add the rule that a modifier
must be present, because `]C` followed by data is ambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class AimSplit:
    symbology: str | None  # e.g. "]E0"; None when the scan carries no identifier
    name: str | None  # e.g. "EAN_UPC", "GS1_DATAMATRIX"
    data: str


def split_aim(text: str) -> AimSplit:
    """Take a leading AIM identifier off `text`; text without one comes back unchanged."""
    if len(text) < 3 or text[0] != "]":
        return AimSplit(None, None, text)
    # every identifier but the system-expansion one ("]Y") is exactly three characters,
    # so those can be looked up once per identifier instead of once per scan
    known = _identify(text[:3] if text[1] != "Y" else text[:12])
    if known is None:
        return AimSplit(None, None, text)
    value, name = known
    return AimSplit(value, name, text[len(value) :])


@lru_cache(maxsize=512)
def _identify(head: str) -> tuple[str, str] | None:
    # lazy: importing biip builds all its GS1 tables (~16 MB of RSS); a register whose
    # scanners send no AIM identifiers, and the service's purchases, never need them
    from biip import ParseError
    from biip.symbology import SymbologyIdentifier

    try:
        ident = SymbologyIdentifier.extract(head)
    except (ParseError, ValueError, IndexError):  # biip raises ValueError on "]Yx"
        return None
    modifiers = ident.modifiers
    if not modifiers or not all(c.isascii() and c.isalnum() for c in modifiers):
        return None
    if head[1] == "Y" and len(modifiers) != int(modifiers[0]) + 1:
        return None  # system expansion cut short: "]Y9" promises ten modifier characters
    gs1 = ident.gs1_symbology
    return ident.value, gs1.name if gs1 is not None else ident.iso_symbology.name
