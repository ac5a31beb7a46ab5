"""The command table: each supported command's request layout, its effect and its answer.

Layouts follow the vendor's protocol description (the javadoc of the JavaPOS driver's
command classes): a one-byte command answers `CMD ERR OPERATOR ...`, an 0xFF.. command
`FF CMD ERR ...`; a refused command answers its code and the error byte only.  Lengths
in the vendor's text count the command byte: short status 0x10 is 16 bytes long.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from sandbox.registrar.codec import (
    Reader,
    Truncated,
    date_dmy,
    datetime_ymdhm,
    encode_text,
    le,
    text,
    time_hms,
)
from sandbox.registrar.errors import CommandError, DeviceError
from sandbox.registrar.faults import FaultBook
from sandbox.registrar.framing import command_bytes
from sandbox.registrar.paper import Paper, PaperKind
from sandbox.registrar.state import ClosedDocument, DeviceState, Item, money

log = logging.getLogger("posbridge.sandbox.registrar")

UNKNOWN_AMOUNT = 0xFF_FFFF_FFFF  # 0xFF46: "let the device compute it"
TAX_BITS = (1, 2, 4, 8, 16, 32)  # НДС 20, 10, 0, без НДС, 20/120, 10/110
TAX_SYSTEM_BITS = (1, 2, 4, 8, 16, 32)  # ОСН, УСН доход, УСН доход-расход, ЕНВД, ЕСХН, патент
RECEIPT_TITLES = ("ПРИХОД", "РАСХОД", "ВОЗВРАТ ПРИХОДА", "ВОЗВРАТ РАСХОДА")
PAYMENT_NAMES = {1: "НАЛИЧНЫМИ", 2: "ЭЛЕКТРОННЫМИ", 14: "ПРЕДОПЛАТА", 15: "ПОСТОПЛАТА"}
PRINT_WIDTH_DOTS_PER_CHAR = 12  # font 1
FONT_CHAR_WIDTHS = (12, 24, 12, 24, 9, 12, 16)  # fonts 1..7, dots per character
FONT_HEIGHT = 24


@dataclass(frozen=True)
class Identity:
    """What the device says about itself (0xFC, 0x11, 0xFF01)."""

    name: str = "ШТРИХ-М-01Ф"
    model: int = 19
    serial: int = 40_000_001
    fn_serial: str = "9999078900012345"
    inn: int = 7_700_000_000


Handler = Callable[["Registrar", Reader, int], bytes]


class Registrar:
    """One emulated device: state, paper and faults behind one lock, driven by answer bodies."""

    def __init__(
        self,
        *,
        password: int,
        admin_password: int,
        line_width: int,
        paper: Paper,
        faults: FaultBook,
        identity: Identity,
        auto_cut: bool = True,
    ) -> None:
        self.password = password
        self.admin_password = admin_password
        self.line_width = line_width
        self.print_width = line_width * PRINT_WIDTH_DOTS_PER_CHAR
        self.paper = paper
        self.faults = faults
        self.identity = identity
        self.auto_cut = auto_cut
        self.state = DeviceState()
        self.lock = threading.RLock()
        self.commands_seen: Counter[int] = Counter()  # code -> times executed

    # -- entry ----------------------------------------------------------------------------

    def execute(self, code: int, data: bytes) -> bytes:
        """The answer body (command bytes, error byte, fields) for one received command."""
        head = command_bytes(code)
        with self.lock:
            self.commands_seen[code] += 1
            handler = HANDLERS.get(code)
            if handler is None:
                return head + bytes([DeviceError.NOT_SUPPORTED])
            injected = self.faults.error_for(code)
            if injected is not None:
                return head + bytes([injected])
            reader = Reader(data)
            try:
                operator = 0 if code in NO_PASSWORD else self._operator(code, reader)
                return head + bytes([DeviceError.OK]) + handler(self, reader, operator)
            except CommandError as refused:
                return head + bytes([refused.code])
            except Truncated:
                return head + bytes([DeviceError.BAD_PARAMETERS])
            except Exception:  # an emulator bug: logged loudly, the link stays up
                log.exception("registrar emulator failed on command 0x%02X", code)
                return head + bytes([DeviceError.NOT_SUPPORTED])

    def _operator(self, code: int, reader: Reader) -> int:
        given = reader.uint(4)
        if code in ADMIN_ONLY:
            if given != self.admin_password and given != 29:
                raise CommandError(DeviceError.WRONG_PASSWORD)
            return 29 if given == 29 else 30
        if given in (self.password, self.admin_password):
            return given if 1 <= given <= 30 else 30
        if 1 <= given <= 29:  # the other operators' factory passwords
            return given
        raise CommandError(DeviceError.WRONG_PASSWORD)

    # -- printing -------------------------------------------------------------------------

    def columns(self, font: int) -> int:
        return self.print_width // FONT_CHAR_WIDTHS[font - 1]

    def print_line(self, kind: PaperKind, line: str, font: int = 1) -> None:
        self.paper.add(kind, line[: self.columns(font)], font)

    def two_columns(self, kind: PaperKind, left: str, right: str) -> None:
        gap = max(1, self.line_width - len(left) - len(right))
        self.print_line(kind, left + " " * gap + right)

    def print_document_footer(self, document: ClosedDocument) -> None:
        moment = document.moment.strftime("%d.%m.%y %H:%M")
        self.two_columns("fiscal", f"СМЕНА {document.shift}", moment)
        self.two_columns("fiscal", f"ФН {self.identity.fn_serial}", f"ФД {document.number}")
        self.two_columns("fiscal", "ФП", str(document.sign))

    def print_shift_report(self, document: ClosedDocument, title: str) -> None:
        self.print_line("report", title.center(self.line_width).rstrip())
        self.print_document_footer(document)
        if self.auto_cut:
            self.paper.add("cut")

    def stamp(self) -> datetime:
        return datetime.now().replace(microsecond=0)


# -- status and identity -----------------------------------------------------------------


def _flags(state: DeviceState) -> int:
    flags = 1 << 4 | 1 << 9  # two decimal places; receipt thermal head lever down
    if not state.paper_out:
        flags |= 1 << 1 | 1 << 7  # receipt roll present, paper at the receipt sensor
    if state.cover_open:
        flags |= 1 << 10
    return flags


def short_status(dev: Registrar, r: Reader, operator: int) -> bytes:
    s = dev.state
    operations = len(s.receipt.items) if s.receipt is not None else 0
    return (
        bytes([operator])
        + le(_flags(s), 2)
        + bytes([s.mode_byte, s.submode, operations & 0xFF, 0x9C, 0x6F, 0, 0, operations >> 8])
        + bytes(3)
    )


def full_status(dev: Registrar, r: Reader, operator: int) -> bytes:
    s = dev.state
    now = dev.stamp()
    firmware = datetime(2024, 3, 1)
    last_closed = s.shift_number - 1 if s.shift_open else s.shift_number
    return (
        bytes([operator])
        + b"C1"  # firmware version, two characters ("C.1")
        + le(1001, 2)
        + date_dmy(firmware)
        + bytes([1])  # number in the hall
        + le(s.last_document & 0xFFFF, 2)
        + le(_flags(s), 2)
        + bytes([s.mode_byte, s.submode, 0])  # mode, submode, port
        + b"C1"
        + le(1001, 2)
        + date_dmy(firmware)
        + date_dmy(now)
        + time_hms(now)
        + bytes([0x01 if not s.fn_missing else 0x00])  # FM flags: storage present
        + le(dev.identity.serial, 4)
        + le(max(last_closed, 0), 2)
        + le(2000, 2)  # free shift records
        + bytes([1, 11])  # fiscalisations done and left
        + le(dev.identity.inn, 6)
    )


def device_type(dev: Registrar, r: Reader, operator: int) -> bytes:
    # type 0 (fiscal registrar), subtype 4, protocol 1.6, model, language 0 (Russian), name
    return bytes([0, 4, 1, 6, dev.identity.model, 0]) + encode_text(dev.identity.name)


def font_parameters(dev: Registrar, r: Reader, operator: int) -> bytes:
    font = r.uint(1)
    if not 1 <= font <= len(FONT_CHAR_WIDTHS):
        raise CommandError(DeviceError.BAD_PARAMETERS, f"no font {font}")
    width = FONT_CHAR_WIDTHS[font - 1]
    return le(dev.print_width, 2) + bytes([width, FONT_HEIGHT, len(FONT_CHAR_WIDTHS)])


# -- printing commands ----------------------------------------------------------------------


def _print_text(dev: Registrar, r: Reader, kind: PaperKind, font: int | None) -> None:
    stations = r.uint(1)
    if font is None:
        font_no = 1
    else:
        font_no = r.uint(1)
        if not 1 <= font_no <= len(FONT_CHAR_WIDTHS):
            raise CommandError(DeviceError.BAD_PARAMETERS, f"no font {font_no}")
    line = text(r.rest())
    dev.state.require_printer()
    if not stations & 0b10:  # journal only: nothing reaches the receipt
        return
    if kind == "bold":
        dev.paper.add("bold", line[: dev.line_width // 2])
    else:
        dev.print_line(kind, line, font_no)
    if dev.state.receipt is not None:
        dev.state.receipt.messages.append(line)


def print_string(dev: Registrar, r: Reader, operator: int) -> bytes:
    _print_text(dev, r, "text", None)
    return bytes([operator])


def print_bold(dev: Registrar, r: Reader, operator: int) -> bytes:
    _print_text(dev, r, "bold", None)
    return bytes([operator])


def print_font(dev: Registrar, r: Reader, operator: int) -> bytes:
    _print_text(dev, r, "font", 0)
    return bytes([operator])


def cut(dev: Registrar, r: Reader, operator: int) -> bytes:
    kind = r.uint(1)
    if kind not in (0, 1):
        raise CommandError(DeviceError.BAD_PARAMETERS, f"cut type {kind}")
    dev.state.require_printer()
    dev.paper.add("cut", "full" if kind == 0 else "partial")
    return bytes([operator])


def continue_print(dev: Registrar, r: Reader, operator: int) -> bytes:
    if dev.state.paper_out:
        raise CommandError(DeviceError.NO_RECEIPT_PAPER, "still no paper")
    dev.state.await_continue = False
    return bytes([operator])


# -- receipts -------------------------------------------------------------------------------


def _open(dev: Registrar, kind: int) -> None:
    s = dev.state
    if s.mode not in (2, 3, 4):
        raise CommandError(DeviceError.WRONG_MODE, f"mode {s.mode}")
    dev.state.require_printer()
    report = s.begin_receipt(kind, dev.stamp())
    if report is not None:
        dev.print_shift_report(report, "ОТЧЕТ ОБ ОТКРЫТИИ СМЕНЫ")
    dev.print_line("header", "КАССОВЫЙ ЧЕК".center(dev.line_width).rstrip())
    dev.print_line("header", RECEIPT_TITLES[kind].center(dev.line_width).rstrip())


def open_receipt(dev: Registrar, r: Reader, operator: int) -> bytes:
    _open(dev, r.uint(1))
    return bytes([operator])


def _add_item(dev: Registrar, item: Item, receipt_kind: int) -> None:
    s = dev.state
    if s.receipt is None:
        _open(dev, receipt_kind)  # a sale in a closed or open shift opens the receipt itself
    else:
        s.require_printer()
        s.require_fn(writing=True)
    if s.receipt is None:  # _open() sets it or raises; checked so python -O keeps the guard
        raise CommandError(DeviceError.WRONG_MODE, "no open receipt")
    s.receipt.items.append(item)
    if item.name:
        dev.print_line("item", item.name)
    quantity = f"{item.quantity.normalize():f}"
    dev.two_columns("item", f"{quantity} X {money(item.price)}", f"={money(item.amount)}")


def _amount(quantity: Decimal, price: int) -> int:
    return int((quantity * price).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def sale(dev: Registrar, r: Reader, operator: int) -> bytes:
    quantity = Decimal(r.uint(5)) / 1000
    price = r.uint(5)
    department = r.uint(1)
    taxes = [r.uint(1) for _ in range(4)]
    name = text(r.rest())
    if quantity <= 0 or department > 16:
        raise CommandError(DeviceError.BAD_PARAMETERS, "quantity or department")
    item = Item(name, quantity, price, _amount(quantity, price), taxes[0], department)
    _add_item(dev, item, 0)
    return bytes([operator])


def operation_v2(dev: Registrar, r: Reader, operator: int) -> bytes:
    operation = r.uint(1)
    quantity = Decimal(r.uint(6)) / 1_000_000
    price = r.uint(5)
    amount = r.uint(5)
    r.uint(5)  # tax amount: the device computes it when given 0xFF..FF
    tax = r.uint(1)
    department = r.uint(1)
    method = r.uint(1)
    subject = r.uint(1)
    raw_name = r.rest()
    if not 1 <= operation <= 4:
        raise CommandError(DeviceError.BAD_PARAMETERS, f"operation {operation}")
    if quantity <= 0 or tax not in TAX_BITS or not 1 <= method <= 7 or not 1 <= subject <= 33:
        raise CommandError(DeviceError.BAD_PARAMETERS, "quantity, tax, method or subject")
    if len(raw_name) > 128:
        raise CommandError(DeviceError.BAD_PARAMETERS, "name longer than 128 bytes")
    if amount == UNKNOWN_AMOUNT:
        amount = _amount(quantity, price)
    name = text(raw_name)
    item = Item(name, quantity, price, amount, tax, department, method, subject, operation)
    _add_item(dev, item, (0, 0, 2, 1, 3)[operation])
    return b""


def _close(
    dev: Registrar, payments: dict[int, int], tax_system: int | None, taxes: list[int]
) -> ClosedDocument:
    s = dev.state
    s.require_printer()
    receipt = s.receipt
    if receipt is None:
        raise CommandError(DeviceError.WRONG_MODE, "no open receipt")
    document = s.close_receipt(dev.stamp(), payments, tax_system=tax_system, taxes=taxes)
    dev.two_columns("total", "ИТОГ", f"={money(receipt.total)}")
    for kind, sum_ in document.payments.items():
        dev.two_columns("payment", PAYMENT_NAMES.get(kind, f"ОПЛАТА {kind}"), f"={money(sum_)}")
    if document.change:
        dev.two_columns("payment", "СДАЧА", f"={money(document.change)}")
    dev.print_document_footer(document)
    if dev.auto_cut:
        dev.paper.add("cut", "auto")
    return document


def close_receipt(dev: Registrar, r: Reader, operator: int) -> bytes:
    payments = {kind: r.uint(5) for kind in (1, 2, 3, 4)}
    r.signed(2)  # receipt discount, per cent
    [r.uint(1) for _ in range(4)]
    r.rest()
    document = _close(dev, payments, None, [])
    return bytes([operator]) + le(document.change, 5)


def close_receipt_v2(dev: Registrar, r: Reader, operator: int) -> bytes:
    payments = {kind: r.uint(5) for kind in range(1, 17)}
    r.uint(1)  # rounding, kopecks
    taxes = [r.uint(5) for _ in range(6)]
    tax_system = r.uint(1)
    if len(r.rest()) > 64:
        raise CommandError(DeviceError.BAD_PARAMETERS, "text longer than 64 bytes")
    if tax_system not in TAX_SYSTEM_BITS:
        raise CommandError(DeviceError.BAD_PARAMETERS, f"tax system {tax_system}")
    document = _close(dev, payments, tax_system, taxes)
    return (
        le(document.change, 5)
        + le(document.number, 4)
        + le(document.sign, 4)
        + datetime_ymdhm(document.moment)
    )


def cancel_receipt(dev: Registrar, r: Reader, operator: int) -> bytes:
    dev.state.cancel_receipt()
    dev.print_line("header", "ЧЕК АННУЛИРОВАН".center(dev.line_width).rstrip())
    if dev.auto_cut:
        dev.paper.add("cut", "auto")
    return bytes([operator])


# -- shift and fiscal storage ---------------------------------------------------------------


def open_shift(dev: Registrar, r: Reader, operator: int) -> bytes:
    dev.state.require_printer()
    document = dev.state.open_shift(dev.stamp())
    dev.print_shift_report(document, "ОТЧЕТ ОБ ОТКРЫТИИ СМЕНЫ")
    return bytes([operator])


def z_report(dev: Registrar, r: Reader, operator: int) -> bytes:
    dev.state.require_printer()
    document = dev.state.close_shift(dev.stamp())
    dev.print_shift_report(document, "ОТЧЕТ О ЗАКРЫТИИ СМЕНЫ")
    return bytes([operator])


def fn_status(dev: Registrar, r: Reader, operator: int) -> bytes:
    s = dev.state
    s.require_fn(writing=False)
    receipt = s.receipt
    return (
        bytes([0x03])  # set up, fiscal mode open
        + bytes([0x04 if receipt is not None else 0x00])
        + bytes([1 if receipt is not None and receipt.items else 0])
        + bytes([1 if s.shift_open else 0])
        + bytes([0x04 if s.fn_full else 0x00])  # warning: memory 99 % full
        + datetime_ymdhm(dev.stamp())
        + dev.identity.fn_serial.encode("ascii")[:16].ljust(16, b" ")
        + le(s.last_document, 4)
    )


def find_document(dev: Registrar, r: Reader, operator: int) -> bytes:
    wanted = r.uint(4)
    dev.state.require_fn(writing=False)
    for document in dev.state.documents:
        if document.number == wanted:
            break
    else:
        raise CommandError(DeviceError.FN_NO_DATA, f"no document {wanted}")
    doc_type = {"shift_open": 2, "receipt": 3, "shift_close": 5}[document.kind]
    body = (
        bytes([doc_type, 0])  # type, no OFD ticket yet
        + datetime_ymdhm(document.moment)
        + le(document.number, 4)
        + le(document.sign, 4)
    )
    if document.receipt is not None:
        return body + bytes([document.receipt.kind + 1]) + le(document.receipt.total, 5)
    return body + le(document.shift, 2)


HANDLERS: dict[int, Handler] = {
    0x10: short_status,
    0x11: full_status,
    0x12: print_bold,
    0x17: print_string,
    0x25: cut,
    0x26: font_parameters,
    0x2F: print_font,
    0x41: z_report,
    0x80: sale,
    0x85: close_receipt,
    0x88: cancel_receipt,
    0x8D: open_receipt,
    0xB0: continue_print,
    0xE0: open_shift,
    0xFC: device_type,
    0xFF01: fn_status,
    0xFF0A: find_document,
    0xFF45: close_receipt_v2,
    0xFF46: operation_v2,
}
NO_PASSWORD = frozenset({0xFC})
# 0xFF45 (close V2) takes the operator's password: the vendor's JavaPOS driver closes with it
ADMIN_ONLY = frozenset({0x26, 0x41, 0xFF01, 0xFF0A})
