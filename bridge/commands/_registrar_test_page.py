"""`posbridge test-print` on a fiscal registrar: a non-fiscal page, then its status.

Non-fiscal text (print_normal) only: a test page must never make a fiscal document.
The page shows what a technician checks after wiring: the Cyrillic code page (cp1251
on these devices), the width the loyalty lines are laid out at, and the cut.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from bridge.commands import UsageError
from bridge.fiscal.desk import STATUS_WORDS, blocking_condition, registrar_lock
from drivers.fiscal.base import FiscalError

if TYPE_CHECKING:
    from bridge.config import Config, DeviceSettings
    from drivers.fiscal.base import FiscalPrinter, FiscalStatus

PANGRAM_RU = "Съешь же ещё этих мягких французских булок, да выпей чаю. Ёё Ъъ №"
PANGRAM_EN = "The quick brown fox jumps over the lazy dog 0123456789"


def registrar_named(cfg: Config, name: str | None) -> DeviceSettings | None:
    """The registrar `name` means; with no name, the only device that can print when the
    register has a registrar and no receipt printer.  None: a printer is meant."""
    registrars = [d for d in cfg.devices if d.kind == "registrar"]
    if name is not None:
        return next((d for d in registrars if d.name == name), None)
    if registrars and not any(d.kind == "printer" for d in cfg.devices):
        wanted = cfg.receipt.registrar or registrars[0].name
        return next(d for d in registrars if d.name == wanted)
    return None


def page_lines(device: DeviceSettings, status: FiscalStatus, width: int) -> list[str]:
    ruler = (f"{width}:" + "1234567890" * 13)[: width - 1] + "|"
    return [
        "posbridge",
        "ТЕСТ ПЕЧАТИ - НЕФИСКАЛЬНЫЙ ДОКУМЕНТ",
        "test page, not a fiscal document",
        "-" * width,
        f"registrar: {device.name}",
        f"model: {status.model or 'unknown'}",
        f"mode: {status.mode_text}",
        f"line width: {width}",
        "-" * width,
        PANGRAM_RU,
        PANGRAM_EN,
        ruler,
    ]


def summary(status: FiscalStatus) -> str:
    blocked = blocking_condition(status)
    shift = {True: "open", False: "closed", None: "unknown"}[status.shift_open]
    state = "ok" if blocked is None else STATUS_WORDS[blocked]
    return f"{state}; mode {status.mode_text}; shift {shift}"


def run_test_page(device: DeviceSettings) -> int:
    """Print the page; one line on success, one line on stderr (exit 3) if unreachable."""
    # lazy: the config-to-driver module loads every transport (pyserial among them);
    # `test-print` imports this module for printers too
    from bridge.devices.build import DeviceBuildError, address, build_registrar

    try:
        registrar: FiscalPrinter = build_registrar(device)
    except DeviceBuildError as exc:
        raise UsageError(str(exc)) from None
    try:
        with registrar_lock(device.name):
            registrar.open()
            try:
                status = registrar.status()
                width = registrar.message_width
                registrar.print_normal(page_lines(device, status, width), cut=True)
                after = registrar.status()
            finally:
                registrar.close()
    except (FiscalError, OSError) as exc:
        text = " ".join(str(exc).split())
        print(
            f"posbridge test-print: registrar {device.name} ({address(device)}) did not print:"
            f" {text}; check cable, power and the address in [[devices]]",
            file=sys.stderr,
        )
        return 3
    print(
        f"non-fiscal test page sent to registrar {device.name}: {width} columns;"
        f" registrar status: {summary(after)}"
    )
    return 0
