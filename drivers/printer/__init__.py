"""Receipt printers: profiles, documents, ESC/POS rendering, status and a print queue.

A printer writes through any `drivers.transport` Transport.  `escpos_link.EscposLink` (python-
escpos's generator over a Transport) is not imported here: it loads python-escpos's printer
stack (PIL, qrcode, python-barcode, the whole capabilities database), which rendering and
printing a receipt never need.
"""

from drivers.printer.document import Align, DocumentError, Receipt, render_escpos, render_text
from drivers.printer.escpos_printer import PrinterOffline, ReceiptPrinter
from drivers.printer.profile import PrinterConfig, PrinterProfile, ProfileError, RenderTarget
from drivers.printer.queue import JobInfo, JobState, PrintQueue, UnknownJob
from drivers.printer.status import PrinterStatus, decode

__all__ = [
    "Align",
    "DocumentError",
    "JobInfo",
    "JobState",
    "PrintQueue",
    "PrinterConfig",
    "PrinterOffline",
    "PrinterProfile",
    "PrinterStatus",
    "ProfileError",
    "Receipt",
    "ReceiptPrinter",
    "RenderTarget",
    "UnknownJob",
    "decode",
    "render_escpos",
    "render_text",
]
