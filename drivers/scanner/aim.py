"""AIM symbology identifiers (ISO/IEC 15424): `]` + code character + modifier.

Scanners can be told to put `]E0` (EAN-13), `]C1` (GS1-128), `]d2` (GS1 DataMatrix),
`]Q3` (GS1 QR) in front of every scan.  The POS needs to know a GS1 DataMatrix marking
code from a plain Code 128 with the same digits, so we take the identifier off and pass
it on.  biip knows the table of code characters; we only add the rule that a modifier
must be present, because `]C` followed by data is ambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

from biip import ParseError
from biip.symbology import SymbologyIdentifier


@dataclass(frozen=True)
class AimSplit:
    symbology: str | None  # e.g. "]E0"; None when the scan carries no identifier
    name: str | None  # e.g. "EAN_UPC", "GS1_DATAMATRIX"
    data: str


def split_aim(text: str) -> AimSplit:
    """Take a leading AIM identifier off `text`; text without one comes back unchanged."""
    if len(text) < 3 or text[0] != "]":
        return AimSplit(None, None, text)
    try:
        ident = SymbologyIdentifier.extract(text)
    except (ParseError, ValueError, IndexError):  # biip raises ValueError on "]Yx"
        return AimSplit(None, None, text)
    modifiers = ident.modifiers
    if not modifiers or not all(c.isascii() and c.isalnum() for c in modifiers):
        return AimSplit(None, None, text)
    gs1 = ident.gs1_symbology
    name = gs1.name if gs1 is not None else ident.iso_symbology.name
    return AimSplit(ident.value, name, text[len(ident.value) :])
