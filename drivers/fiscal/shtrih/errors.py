"""Shtrih-M error codes in plain words, for a cashier or a technician to act on.

Codes 0x01-0x3F are the fiscal storage's (FN) own, passed through by the device; the rest
are the device's.  Only codes a shop actually meets get their own words; any other code
is still reported with its number so the vendor's table can be looked up.
"""

from __future__ import annotations

PAPER_OUT = "paper out: load a receipt roll"
COVER_OPEN = "cover open: close the printer cover"
SHIFT_OVER_24H = "shift over 24 hours: close the shift (Z-report) and open a new one"
FN_FULL = "fiscal storage (FN) full: replace the FN"
FN_MISSING = "fiscal storage (FN) missing or not answering"
REFUSED_OPERATOR = "wrong operator password: check the registrar's password in the config"

MESSAGES: dict[int, str] = {
    0x01: "fiscal storage (FN): unknown command or bad format",
    0x02: "fiscal storage (FN) in the wrong state for this command",
    0x03: "fiscal storage (FN) failure",
    0x04: "fiscal storage (FN) crypto module failure",
    0x05: "fiscal storage (FN) expired: replace the FN",
    0x06: FN_FULL + " (archive full)",
    0x07: "wrong date or time: set the registrar's clock",
    0x08: "fiscal storage (FN): no such data",
    0x09: "fiscal storage (FN): invalid parameter",
    0x10: "fiscal storage (FN): document data too large",
    0x11: "fiscal storage (FN): no connection to the OFD",
    0x12: FN_FULL + " (crypto resource exhausted)",
    0x14: FN_FULL + " (document storage exhausted)",
    0x15: "fiscal storage (FN): documents not sent to the OFD for 30 days: check the network",
    0x16: SHIFT_OVER_24H,
    0x17: "fiscal storage (FN): wrong time between two operations: check the clock",
    0x20: "fiscal storage (FN): the OFD's reply cannot be accepted",
    0x2F: FN_MISSING + " (timeout)",
    0x30: FN_MISSING,
    0x33: "wrong parameters in the command",
    0x34: "no data",
    0x35: "wrong parameter for the current settings",
    0x36: "wrong parameters for this model",
    0x37: "command not supported by this model",
    0x3D: "shift not open: open a shift first",
    0x45: "payments are less than the receipt total",
    0x46: "not enough cash in the drawer",
    0x48: "receipt total overflow",
    0x4A: "a receipt is open: finish or cancel it first",
    0x4B: "receipt buffer full",
    0x4E: SHIFT_OVER_24H,
    0x4F: REFUSED_OPERATOR,
    0x50: "still printing the previous command",
    0x55: "receipt closed: operation impossible",
    0x58: "waiting for the continue-print command (paper was replaced)",
    0x59: "document opened by another operator",
    0x5E: "wrong operation",
    0x5F: "negative receipt total",
    0x61: "price out of range",
    0x62: "quantity out of range",
    0x63: "department out of range",
    0x64: FN_MISSING,
    0x67: FN_MISSING + " (link error)",
    0x6B: PAPER_OUT,
    0x6C: "journal paper out",
    0x70: FN_FULL,
    0x71: "cutter failure",
    0x72: "wrong mode: command not supported in this submode",
    0x73: "wrong mode: command not supported in this mode",
    0x7E: "wrong frame length",
    0x8E: "zero receipt total",
    0x8F: "the registrar is not fiscalised",
    0x94: "too many operations in the receipt",
    0x96: "run the end-of-day report (Z-report)",
    0xC8: "printer link failure",
    0xC9: "print head overheated: wait and retry",
}


def message_for(code: int) -> str:
    return MESSAGES.get(code, f"registrar error 0x{code:02X}")
