"""Print a test page: code page, Cyrillic, column widths, styles, barcode, QR and cut.

PRINTER is a [[devices]] printer name (default: receipt.printer, else the first printer),
or a registrar's: it gets a non-fiscal page (the default when there is no printer).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from bridge.commands import UsageError

if TYPE_CHECKING:
    from bridge.config import Config, DeviceSettings
    from drivers.printer.document import Receipt

PANGRAM_RU = "Съешь же ещё этих мягких французских булок, да выпей чаю. Ёё Ъъ №"
PANGRAM_EN = "The quick brown fox jumps over the lazy dog 0123456789"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("printer", nargs="?", metavar="PRINTER", help="printer or registrar name")


def pick_printer(cfg: Config, name: str | None) -> DeviceSettings:
    printers = [d for d in cfg.devices if d.kind == "printer"]
    if not printers:
        named = f"no printer named {name!r}: " if name else ""
        raise UsageError(
            f'{named}no printer configured: add a [[devices]] entry with kind = "printer"'
        )
    wanted = name or cfg.receipt.printer or printers[0].name
    for d in printers:
        if d.name == wanted:
            return d
    known = ", ".join(d.name for d in printers)
    raise UsageError(f"no printer named {wanted!r}; configured printers: {known}")


def test_page(device: DeviceSettings, columns: int, code_page: str, slot: int) -> Receipt:
    from drivers.printer.document import Receipt  # lazy: python-escpos, see run

    page = Receipt().reset()
    page.double("posbridge", align="center").text("test page", align="center").rule()
    page.pair("printer", device.name).pair("profile", device.profile or "default")
    page.pair("code page", f"{code_page} (ESC t {slot})").pair("columns", str(columns)).rule()
    page.text(PANGRAM_RU).text(PANGRAM_EN).rule()
    for width in (32, 42, 48):
        ruler = (f"{width}:" + "1234567890" * 5)[: width - 1] + "|"
        page.text(ruler if width <= columns else f"{width} columns do not fit this paper")
    page.rule()
    page.text("bold / жирный", bold=True).text("double / двойной", double=True)
    page.text("centre / центр", align="center").text("right / справа", align="right").rule()
    page.barcode("4600000000015", "EAN13").qr("https://example.org/posbridge-test")
    return page.cut()


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) < 200 else text[:197] + "..."


def run(args: argparse.Namespace) -> int:
    # lazy: the config, the printer drivers and the registrar pull in pydantic, pyserial,
    # pyusb and python-escpos; the CLI imports this module for its parser, others skip them
    from bridge import config
    from bridge.commands._registrar_test_page import registrar_named, run_test_page
    from bridge.devices.build import DeviceBuildError, address, build_printer
    from drivers.device import DeviceError

    cfg = config.load(args.config)

    registrar = registrar_named(cfg, args.printer)
    if registrar is not None:  # a non-fiscal page: never a fiscal document
        return run_test_page(registrar)
    device = pick_printer(cfg, args.printer)
    try:
        printer = build_printer(device)
    except DeviceBuildError as exc:  # e.g. an unknown profile or code page
        raise UsageError(str(exc)) from None
    target = printer.target
    page = test_page(device, target.columns, target.code_page, target.code_page_slot)
    try:
        printer.open()
        try:
            printer.claim()
            printer.enable()
            status = printer.status()
            printer.print_receipt(page)
        finally:
            printer.close()
    except (DeviceError, OSError) as exc:  # unplugged, refused, no such file: one line
        print(
            f"posbridge test-print: printer {device.name} ({address(device)}) is not"
            f" reachable: {_reason(exc)}; check cable, power and the address in [[devices]]"
            " (`posbridge devices` lists what is connected)",
            file=sys.stderr,
        )
        return 3
    reason = status.blocking_reason() if status.answered else "no status answer"
    print(
        f"test page sent to {device.name}: {target.columns} columns, {target.code_page}"
        f" in slot {target.code_page_slot}; printer status: {reason or 'ok'}"
    )
    return 0
