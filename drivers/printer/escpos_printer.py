"""A receipt printer as a UnifiedPOS device: open/claim/enable, print documents, read status.

It writes through any `drivers.transport` Transport (serial, USB, TCP, file: the same ones
scanners, card readers and the fiscal register use), renders documents for its configured
profile/width/code page, and turns transport failures into an OFFLINE power state plus an
ErrorEvent, so the queue above can wait and retry.  python-escpos's own generator (images,
its barcode renderers) reaches the same transport through `escpos_link.EscposLink`.
"""

from __future__ import annotations

import time

from drivers.device import DataEvent, Device, DeviceError, ErrorEvent, NotClaimedError, PowerState
from drivers.printer.document import Receipt, init_sequence, render_escpos, render_text
from drivers.printer.profile import PrinterConfig, RenderTarget
from drivers.printer.status import UNKNOWN_STATUS, PrinterStatus, Query, decode
from drivers.transport.base import Transport, TransportError

STATUS_TIMEOUT = 0.3  # a real printer answers DLE EOT within a few ms; USB/serial adds latency


class PrinterOffline(DeviceError):
    """The printer could not be reached; the job was not (fully) sent."""


class ReceiptPrinter(Device):
    def __init__(
        self,
        name: str,
        transport: Transport,
        config: PrinterConfig | None = None,
        *,
        status_timeout: float = STATUS_TIMEOUT,
    ) -> None:
        super().__init__(name)
        self.transport = transport
        self.config = config or PrinterConfig()
        self.target = RenderTarget.from_config(self.config)
        self.status_timeout = status_timeout
        self.last_status: PrinterStatus = UNKNOWN_STATUS

    @property
    def columns(self) -> int:
        return self.target.columns

    # Device hooks ---------------------------------------------------------------------------
    def _do_open(self) -> None:
        try:
            self.transport.open()
        except TransportError as exc:
            self.set_power(PowerState.OFFLINE, reason=str(exc))
            raise PrinterOffline(f"{self.name}: {exc}") from exc
        self.set_power(PowerState.ONLINE)

    def _do_close(self) -> None:
        self.transport.close()

    # rendering ------------------------------------------------------------------------------
    def render(self, receipt: Receipt) -> bytes:
        return render_escpos(receipt, self.target)

    def preview(self, receipt: Receipt) -> list[str]:
        return render_text(receipt, self.target.columns)

    # output ---------------------------------------------------------------------------------
    def _require_enabled(self) -> None:
        if not self.enabled:
            raise NotClaimedError(f"{self.name}: open, claim and enable the printer first")

    def write(self, data: bytes) -> None:
        """Send bytes as they are; raises PrinterOffline if the transport fails."""
        self._require_enabled()
        with self._lock:
            if not self.transport.is_open:
                try:
                    self.transport.open()
                except TransportError as exc:
                    self._went_offline(exc)
            try:
                self.transport.write(data)
            except TransportError as exc:
                self._went_offline(exc)
        self.set_power(PowerState.ONLINE)

    def _went_offline(self, exc: TransportError) -> None:
        self.transport.close()
        self.set_power(PowerState.OFFLINE, reason=str(exc))
        self.emit(ErrorEvent(self.name, str(exc)))
        raise PrinterOffline(f"{self.name}: {exc}") from exc

    def print_receipt(self, receipt: Receipt) -> None:
        data = self.render(receipt)
        self.write(data)
        self.emit(DataEvent(self.name, {"printed_bytes": len(data)}))

    def initialize(self) -> None:
        """ESC @ followed by the pinned code page: a reset never leaves a default code page."""
        self.write(init_sequence(self.target))

    def kick_drawer(self, pin: int = 2) -> None:
        self.print_receipt(Receipt().kick_drawer(pin))

    # status ---------------------------------------------------------------------------------
    def status(self) -> PrinterStatus:
        """DLE EOT 1..4, decoded; never raises and never guesses (no reply means UNKNOWN)."""
        if not self.transport.can_read:
            return UNKNOWN_STATUS  # no back channel: nothing to wait for
        with self._lock:
            replies: dict[int, int | None] = {}
            try:
                if not self.transport.is_open:
                    self.transport.open()
                self._drain()
                for query in Query:
                    reply = self._ask(query.command)
                    replies[query] = reply
                    if reply is None and query is Query.PRINTER:
                        break  # no back channel or not answering: do not wait four timeouts
            except TransportError as exc:
                self.transport.close()
                self.set_power(PowerState.OFFLINE, reason=str(exc))
                self.last_status = UNKNOWN_STATUS
                return UNKNOWN_STATUS
            status = decode(replies)
            self.last_status = status
            return status

    def _drain(self) -> None:
        while self.transport.read(64, timeout=0):
            pass  # stale replies or ASB frames would be taken for the next answer

    def _ask(self, request: bytes) -> int | None:
        self.transport.write(request)
        deadline = time.monotonic() + self.status_timeout
        while (left := deadline - time.monotonic()) > 0:
            data = self.transport.read(1, timeout=left)
            if data:
                return data[0]
        return None
