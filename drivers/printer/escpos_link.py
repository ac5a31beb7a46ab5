"""python-escpos's command generator and capability database, writing through our Transport.

python-escpos knows how to turn text, an image, a barcode or a QR code into ESC/POS for a
given printer model; our transports know the wire (serial line settings, which of two
identical USB printers, errors that name the port, "device gone").  This class joins the two
through the two hooks python-escpos asks of a printer class, `_raw` and `_read`, and nothing
else of python-escpos's internals, so a printer's port is opened in one place only: the
Transport handed in (`drivers.transport.serial`, `.usb`, `.tcp` or `.file`).

Importing this module loads python-escpos's printer stack (PIL, qrcode, python-barcode and the
whole capabilities database), which `ReceiptPrinter` does not need for its own rendering; so
it is imported only by code that wants python-escpos's generator.
"""

from __future__ import annotations

from escpos.escpos import Escpos

from drivers.printer.profile import ProfileError, profile_names
from drivers.transport.base import Transport

READ_TIMEOUT = 0.3  # a printer answers a status request within a few ms; USB/serial add latency


class EscposLink(Escpos):  # type: ignore[misc]  # python-escpos has no type hints
    """A python-escpos printer whose device is one of our transports.

    Write errors come out as our `TransportError`s (TransportClosed when the device went
    away), never as pyserial's or pyusb's.  A transport that cannot read (a capture file)
    answers every status request with nothing, which python-escpos's `is_online()` reads as
    offline: ask `ReceiptPrinter.status()` for a three-valued answer instead.  It takes no
    lock: do not write through it while a ReceiptPrinter is printing on the same transport.
    """

    def __init__(
        self,
        transport: Transport,
        profile: str | None = None,
        *,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        try:
            super().__init__(profile=profile)
        except KeyError:
            known = ", ".join(profile_names())
            message = f"unknown printer profile {profile!r}; known profiles: {known}"
            raise ProfileError(message) from None
        self.transport = transport
        self.read_timeout = read_timeout

    def open(self) -> None:
        if not self.transport.is_open:
            self.transport.open()

    def close(self) -> None:
        self.transport.close()

    def __del__(self) -> None:
        """Leave the transport alone: python-escpos would close it when this object is freed.

        Whoever made the transport closes it; a short-lived generator must not close the port
        under a ReceiptPrinter that shares it.
        """

    def _raw(self, msg: bytes) -> None:
        self.open()
        self.transport.write(bytes(msg))

    def _read(self) -> bytes:
        if not self.transport.can_read:
            return b""
        self.open()
        return self.transport.read(16, timeout=self.read_timeout)
