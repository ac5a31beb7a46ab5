"""What a `[[devices]]` entry may say: the (kind, connection) pairs that have a driver,
and which keys belong to which kind.

Plain data, read by the config's checks and by `bridge.devices.build`, so a pair is
accepted by `config check` exactly when the service can open it.  A scanner or card
reader on `usb` is refused: no driver reads input from a raw USB interface (USB
scanners enumerate as a serial port, `serial`, or as a keyboard, `hid`).
"""

from __future__ import annotations

from typing import Final, Literal

DeviceKind = Literal["scanner", "card_reader", "printer", "registrar"]
Connection = Literal["serial", "usb", "tcp", "file", "hid"]

KINDS: Final[tuple[DeviceKind, ...]] = ("scanner", "card_reader", "printer", "registrar")
CONNECTIONS: Final[tuple[Connection, ...]] = ("serial", "usb", "tcp", "file", "hid")

SUPPORTED: Final[dict[DeviceKind, tuple[Connection, ...]]] = {
    "scanner": ("serial", "tcp", "file", "hid"),
    "card_reader": ("serial", "tcp", "file", "hid"),
    "printer": ("serial", "usb", "tcp", "file"),
    "registrar": ("serial", "tcp"),
}

# keys that only one kind of device reads; a key of another kind is refused, not ignored
KIND_KEYS: Final[dict[DeviceKind, frozenset[str]]] = {
    "scanner": frozenset({"suffix", "prefix"}),
    "card_reader": frozenset({"suffix"}),
    "printer": frozenset({"profile", "codepage", "codepage_slot", "paper_mm"}),
    "registrar": frozenset({"password", "tax_system", "default_tax"}),
}
ALL_KIND_KEYS: Final[frozenset[str]] = frozenset().union(*KIND_KEYS.values())

# where a kind's keys make no sense on a connection: a keyboard wedge ends a scan with Enter
NOT_ON: Final[dict[tuple[DeviceKind, Connection], frozenset[str]]] = {
    ("scanner", "hid"): frozenset({"suffix"}),
    ("card_reader", "hid"): frozenset({"suffix"}),
}

DEFAULT_TCP_PORT: Final[dict[DeviceKind, int]] = {
    "scanner": 9100,
    "card_reader": 9100,
    "printer": 9100,  # raw TCP (JetDirect/AppSocket)
    "registrar": 7778,  # Shtrih-M's TCP port
}

PLURAL: Final[dict[DeviceKind, str]] = {
    "scanner": "scanners",
    "card_reader": "card readers",
    "printer": "printers",
    "registrar": "registrars",
}


def connections_for(kind: str) -> tuple[str, ...]:
    """The connections a kind may use; none for a kind that does not exist."""
    return next((conns for k, conns in SUPPORTED.items() if k == kind), ())


def unsupported_problem(kind: str, connection: str) -> str | None:
    """One line saying the pair has no driver and what does, or None when it has one."""
    choices = connections_for(kind)
    if not choices or connection not in CONNECTIONS or connection in choices:
        return None  # an unknown kind or connection is the field check's to report
    plural = next(words for k, words in PLURAL.items() if k == kind)
    return (
        f'a {kind.replace("_", " ")} cannot use connection = "{connection}";'
        f" {plural} use {', '.join(choices[:-1])} or {choices[-1]}"
    )
