"""One fiscal print of a confirmed cheque, with the rules the POS relies on.

- The cheque is confirmed before: a registrar failure never touches the loyalty side.
- Every failure says where the fiscal document is (`DocumentState`); a receipt opened
  by us is never left open silently: on an error after opening it is cancelled, and
  the answer says `cancelled`, or `open` if even the cancel failed.
- Idempotent per cheque: the record is written before the device is touched, so a
  retry after a success answers the same number and sign without printing, and a
  retry after a crash asks the device first (an open receipt is cancelled; a close that
  went through is found by the last document's number) before printing again.
- One print at a time per registrar, whatever the number of API threads.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bridge.fiscal.records import FiscalRecord, FiscalStore, Stage
from bridge.fiscal.sale import FiscalRequest, FiscalSale, compose
from drivers.device import DeviceError, Flag
from drivers.fiscal.base import (
    DocumentState,
    FiscalError,
    FiscalLinkError,
    FiscalPrinter,
    FiscalResult,
    FiscalStatus,
    TaxRate,
    TaxSystem,
)
from drivers.masking import mask_text

if TYPE_CHECKING:
    from bridge.service.cheque import RegisterCheque

log = logging.getLogger("posbridge.fiscal")

# the device's condition -> (machine code, what the cashier does about it)
CONDITIONS: dict[str, tuple[str, str]] = {
    "paper_out": ("registrar_paper_out", "Load paper into the fiscal registrar, then print again"),
    "cover_open": ("registrar_cover_open", "Close the registrar's cover, then print again"),
    "shift_over_24h": (
        "registrar_shift_expired",
        "The shift is over 24 hours: close the shift (Z report), open a new one, print again",
    ),
    "fn_missing": (
        "registrar_fn_missing",
        "The fiscal storage (FN) is missing: call the service technician",
    ),
    "fn_full": (
        "registrar_fn_full",
        "The fiscal storage (FN) is full: call the service technician",
    ),
    "wrong_mode": (
        "registrar_wrong_mode",
        "The registrar is in the wrong mode: check it (shift, open documents), then print again",
    ),
    "link": (
        "registrar_unreachable",
        "The fiscal registrar does not answer: check its cable and power, then print again",
    ),
    "error": ("registrar_error", "The fiscal registrar refused the receipt: see the error shown"),
    "unknown": (
        "registrar_outcome_unknown",
        "Whether the receipt was printed is unknown: check the registrar's last receipt",
    ),
}
STATUS_WORDS = {
    "paper_out": "paper out",
    "cover_open": "cover open",
    "fn_missing": "fiscal storage (FN) missing",
    "fn_full": "fiscal storage (FN) full",
    "shift_over_24h": "shift over 24 hours",
}
_WORDS = (  # the driver's plain words -> condition, for errors that come without a status
    ("paper out", "paper_out"),
    ("cover open", "cover_open"),
    ("24 hours", "shift_over_24h"),
    ("(fn) missing", "fn_missing"),
    ("(fn) full", "fn_full"),
    ("wrong mode", "wrong_mode"),
)


class FiscalPrintError(Exception):
    """A print that did not end in a fiscal document; everything the POS needs to act."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int = 409,
        state: DocumentState | None = DocumentState.NOT_OPENED,
        cashier: str | None = None,
        device_error: str | None = None,
        device_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.state = state
        self.cashier = cashier or message
        self.device_error = device_error
        self.device_code = device_code

    def extra(self) -> dict[str, Any]:
        return {
            "documentState": None if self.state is None else self.state.value,
            "deviceError": self.device_error,
            "deviceCode": self.device_code,
        }


@dataclass(frozen=True)
class Registrar:
    """The registrar the endpoint prints on, as the config describes it."""

    name: str
    connect: Callable[[], FiscalPrinter]  # a new, unopened driver
    tax_system: TaxSystem = TaxSystem.OSN
    default_tax: TaxRate = TaxRate.NONE


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def registrar_lock(name: str) -> threading.Lock:
    """The one lock of a registrar in this process (the endpoint, test-print, doctor)."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(name, threading.Lock())


def blocking_condition(status: FiscalStatus) -> str | None:
    """What in the device's status stops a receipt, by the CONDITIONS name; None if nothing."""
    if status.paper is Flag.FALSE:
        return "paper_out"
    if status.cover_open is Flag.TRUE:
        return "cover_open"
    if status.fn_present is False:
        return "fn_missing"
    if status.fn_full is True:
        return "fn_full"
    if status.shift_over_24h is True:
        return "shift_over_24h"
    return None


def condition_of(exc: FiscalError) -> str:
    if isinstance(exc, FiscalLinkError):
        return "link"
    words = exc.message.lower()
    for word, condition in _WORDS:
        if word in words:
            return condition
    return "error"


def _failure(
    condition: str, state: DocumentState | None, detail: str, exc: FiscalError | None = None
) -> FiscalPrintError:
    code, cashier = CONDITIONS[condition]
    if state is DocumentState.OPEN:
        cashier += ". A receipt is still open on the registrar: print again to cancel it"
    elif state is DocumentState.CANCELLED:
        cashier += ". The receipt was cancelled: no fiscal document was made"
    return FiscalPrintError(
        code,
        detail,
        status=503 if condition == "link" else 409,
        state=state,
        cashier=cashier,
        device_error=None if exc is None else exc.message,
        device_code=None if exc is None else exc.code,
    )


def _records_failed(exc: sqlite3.Error, state: DocumentState) -> FiscalPrintError:
    """The fiscal records cannot be written (the disk under the cheque file): nothing is
    printed that could not be accounted for on a retry."""
    return FiscalPrintError(
        "fiscal_records_unavailable",
        f"the fiscal records cannot be written: {exc}",
        status=503,
        state=state,
        cashier="The register's disk is full or failing: no fiscal receipt was printed;"
        " call the technician",
    )


class FiscalDesk:
    """Prints confirmed cheques on one registrar; owns the fiscal records."""

    def __init__(self, registrar: Registrar, store: FiscalStore, *, language: str = "ru") -> None:
        self.registrar = registrar
        self.store = store
        self.language = language
        self.lock = registrar_lock(registrar.name)

    # ------------------------------------------------------------------ the answer

    def answer(self, record: FiscalRecord, replayed: bool) -> dict[str, Any]:
        done = record.answer or {}
        return {
            "chequeId": record.cheque_id,
            "registrar": record.registrar,
            "state": DocumentState.CLOSED.value,
            "documentNumber": done.get("documentNumber"),
            "fiscalSign": done.get("fiscalSign"),
            "change": Decimal(str(done.get("change", "0"))),
            "lines": done.get("lines", []),
            "replayed": replayed,
        }

    # ------------------------------------------------------------------ the print

    def print_cheque(self, cheque: RegisterCheque, request: FiscalRequest) -> dict[str, Any]:
        with self.lock:
            previous = self.store.get(cheque.id)
            if previous is not None and previous.stage is Stage.DONE:
                return self.answer(previous, replayed=True)
            if cheque.state != "confirmed":
                raise FiscalPrintError(
                    "not_confirmed",
                    f"cheque {cheque.number} is {cheque.state}: only a confirmed cheque"
                    " is printed as a fiscal receipt (confirm it first)",
                    state=None,
                )
            # a request that does not fit the cheque is refused before anything is touched
            self._compose(cheque, request, FiscalPrinter.DEFAULT_MESSAGE_WIDTH)
            record = FiscalRecord(
                cheque_id=cheque.id,
                # a close that may have gone through stays one until the device says
                stage=Stage.CLOSING
                if previous is not None and previous.stage is Stage.CLOSING
                else Stage.PRINTING,
                registrar=self.registrar.name,
                attempts=(previous.attempts if previous else 0) + 1,
                last_before=previous.last_before if previous else None,
                # a receipt of ours left open stays so until the device says otherwise
                document_state=DocumentState.OPEN.value
                if previous is not None and previous.document_state == DocumentState.OPEN
                else None,
                answer=previous.answer if previous else None,
            )
            try:
                printer = self.registrar.connect()
            except ValueError as exc:  # the config names a device no driver can serve
                raise FiscalPrintError("no_registrar", str(exc), state=None) from None
            try:
                self.store.put(record)  # before anything reaches the device
            except sqlite3.Error as exc:
                raise _records_failed(exc, DocumentState.NOT_OPENED) from None
            try:
                try:
                    printer.open()
                except (OSError, DeviceError) as exc:  # no such port, refused, unplugged
                    raise FiscalLinkError(f"cannot open its port: {exc}") from None
                found = self._recover(printer, previous, record)
                if found is not None:
                    return found
                sale = self._compose(cheque, request, printer.message_width)
                return self._print(printer, sale, record)
            except FiscalError as exc:  # before a receipt was opened
                raise self._failed(record, exc, exc.state) from None
            finally:
                try:
                    printer.close()
                except (OSError, DeviceError, FiscalError) as exc:  # the answer stands
                    log.warning("registrar %s: closing its port failed: %s", printer.name, exc)

    def _compose(self, cheque: RegisterCheque, request: FiscalRequest, width: int) -> FiscalSale:
        return compose(
            cheque,
            request,
            default_tax=self.registrar.default_tax,
            tax_system=self.registrar.tax_system,
            language=self.language,
            width=width,
        )

    def _recover(
        self, printer: FiscalPrinter, previous: FiscalRecord | None, record: FiscalRecord
    ) -> dict[str, Any] | None:
        """Ask the device before printing: a receipt of ours left open is cancelled, a close
        that went through before a crash is adopted.  Anything blocking a receipt (paper,
        cover, FN, shift) is refused here, before a receipt is opened."""
        status = printer.status()
        if not status.receipt_open:
            record.document_state = None  # the device says nothing is open
        ours = previous is not None and (
            previous.stage in (Stage.PRINTING, Stage.CLOSING)
            or previous.document_state == DocumentState.OPEN.value
        )
        if status.receipt_open:
            if not ours:
                raise self._failed(
                    record,
                    FiscalError(
                        "a receipt not opened by posbridge is open on the registrar:"
                        " close or cancel it on the register"
                    ),
                    None,
                    condition="wrong_mode",
                )
            log.warning(
                "registrar %s: cancelling the receipt cheque %s left open",
                self.registrar.name,
                record.cheque_id,
            )
            printer.cancel_fiscal_receipt()
            record.document_state = None  # cancelled: nothing of ours is open any more
            status = printer.status()
        elif record.stage is Stage.CLOSING:
            found = self._closed_meanwhile(printer, record)
            if found is not None:
                return found
        blocked = blocking_condition(status)
        if blocked is not None:
            raise self._failed(
                record,
                FiscalError(f"{STATUS_WORDS[blocked]} (device status)"),
                DocumentState.NOT_OPENED,
                condition=blocked,
            )
        return None

    def _closed_meanwhile(
        self, printer: FiscalPrinter, record: FiscalRecord
    ) -> dict[str, Any] | None:
        """After a close whose answer never came and no receipt is open: the document
        exists if the device closed a receipt after the document noted before the print
        (a fresh FN's registration report counts: its first receipt is found too)."""
        last: FiscalResult | None = None
        why = "the registrar could not tell its last document before the print"
        if record.last_before is not None:
            try:
                last = printer.receipt_after(record.last_before)
                why = ""
            except FiscalLinkError:
                raise
            except FiscalError as exc:
                why = exc.message
        # no number noted before the print, or no answer now: an old document cannot be
        # told from ours, so nothing is adopted and nothing printed
        if why:
            raise self._failed(
                record,
                FiscalError(
                    f"{why}; so whether this cheque's receipt was closed is unknown:"
                    " check the registrar's last receipt"
                ),
                None,
                condition="unknown",
            )
        if last is not None:
            log.warning(
                "registrar %s: cheque %s's receipt was closed before the failure (FD %d)",
                self.registrar.name,
                record.cheque_id,
                last.document_number,
            )
            lines = list((record.answer or {}).get("lines", []))
            return self._done(record, last, lines)
        record.stage = Stage.PRINTING  # not closed: printing again makes the only document
        return None

    def _print(
        self, printer: FiscalPrinter, sale: FiscalSale, record: FiscalRecord
    ) -> dict[str, Any]:
        record.last_before = printer.document_watermark()
        record.answer = {"lines": sale.messages}
        try:
            self.store.put(record)
        except sqlite3.Error as exc:
            raise _records_failed(exc, DocumentState.NOT_OPENED) from None
        printer.begin_fiscal_receipt()
        try:
            for item in sale.items:
                printer.print_rec_item(item)
            for text in sale.messages:
                printer.print_rec_message(text)
            record.stage = Stage.CLOSING
            try:
                self.store.put(record)
            except sqlite3.Error as exc:  # the disk: no close we could not account for
                raise _records_failed(exc, self._cancel_quietly(printer)) from None
            result = printer.end_fiscal_receipt(sale.payments, sale.tax_system)
        except FiscalError as exc:
            found = self._after_open(printer, exc, record)
            if isinstance(found, dict):
                return found
            raise self._failed(record, exc, found) from None
        return self._done(record, result, sale.messages)

    def _cancel_quietly(self, printer: FiscalPrinter) -> DocumentState:
        try:
            printer.cancel_fiscal_receipt()
        except FiscalError as exc:
            log.error("registrar %s: receipt left open: %s", self.registrar.name, exc.message)
            return DocumentState.OPEN
        return DocumentState.CANCELLED

    def _after_open(
        self, printer: FiscalPrinter, exc: FiscalError, record: FiscalRecord
    ) -> DocumentState | dict[str, Any] | None:
        """Where a receipt we opened is after `exc`: cancelled if it was still open and
        the cancel worked, open if not, closed (the answer) if the close went through;
        None if the device cannot tell."""
        try:
            status = printer.status()
        except FiscalError:  # the link is gone: what we opened may still be open
            return None if record.stage is Stage.CLOSING else DocumentState.OPEN
        if not status.receipt_open:
            if record.stage is Stage.CLOSING or exc.state is DocumentState.CLOSED:
                try:
                    return self._closed_meanwhile(printer, record) or DocumentState.CANCELLED
                except FiscalPrintError:
                    return None
            return DocumentState.CANCELLED  # the device dropped it: no document
        try:
            printer.cancel_fiscal_receipt()
        except FiscalError as cancel_exc:
            log.error(
                "registrar %s: receipt left open, the cancel failed too: %s",
                self.registrar.name,
                cancel_exc.message,
            )
            return DocumentState.OPEN
        return DocumentState.CANCELLED

    def _done(self, record: FiscalRecord, result: FiscalResult, lines: list[str]) -> dict[str, Any]:
        record.stage = Stage.DONE
        record.document_state = DocumentState.CLOSED.value
        record.error = None
        record.answer = {
            "documentNumber": result.document_number,
            "fiscalSign": result.fiscal_sign,
            "change": str(result.change),
            "lines": lines,
        }
        try:
            self.store.put(record)
        except sqlite3.Error as exc:  # the document exists: the POS gets it all the same
            log.error(
                "registrar %s: cheque %s printed as FD %d, but not recorded (%s); a retry"
                " finds it by the registrar's last document",
                self.registrar.name,
                record.cheque_id,
                result.document_number,
                exc,
            )
        log.info(
            "registrar %s: cheque %s printed, FD %d",
            self.registrar.name,
            record.cheque_id,
            result.document_number,
        )
        return self.answer(record, replayed=False)

    def _failed(
        self,
        record: FiscalRecord,
        exc: FiscalError,
        state: DocumentState | None,
        *,
        condition: str | None = None,
    ) -> FiscalPrintError:
        """Record where the document is (the retry starts from there) and make the answer.
        `state` None: unknown, the close may have gone through (the retry asks the device)."""
        condition = condition or condition_of(exc)
        if state is DocumentState.NOT_OPENED and record.document_state == DocumentState.OPEN:
            state = DocumentState.OPEN  # this attempt opened nothing; an earlier one did
        if record.stage is Stage.CLOSING and state in (None, DocumentState.NOT_OPENED):
            # a close was sent and nobody has seen its outcome: the retry compares the
            # last document's number, and until then the document's state is unknown
            state = None
        else:  # document_state open: the retry cancels the receipt first
            record.stage = Stage.FAILED
        record.document_state = None if state is None else state.value
        record.error = mask_text(exc.message.removeprefix(f"{self.registrar.name}: "))
        try:
            self.store.put(record)
        except Exception:  # the answer still tells the POS where the document is
            log.exception("cannot record the fiscal failure of cheque %s", record.cheque_id)
        log.warning(
            "registrar %s: cheque %s not printed (%s, document %s): %s",
            self.registrar.name,
            record.cheque_id,
            condition,
            record.document_state or "unknown",
            record.error,
        )
        where = f" (fiscal document: {state.value if state else 'unknown'})"
        return _failure(
            condition, state, f"registrar {self.registrar.name}: {record.error}{where}", exc
        )
