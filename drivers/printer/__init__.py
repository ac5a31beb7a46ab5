"""Receipt printers: profiles, documents, ESC/POS rendering, status and a print queue.

The connection classes load on first use: they pull python-escpos's printer stack (PIL,
qrcode, python-barcode, pyusb, pyserial), which rendering a receipt for a POS that
prints it itself never needs.
"""

from typing import TYPE_CHECKING, Any

from drivers.printer.document import Align, DocumentError, Receipt, render_escpos, render_text
from drivers.printer.escpos_printer import PrinterOffline, ReceiptPrinter
from drivers.printer.profile import PrinterConfig, PrinterProfile, ProfileError, RenderTarget
from drivers.printer.queue import Backoff, JobInfo, JobState, PrintQueue, UnknownJob
from drivers.printer.status import PrinterStatus, decode

if TYPE_CHECKING:
    from drivers.printer.connections import (
        Connection,
        DummyConnection,
        FileConnection,
        NetworkConnection,
        SerialConnection,
        UsbConnection,
    )

_CONNECTIONS = frozenset(
    {
        "Connection",
        "DummyConnection",
        "FileConnection",
        "NetworkConnection",
        "SerialConnection",
        "UsbConnection",
    }
)


def __getattr__(name: str) -> Any:
    if name in _CONNECTIONS:
        from drivers.printer import connections

        return getattr(connections, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Align",
    "Backoff",
    "Connection",
    "DocumentError",
    "DummyConnection",
    "FileConnection",
    "JobInfo",
    "JobState",
    "NetworkConnection",
    "PrintQueue",
    "PrinterConfig",
    "PrinterOffline",
    "PrinterProfile",
    "PrinterStatus",
    "ProfileError",
    "Receipt",
    "ReceiptPrinter",
    "RenderTarget",
    "SerialConnection",
    "UnknownJob",
    "UsbConnection",
    "decode",
    "render_escpos",
    "render_text",
]
