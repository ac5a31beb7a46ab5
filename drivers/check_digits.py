"""Check digits (EAN/GTIN and Luhn), python-stdnum's, imported on first use.

The service answers sales through its API from start to finish without a scan, a swipe
or a printed barcode, and stdnum's helper module brings pydoc and pkgutil with it
(~1.3 MB resident the service would carry for nothing).  The first scan, swipe or
barcode loads it; each function here is one stdnum call.
"""

from __future__ import annotations


def ean_valid(digits: str) -> bool:
    from stdnum import ean  # lazy: see the module docstring (pydoc, pkgutil)

    return bool(ean.is_valid(digits))


def ean_check_digit(digits: str) -> str:
    """The check digit for `digits` (all but the last digit of a GTIN)."""
    from stdnum import ean  # lazy: see the module docstring

    return str(ean.calc_check_digit(digits))


def luhn_valid(digits: str) -> bool:
    from stdnum import luhn  # lazy: see the module docstring

    return bool(luhn.is_valid(digits))


def luhn_check_digit(digits: str) -> str:
    from stdnum import luhn  # lazy: see the module docstring

    return str(luhn.calc_check_digit(digits))
