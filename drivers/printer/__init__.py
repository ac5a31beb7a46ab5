"""Receipt printers: profiles, documents, ESC/POS rendering, status and a print queue."""

from drivers.printer.connections import (
    Connection,
    DummyConnection,
    FileConnection,
    NetworkConnection,
    SerialConnection,
    UsbConnection,
)
from drivers.printer.document import Align, DocumentError, Receipt, render_escpos, render_text
from drivers.printer.escpos_printer import PrinterOffline, ReceiptPrinter
from drivers.printer.profile import PrinterConfig, PrinterProfile, ProfileError, RenderTarget
from drivers.printer.queue import Backoff, JobInfo, JobState, PrintQueue, UnknownJob
from drivers.printer.status import PrinterStatus, decode

__all__ = [
    "Align", "Backoff", "Connection", "DocumentError", "DummyConnection", "FileConnection",
    "JobInfo", "JobState", "NetworkConnection", "PrintQueue", "PrinterConfig", "PrinterOffline",
    "PrinterProfile", "PrinterStatus", "ProfileError", "Receipt", "ReceiptPrinter",
    "RenderTarget", "SerialConnection", "UnknownJob", "UsbConnection", "decode",
    "render_escpos", "render_text",
]
