"""Undo a Russian keyboard layout applied to scanner or card-reader text.

A keyboard-wedge scanner sends key *positions*; if the register's active layout is
Russian (ЙЦУКЕН), the POS receives "ъв2" where the scanner meant "]d2" and "ж" for
";".  Each character maps back to the US character on the same key.  Punctuation
is ambiguous ("." is the Russian character on the US "/" key, but also a plain dot), so
the text is only repaired when it shows it was mangled: it contains Cyrillic letters.
Without any Cyrillic we cannot tell and leave it alone (digits-only codes are identical
under both layouts anyway).
"""

from __future__ import annotations

# Russian character -> US character on the same key (unshifted, then shifted).
_RU = "ёйцукенгшщзхъфывапролджэячсмитьбю." + 'ЁЙЦУКЕНГШЩЗХЪФЫВАПРОЛДЖЭЯЧСМИТЬБЮ,"№;:?/'
_US = "`qwertyuiop[]asdfghjkl;'zxcvbnm,./" + '~QWERTYUIOP{}ASDFGHJKL:"ZXCVBNM<>?@#$^&|'
_TABLE = str.maketrans(_RU, _US)


def has_cyrillic(text: str) -> bool:
    return any("\u0400" <= c <= "\u04ff" for c in text)


def repair_layout(text: str, *, force: bool = False) -> str:
    """US text for `text` typed under a Russian layout; unchanged if it shows no sign of it."""
    if not force and not has_cyrillic(text):
        return text
    return text.translate(_TABLE)
