"""`ShtrihFiscalPrinter`: the UnifiedPOS FiscalPrinter subset over the Shtrih-M protocol.

It keeps track of where the current fiscal document is (not opened, open, closed,
cancelled) and puts that on every error, because the POS must never be left guessing
whether a sale was recorded.  When a failure leaves that in doubt (a lost answer to a
close, a device error mid-close), the driver asks the device's mode rather than guess:
mode 8 means the receipt is still open.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Callable, Sequence
from decimal import Decimal

from drivers.device import DeviceState, Flag, PowerState
from drivers.fiscal.base import (
    DocumentState,
    FiscalError,
    FiscalItem,
    FiscalLinkError,
    FiscalPayment,
    FiscalPrinter,
    FiscalResult,
    FiscalStatus,
    TaxSystem,
)
from drivers.fiscal.shtrih import commands as cmd
from drivers.fiscal.shtrih import errors, replies
from drivers.fiscal.shtrih.frames import FrameError, parse_reply, request_body
from drivers.fiscal.shtrih.link import LinkFailure, ShtrihLink
from drivers.transport.base import Transport, TransportError

log = logging.getLogger("posbridge.drivers.fiscal.shtrih")

MODE_DOCUMENT_OPEN = 8
MODE_SHIFT_OPEN = 2
MODE_SHIFT_OVER_24H = 3
MODE_SHIFT_CLOSED = 4

# device errors after which the printer's own sensors say more than the code does
_PRINTER_TROUBLE = frozenset({0x50, 0x58, 0x6B, 0x71, 0x72, 0x73, 0x76, 0x77, 0xC8})
_RECEIPT_TYPES = frozenset({3, 4, 31, 41})  # receipt, БСО, and their corrections
_LOOK_BACK = 8  # documents searched for the last receipt (a Z-report and a shift opening)
_LOOK_AHEAD = 8  # documents searched after a watermark for a receipt closed meanwhile
_FN_MISSING = frozenset({0x2F, 0x30, 0x64, 0x67})
_FN_FULL = frozenset({0x06, 0x12, 0x14, 0x70})


class ShtrihFiscalPrinter(FiscalPrinter):
    """A Shtrih-M registrar (ШТРИХ-М-01Ф, -ЛАЙТ-01Ф, ...) over any Transport.

    `timeout` bounds every control byte and every gap inside a frame; `answer_timeout`
    is how long a printing command (a sale line, a close) may take to answer.
    `retries` bounds ENQs without an answer, NAKed frames and unreadable answers.
    """

    def __init__(
        self,
        name: str,
        transport: Transport,
        *,
        password: int = 30,
        admin_password: int = 30,
        timeout: float = 1.0,
        retries: int = 3,
        answer_timeout: float = 20.0,
        font: int = 1,
    ) -> None:
        super().__init__(name)
        self.transport = transport
        self._password = password
        self._admin_password = admin_password
        self.timeout = timeout
        self.answer_timeout = answer_timeout
        self.font = font
        self._link = ShtrihLink(transport, timeout=timeout, retries=retries)
        self._document = DocumentState.NOT_OPENED
        self._width: int | None = None
        self._model: str | None = None
        self._probing = False  # reading the sensors after an error: no second probe inside
        self._closing = False  # a close was sent for the current receipt

    def __repr__(self) -> str:  # never the passwords
        return f"ShtrihFiscalPrinter({self.name!r}, {self.transport.name!r}, state={self.state})"

    @property
    def document_state(self) -> DocumentState:
        """What the driver believes of the current (or last) fiscal document."""
        return self._document

    # lifecycle ---------------------------------------------------------------------
    def _do_open(self) -> None:
        try:
            self.transport.open()
        except TransportError as exc:
            self.set_power(PowerState.OFFLINE)
            raise FiscalLinkError(f"cannot open registrar {self.name}: {exc}") from exc

    def _do_close(self) -> None:
        self.transport.close()
        self.set_power(PowerState.UNKNOWN)

    def _reopen(self) -> None:
        """The port went away under an open device (a TCP reset, a replugged adapter): one
        attempt to get it back, so the next call works without a close/open by the caller."""
        if self.state is DeviceState.CLOSED:
            raise FiscalLinkError("registrar is not open (call open() first)", state=self._document)
        try:
            self.transport.open()
        except TransportError as exc:
            raise FiscalLinkError(
                f"registrar {self.transport.name}: port lost and cannot be reopened: {exc}",
                state=self._document,
            ) from exc
        log.info("%s: port %s reopened", self.name, self.transport.name)

    # one command -------------------------------------------------------------------
    def _failure(self, message: str, *, code: int | None = None) -> FiscalError:
        # plain words only: the POS shows them as they are; logs carry the device's name
        return FiscalError(message, code=code, state=self._document)

    def _run(self, command: cmd.Command) -> bytes:
        """Send one command, return its reply data; FiscalError naming what went wrong."""
        with self._lock:
            if not self.transport.is_open:
                self._reopen()
            kind = command.password
            if kind is cmd.Password.OPERATOR:
                password: int | None = self._password
            elif kind is cmd.Password.ADMIN:
                password = self._admin_password
            else:
                password = None
            body = request_body(command.code, password, command.data)
            wait = self.timeout + (self.answer_timeout if command.prints else 0.0)
            try:
                raw = self._link.exchange(body, answer_timeout=wait, repeatable=command.repeatable)
                reply = parse_reply(raw, command.code)
            except LinkFailure as exc:
                self.set_power(PowerState.OFFLINE)
                raise FiscalLinkError(str(exc), state=self._document) from exc
            except FrameError as exc:
                raise FiscalLinkError(
                    f"registrar {self.transport.name}: garbled reply to 0x{command.code:X}: {exc}",
                    state=self._document,
                ) from exc
            if self.power is not PowerState.ONLINE:
                self.set_power(PowerState.ONLINE)
            if reply.error:
                raise self._device_error(command.code, reply.error)
            return reply.data

    def _device_error(self, command: int, code: int) -> FiscalError:
        message = errors.message_for(code)
        if code in _PRINTER_TROUBLE or code not in errors.MESSAGES:
            sensors = self._sensors()
            if sensors is not None and sensors.cover_open:
                message = errors.COVER_OPEN
            elif sensors is not None and not sensors.paper_present and code != 0x6B:
                message = f"{errors.PAPER_OUT} ({message})"
        log.warning("%s: command 0x%X refused: 0x%02X %s", self.name, command, code, message)
        return self._failure(message, code=code)

    def _sensors(self) -> replies.DeviceStatus | None:
        if self._probing:
            return None
        self._probing = True
        try:
            return replies.parse_short_status(self._run(cmd.short_status()))
        except (FiscalError, FrameError):
            return None
        finally:
            self._probing = False

    def _device_mode(self) -> int | None:
        sensors = self._sensors()
        return None if sensors is None else sensors.mode

    def _settle(self, exc: FiscalError, *, gone: DocumentState | None) -> FiscalError:
        """After a failure, ask the device whether a receipt is open and put that on `exc`.

        `gone` is what an open receipt became if the device no longer has one: CLOSED
        after a close (the FN recorded it), CANCELLED after a line (nothing recorded).
        """
        mode = self._device_mode()
        if mode == MODE_DOCUMENT_OPEN:
            self._document = DocumentState.OPEN
        elif mode is not None:
            if gone is not None and self._document is DocumentState.OPEN:
                self._document = gone
        else:
            exc.message += " (the registrar did not answer a status query: check it)"
            exc.args = (exc.message,)
        exc.state = self._document
        return exc

    def _fiscal(self, action: Callable[[], None], *, gone: DocumentState) -> None:
        """Run a step of an open receipt; errors carry the document's state."""
        with self._lock:
            if self._document is not DocumentState.OPEN:
                raise self._failure("no fiscal receipt is open (call begin_fiscal_receipt)")
            try:
                action()
            except FiscalError as exc:
                raise self._settle(exc, gone=gone) from None

    # FiscalPrinter ---------------------------------------------------------------------
    def status(self) -> FiscalStatus:
        with self._lock:
            try:
                state = replies.parse_full_status(self._run(cmd.full_status()))
            except FrameError as exc:
                raise self._failure(f"garbled status: {exc}") from exc
            mode = state.mode
            fn_present, fn_full = self._fn_health()
            return FiscalStatus(
                mode=mode,
                submode=state.submode,
                mode_text=state.mode_text,
                receipt_open=mode == MODE_DOCUMENT_OPEN,
                shift_open=_shift_open(mode),
                shift_over_24h=_shift_over_24h(mode),
                paper=Flag.of(state.paper_present),
                cover_open=Flag.of(state.cover_open),
                fn_present=fn_present,
                fn_full=fn_full,
                model=self._device_model(),
                line_width=self._font_width(),
            )

    def _fn_health(self) -> tuple[bool | None, bool | None]:
        try:
            fn = replies.parse_fn_status(self._run(cmd.fn_status()))
        except FiscalLinkError:
            raise
        except FiscalError as exc:
            if exc.code in _FN_MISSING:
                return False, None
            if exc.code in _FN_FULL:
                return True, True
            return None, None
        except FrameError:
            return None, None
        return True, bool(fn.warnings & replies.FN_WARNING_MEMORY_FULL)

    def _device_model(self) -> str | None:
        if self._model is None:
            try:
                self._model = replies.parse_device_type(self._run(cmd.device_type())).name or None
            except (FiscalError, FrameError) as exc:
                log.info("%s: device type unknown: %s", self.name, exc)
        return self._model

    def _font_width(self) -> int | None:
        if self._width is None:
            try:
                self._width = replies.parse_font_width(self._run(cmd.font_info(self.font)))
            except (FiscalError, FrameError) as exc:
                log.info("%s: font width unknown: %s", self.name, exc)
        return self._width

    @property
    def message_width(self) -> int:
        with self._lock:
            width = self._font_width() if self.transport.is_open else self._width
            return width or self.DEFAULT_MESSAGE_WIDTH

    def begin_fiscal_receipt(self) -> None:
        with self._lock:
            if self._document is DocumentState.OPEN:
                raise self._failure("a fiscal receipt is already open: end or cancel it")
            self._document = DocumentState.NOT_OPENED
            self._closing = False
            try:
                self._run(cmd.open_receipt(0))
            except FiscalError as exc:
                if exc.code == 0x4A:  # the device already holds an open receipt
                    self._document = DocumentState.OPEN
                    exc.state = self._document
                    raise
                raise self._settle(exc, gone=None) from None
            self._document = DocumentState.OPEN
            log.info("%s: receipt opened", self.name)

    def print_rec_item(self, item: FiscalItem) -> None:
        def sell() -> None:
            try:
                command = cmd.operation_v2(
                    name=item.name,
                    quantity=item.quantity,
                    price=item.price,
                    amount=item.amount,
                    tax=item.tax,
                    department=item.department,
                    payment_method=item.payment_method,
                    payment_object=item.payment_object,
                )
            except ValueError as exc:
                raise self._failure(f"item {item.name!r}: {exc}") from None
            self._run(command)

        self._fiscal(sell, gone=DocumentState.CANCELLED)

    def print_rec_message(self, text: str) -> None:
        def message() -> None:
            for line in self._wrap(text):
                self._run(cmd.print_string(line))

        self._fiscal(message, gone=DocumentState.CANCELLED)

    def _wrap(self, text: str) -> list[str]:
        """A line that fits goes as it is (alignment kept); a longer one wraps at spaces."""
        width = self.message_width
        if len(text) <= width:
            return [text]
        return textwrap.wrap(text, width, break_on_hyphens=False) or [""]

    def end_fiscal_receipt(
        self, payments: Sequence[FiscalPayment], tax_system: TaxSystem
    ) -> FiscalResult:
        with self._lock:
            if not payments:
                raise self._failure("no payments given to close the receipt")
            try:
                command = cmd.close_v2(payments, tax_system)
            except (ValueError, KeyError) as exc:
                raise self._failure(f"bad payment: {exc}") from None
            result: list[FiscalResult] = []
            self._closing = True

            def close() -> None:
                reply = replies.parse_close_v2(self._run(command))
                result.append(
                    FiscalResult(
                        document_number=reply.document_number,
                        fiscal_sign=str(reply.fiscal_sign),
                        change=Decimal(reply.change) / 100,
                    )
                )

            try:
                self._fiscal(close, gone=DocumentState.CLOSED)
            except FrameError as exc:
                failure = self._failure(f"garbled answer to the close: {exc}")
                raise self._settle(failure, gone=DocumentState.CLOSED) from exc
            self._document = DocumentState.CLOSED
            log.info("%s: receipt closed, fiscal document %s", self.name, result[0].document_number)
            return result[0]

    def cancel_fiscal_receipt(self) -> None:
        with self._lock:
            mode = self._device_mode()
            if mode is not None and mode != MODE_DOCUMENT_OPEN:
                if self._document is DocumentState.OPEN:  # it went while we could not see
                    gone = DocumentState.CLOSED if self._closing else DocumentState.CANCELLED
                    log.warning("%s: no receipt open on the device; taken as %s", self.name, gone)
                    self._document = gone
                return
            try:
                self._run(cmd.cancel())
            except FiscalError as exc:
                raise self._settle(exc, gone=None) from None
            self._document = DocumentState.CANCELLED
            log.info("%s: receipt cancelled", self.name)

    def print_normal(self, lines: Sequence[str], *, cut: bool = True) -> None:
        with self._lock:
            if self._document is DocumentState.OPEN:
                raise self._failure("a fiscal receipt is open: non-fiscal text would land in it")
            for line in lines:
                for part in self._wrap(line):
                    self._run(cmd.print_string(part))
            if cut:
                self._run(cmd.cut())

    def direct_io(self, command: cmd.Command) -> bytes:
        """Any other command (UnifiedPOS directIO): its reply data, or FiscalError.

        For what the FiscalPrinter face does not cover: a bold or font line (`cmd.bold_string`,
        `cmd.font_string`), the pre-FN sale and close (`cmd.sale`, `cmd.close`).  The
        driver's idea of the document state is not updated by these.
        """
        return self._run(command)

    def last_document(self) -> FiscalResult | None:
        """The last closed receipt in the FN, looking back past shift reports.

        Shift reports are skipped because the first receipt of a closed shift makes the
        shift-opening report first: a watermark taken on "any last document" would move
        although no receipt was closed.  None when the FN has no receipt among its last
        few documents or cannot be asked (the caller then cannot tell, and must say so).
        """
        with self._lock:
            try:
                number = replies.parse_fn_status(self._run(cmd.fn_status())).last_document
                for candidate in range(number, max(number - _LOOK_BACK, 0), -1):
                    found = replies.parse_found_document(self._run(cmd.fn_find_document(candidate)))
                    if found.type in _RECEIPT_TYPES:
                        return FiscalResult(found.number, str(found.fiscal_sign))
            except FiscalLinkError:
                raise
            except (FiscalError, FrameError) as exc:
                log.info("%s: last receipt unknown: %s", self.name, exc)
            return None

    def document_watermark(self) -> int | None:
        with self._lock:
            try:
                return replies.parse_fn_status(self._run(cmd.fn_status())).last_document
            except FiscalLinkError:
                raise
            except (FiscalError, FrameError) as exc:
                log.info("%s: last document number unknown: %s", self.name, exc)
                return None

    def receipt_after(self, watermark: int) -> FiscalResult | None:
        """Looks forward from the watermark: one shift-opening report, maybe a Z-report,
        then the receipt, whichever came first after a crash.  More than `_LOOK_AHEAD`
        documents since is more than one lost close explains: the device is not asked."""
        with self._lock:
            try:
                last = replies.parse_fn_status(self._run(cmd.fn_status())).last_document
                if last - watermark > _LOOK_AHEAD:
                    raise FiscalError(
                        f"{self.name}: {last - watermark} fiscal documents since number"
                        f" {watermark}: which receipt is which cannot be told"
                    )
                for number in range(watermark + 1, last + 1):
                    found = replies.parse_found_document(self._run(cmd.fn_find_document(number)))
                    if found.type in _RECEIPT_TYPES:
                        return FiscalResult(found.number, str(found.fiscal_sign))
            except FrameError as exc:
                raise FiscalError(f"{self.name}: an FN document could not be read: {exc}") from exc
            return None


def _shift_open(mode: int) -> bool | None:
    if mode in (MODE_SHIFT_OPEN, MODE_SHIFT_OVER_24H, MODE_DOCUMENT_OPEN):
        return True
    if mode == MODE_SHIFT_CLOSED:
        return False
    return None


def _shift_over_24h(mode: int) -> bool | None:
    if mode == MODE_SHIFT_OVER_24H:
        return True
    if mode in (MODE_SHIFT_OPEN, MODE_SHIFT_CLOSED):
        return False
    return None
