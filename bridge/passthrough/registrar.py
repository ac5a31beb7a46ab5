"""`RegistrarRelay`: an unmodified POS talks Shtrih-M to a virtual port, we talk to the real
registrar, and the loyalty block lands inside the POS's own fiscal receipt.

Towards the POS we play the device (`shtrih_pos_link`): its frame is ACKed at once and
its ENQ answered at once (ACK while the registrar is still working on the frame: the
answer follows as soon as the registrar gives it), so the POS's own timeouts and status
polling behave as with the device itself.  Towards the registrar we are the host
(`drivers.fiscal.shtrih.link`): each POS frame goes out byte for byte, its reply comes
back byte for byte.  Nothing is parsed beyond the sale, open, cancel and close frames.

On a close with a card presented, the session settles the receipt with processing
(within `settle_budget` seconds) and its lines are printed with 0x17 before the close is
forwarded.  Everything we add fails open: a slow or failed settle, a refused line, our own
bug -- the close still goes to the registrar, unaltered, in time for the POS.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from bridge.passthrough.session import Settled, SoldItem
from bridge.passthrough.shtrih_pos_link import Incoming, Kind, PosLink
from bridge.passthrough.shtrih_receipt import (
    CLOSES,
    RECEIPT_OF_OPERATION,
    SALE_RECEIPT,
    OpenReceipt,
    command_of,
    parse_operation_v2,
    parse_sale,
    password_of,
    reply_error,
)
from drivers.fiscal.shtrih import commands as cmd
from drivers.fiscal.shtrih.frames import ACK, NAK, FrameError, encode_frame, request_body
from drivers.fiscal.shtrih.link import LinkFailure, ShtrihLink
from drivers.fiscal.shtrih.replies import parse_font_width
from drivers.transport.base import Transport, TransportError

log = logging.getLogger("posbridge.passthrough.registrar")

FALLBACK_WIDTH = 32  # the narrowest common roll (57 mm): a line this wide is never cut
# status and identity reads: safe to send again if the registrar's answer was lost
REPEATABLE = frozenset({0x10, 0x11, 0x26, 0xFC, 0xFF01, 0xFF0A})
_POLL = 0.1  # how often the loops look at the stop flag


class RegistrarSession(Protocol):
    """What the relay needs of `PassthroughSession`."""

    def take_card(self) -> str | None: ...

    def receipt_opened(self) -> None: ...

    def barcode_for_item(self) -> str | None: ...

    def settle(
        self, card: str, items: Sequence[SoldItem], *, width: int, deadline: float
    ) -> Settled: ...

    def void(self, settled: Settled) -> None: ...


class _Settling:
    """A receipt's settle as the relay's settle thread delivers it; the POS's cancel of the
    receipt may come before the settle is over (it overran its budget)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settled: Settled | None = None
        self._voided = False

    def deliver(self, settled: Settled) -> bool:
        """Keep the outcome; True if the receipt was cancelled meanwhile (void it now)."""
        with self._lock:
            self._settled = settled
            return self._voided

    def cancel(self) -> Settled | None:
        """The receipt is cancelled: the outcome to void now, or None (voided on delivery)."""
        with self._lock:
            self._voided = True
            return self._settled


class RegistrarRelay:
    """One POS-facing port in front of one real registrar; `start()` / `stop()`.

    `settle_budget`: seconds the session may take to settle a receipt; `print_budget`:
    seconds more for printing its lines.  The POS's answer timeout for a close must exceed
    both plus the registrar's own time to close (pyshtrih: 3 s; most POS: far more).

    `answer_timeout` is one wait for the registrar's answer to a frame it acknowledged;
    then we ENQ: a lost answer comes back at once (well within the POS's own timeout), a
    device still printing says ACK and we wait again, up to `retries` times (so a long
    print, a Z-report, has `retries` x `answer_timeout` seconds).
    """

    def __init__(
        self,
        pos: Transport,
        device: Transport,
        session: RegistrarSession,
        *,
        name: str,
        settle_budget: float = 2.0,
        print_budget: float = 1.0,
        width: int | None = None,
        admin_password: int = 30,
        link_timeout: float = 1.0,
        answer_timeout: float = 2.0,
        retries: int = 10,
        byte_timeout: float = 0.5,
    ) -> None:
        if settle_budget <= 0 or print_budget <= 0:
            raise ValueError("settle_budget and print_budget must be positive seconds")
        if width is not None and not 16 <= width <= 80:
            raise ValueError(f"width must be 16..80 characters, got {width}")
        self.name = name
        self.pos = pos
        self.device = device
        self.session = session
        self.settle_budget = settle_budget
        self.print_budget = print_budget
        self.answer_timeout = answer_timeout
        self.admin_password = admin_password  # for 0x26 (line width) only; never logged
        self._pos_link = PosLink(pos, byte_timeout=byte_timeout)
        self._link = ShtrihLink(device, timeout=link_timeout, retries=retries)
        self._width = width  # configured, or read once with 0x26
        self._width_asked = width is not None
        self._receipt: OpenReceipt | None = None
        self._settling: _Settling | None = None  # the open receipt's settle, once closing
        # POS side: written by the reader (ACK/NAK) and the worker (answers), under the lock
        self._lock = threading.Lock()
        self._busy = False  # a POS frame is with the registrar
        self._pending: bytes | None = None  # the framed answer the POS has not ACKed yet
        self._jobs: queue.Queue[bytes] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._counts = {
            "frames_relayed": 0,  # POS frames the registrar answered, answer passed back
            "frames_inserted": 0,  # our 0x17 lines the registrar printed
            "receipts_settled": 0,  # closes with a loyalty block printed
            "failures": 0,  # anything that made us fail open or lose a POS frame's answer
            "unreadable_items": 0,  # sale frames accepted by the registrar we could not read
            "receipts_voided": 0,  # settled, then cancelled by the POS: purchase given back
        }

    # lifecycle ------------------------------------------------------------------------
    def start(self) -> RegistrarRelay:
        """Open the POS's port (its failure is a setup error, raised) and the registrar's
        (its failure is not: the POS sees a silent registrar and we retry on its frames)."""
        if not self.pos.is_open:
            self.pos.open()
        if not self.device.is_open:
            try:
                self.device.open()
            except TransportError as exc:
                log.warning("%s: registrar not reachable yet: %s", self.name, exc)
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._serve_pos, name=f"relay-pos {self.name}", daemon=True),
            threading.Thread(target=self._work, name=f"relay-kkt {self.name}", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.info("%s: relaying %s <-> %s", self.name, self.pos.name, self.device.name)
        return self

    def stop(self) -> None:
        """Stop both loops and close both ports (the relay owns them)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5.0)  # a registrar exchange under way ends by itself
        self._threads = []
        for transport in (self.pos, self.device):
            try:
                transport.close()
            except TransportError as exc:
                log.info("%s: closing %s: %s", self.name, transport.name, exc)

    def __enter__(self) -> RegistrarRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def _count(self, what: str, by: int = 1) -> None:
        with self._lock:
            self._counts[what] += by

    # POS side: the device's link role ----------------------------------------------------
    def _serve_pos(self) -> None:
        while not self._stop.is_set():
            try:
                incoming = self._pos_link.receive(_POLL)
                if incoming is not None:
                    self._on_pos(incoming)
            except TransportError as exc:  # the virtual port itself failed: keep serving
                log.warning("%s: POS port %s: %s", self.name, self.pos.name, exc)
                self._stop.wait(_POLL)

    def _on_pos(self, incoming: Incoming) -> None:
        with self._lock:
            if incoming.kind is Kind.ENQ:
                if self._busy:  # still with the registrar: "answer coming", as the device says
                    self._pos_link.send(bytes([ACK]))
                elif self._pending is not None:
                    self._pos_link.send(bytes([ACK]) + self._pending)
                else:
                    self._pos_link.send(bytes([NAK]))
            elif incoming.kind is Kind.ACK:
                self._pending = None
            elif incoming.kind is Kind.NAK:
                pass  # the answer stays pending: the POS asks for it again with ENQ
            elif incoming.kind is Kind.BAD_FRAME:
                self._pos_link.send(bytes([NAK]))
            elif self._busy:  # a second frame before the first one's answer: not taken
                log.info("%s: POS sent a frame while one is in progress; NAK", self.name)
                self._pos_link.send(bytes([NAK]))
            else:
                self._pending = None  # the POS moved on without the old answer
                self._busy = True
                self._pos_link.send(bytes([ACK]))
                self._jobs.put(incoming.body)

    def _answer(self, reply: bytes | None) -> None:
        with self._lock:
            self._busy = False
            if reply is None:
                return  # no answer: the POS times out and asks again, as with a lost device
            self._pending = encode_frame(reply)
            try:
                self._pos_link.send(self._pending)
            except TransportError as exc:  # kept pending: the POS's next ENQ gets it
                log.warning("%s: answer to the POS not written: %s", self.name, exc)

    # registrar side: the host's role ----------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                body = self._jobs.get(timeout=_POLL)
            except queue.Empty:
                continue
            reply: bytes | None = None
            try:
                reply = self._relay(body)
            except Exception:  # our bug must not cost the POS its answer
                log.exception("%s: relay failed on a POS frame", self.name)
                self._count("failures")
            finally:
                self._answer(reply)

    def _relay(self, body: bytes) -> bytes | None:
        code = command_of(body)
        if code in CLOSES:
            self._before_close(body)
        try:
            reply = self._exchange(
                body, answer_timeout=self.answer_timeout, repeatable=code in REPEATABLE
            )
        except LinkFailure as exc:
            log.warning("%s: POS frame 0x%X not answered: %s", self.name, code, exc)
            self._count("failures")
            return None
        self._count("frames_relayed")
        try:
            self._observe(code, body, reply)
        except Exception:  # reading a frame is extra; its answer goes back regardless
            log.exception("%s: could not follow the receipt on 0x%X", self.name, code)
            self._count("failures")
        return reply

    def _exchange(self, body: bytes, *, answer_timeout: float, repeatable: bool) -> bytes:
        if not self.device.is_open:
            try:
                self.device.open()
            except TransportError as exc:
                raise LinkFailure(f"registrar {self.device.name}: {exc}", delivered=False) from exc
        return self._link.exchange(body, answer_timeout=answer_timeout, repeatable=repeatable)

    # following the receipt --------------------------------------------------------------------
    def _observe(self, code: int, body: bytes, reply: bytes) -> None:
        if reply_error(reply) != 0:
            return  # refused by the registrar: nothing changed on the receipt
        if code == cmd.OPEN_RECEIPT:
            kind = body[5] if len(body) > 5 else SALE_RECEIPT
            self._open(kind)
        elif code == cmd.FONT_INFO and body[5:6] == b"\x01" and not self._width_asked:
            self._learn_width(reply)
        elif code in (cmd.SALE, cmd.OPERATION_V2):
            self._item(code, body)
        elif code == cmd.CANCEL:
            self._receipt = None
            settling, self._settling = self._settling, None
            settled = None if settling is None else settling.cancel()
            if settled is not None:
                self._void(settled)
        elif code in CLOSES:
            self._receipt = None
            self._settling = None

    def _void(self, settled: Settled) -> None:
        """A receipt settled with processing was cancelled: no sale, so no accrual."""
        if settled.purchase is None:
            return
        try:
            self.session.void(settled)
            self._count("receipts_voided")
        except Exception:
            log.exception("%s: the cancelled receipt's purchase was not given back", self.name)
            self._count("failures")

    def _open(self, kind: int) -> OpenReceipt:
        self._receipt = OpenReceipt(kind)
        self._settling = None
        try:
            self.session.receipt_opened()
        except Exception:
            log.exception("%s: session.receipt_opened failed", self.name)
            self._count("failures")
        return self._receipt

    def _item(self, code: int, body: bytes) -> None:
        try:
            if code == cmd.SALE:
                kind, item = SALE_RECEIPT, parse_sale(body)
            else:
                operation, item = parse_operation_v2(body)
                kind = RECEIPT_OF_OPERATION.get(operation, -1)
        except FrameError as exc:
            log.warning("%s: sale frame not read (%s); the cheque misses it", self.name, exc)
            receipt = self._receipt or self._open(SALE_RECEIPT)
            receipt.unreadable += 1
            self._count("unreadable_items")
            return
        try:  # the product scan just before this item says which product it is
            barcode = self.session.barcode_for_item()
        except Exception:
            log.exception("%s: session.barcode_for_item failed", self.name)
            barcode = None
        receipt = self._receipt or self._open(kind)  # (this forgets scans: claimed first)
        receipt.items.append(replace(item, barcode=barcode) if barcode else item)

    # the close --------------------------------------------------------------------------------
    def _before_close(self, close: bytes) -> None:
        """Settle and print the block; never raises, never keeps the close past the budgets."""
        started = time.monotonic()
        receipt = self._receipt
        if receipt is not None:
            if receipt.closing:  # a close the registrar refused, sent again: block done
                return
            receipt.closing = True
        try:
            card = self.session.take_card()
        except Exception:
            log.exception("%s: session.take_card failed; receipt left untouched", self.name)
            self._count("failures")
            return
        if card is None:
            return
        if receipt is None or not receipt.items:
            log.info("%s: a card, but no items seen in this receipt: not settled", self.name)
            return
        if receipt.kind != SALE_RECEIPT:
            log.info("%s: a card on a refund or purchase receipt: not settled", self.name)
            return
        if receipt.unreadable:  # the cheque's total would not be the receipt's
            log.warning("%s: %d sale frame(s) unread: not settled", self.name, receipt.unreadable)
            self._count("failures")
            return
        try:
            password = password_of(close)
            width = self._line_width(password)
            self._settling = settling = _Settling()
            lines = self._settle(card, receipt.items, width, started + self.settle_budget, settling)
            if lines:
                self._print(lines, password, started + self.settle_budget + self.print_budget)
        except Exception:
            log.exception("%s: loyalty block failed; the close goes out without it", self.name)
            self._count("failures")

    def _learn_width(self, reply: bytes) -> None:
        """The POS asked font 1's width itself (many do at start): no 0x26 of ours needed."""
        try:
            self._width = parse_font_width(reply[2:])
        except FrameError as exc:
            log.info("%s: the POS's font info not read (%s)", self.name, exc)
            return
        self._width_asked = True
        log.info("%s: loyalty lines laid out at %d characters", self.name, self._width)

    def _line_width(self, password: int) -> int:
        """Characters per line of font 1: as the POS read it with 0x26, else read once with
        0x26 of our own before the first block, else the narrow fallback.

        0x26 wants the administrator's password: the POS's own is tried first (many shops
        run the POS as the administrator), then `admin_password` (the factory 30 unless
        configured).  A read only: a refusal changes nothing on the registrar.
        """
        if self._width_asked:
            return self._width or FALLBACK_WIDTH
        for attempt in dict.fromkeys((password, self.admin_password)):
            body = request_body(cmd.FONT_INFO, attempt, bytes([1]))
            try:
                reply = self._exchange(body, answer_timeout=self._link.timeout, repeatable=True)
            except LinkFailure as exc:  # transient: asked again at the next close
                log.info("%s: line width not read (%s); %d used", self.name, exc, FALLBACK_WIDTH)
                return FALLBACK_WIDTH
            error = reply_error(reply)
            try:
                if command_of(reply) != cmd.FONT_INFO or error != 0:
                    raise FrameError(f"font info refused (error {error})")
                self._width = parse_font_width(reply[2:])  # 0x26 ERR fields
                break
            except FrameError as exc:
                log.info("%s: line width unknown (%s)", self.name, exc)
        self._width_asked = True
        if self._width is None:
            log.info("%s: loyalty lines laid out at %d characters", self.name, FALLBACK_WIDTH)
        return self._width or FALLBACK_WIDTH

    def _settle(
        self,
        card: str,
        items: Sequence[SoldItem],
        width: int,
        deadline: float,
        settling: _Settling,
    ) -> list[str]:
        """The session's lines, or [] when it fails or overruns `deadline` (it is left behind
        and delivers to `settling` when it ends)."""
        outcome: list[Settled] = []

        def run() -> None:
            try:
                settled = self.session.settle(card, list(items), width=width, deadline=deadline)
            except Exception:
                log.exception("%s: settle failed", self.name)
                return
            outcome.append(settled)
            if settling.deliver(settled):  # the POS cancelled the receipt meanwhile
                self._void(settled)

        worker = threading.Thread(target=run, name=f"relay-settle {self.name}", daemon=True)
        worker.start()
        worker.join(max(deadline - time.monotonic(), 0.0))
        if not outcome:
            why = "still running" if worker.is_alive() else "failed"
            log.warning(
                "%s: settle %s at the budget; receipt closed without the block", self.name, why
            )
            self._count("failures")
            return []
        settled = outcome[0]
        if settled.reason.startswith("failed"):
            log.warning("%s: settle %s", self.name, settled.reason)
            self._count("failures")
        return list(settled.lines)

    def _print(self, lines: Sequence[str], password: int, deadline: float) -> None:
        """0x17 lines inside the open receipt; the first refusal or overrun ends the block."""
        printed = 0
        for line in lines:
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning("%s: out of time after %d of %d lines", self.name, printed, len(lines))
                self._count("failures")
                break
            body = request_body(cmd.PRINT_STRING, password, cmd.print_string(line).data)
            try:
                reply = self._exchange(body, answer_timeout=left, repeatable=False)
            except LinkFailure as exc:
                log.warning("%s: loyalty line not printed: %s", self.name, exc)
                self._count("failures")
                break
            error = reply_error(reply)
            if command_of(reply) != cmd.PRINT_STRING or error != 0:
                log.warning("%s: registrar refused a loyalty line (error %s)", self.name, error)
                self._count("failures")
                break
            printed += 1
        self._count("frames_inserted", printed)
        if printed == len(lines):
            self._count("receipts_settled")
