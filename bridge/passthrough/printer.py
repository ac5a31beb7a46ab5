"""The POS's own ESC/POS printer, with the loyalty block of its cheque printed before the cut.

The POS confirms a cheque through our API, then prints its receipt on its printer as it always
did; this relay stands between them.  Bytes go both ways untouched (the POS's DLE EOT and ASB
status queries are answered by the real printer, relayed back at once), except at a cut: there
the block of the cheque confirmed just before goes in front of GS V, and in front of the paper
feeds the POS sends just before it (after them, the cutter would cut through the block).  The
cheque is the one whose number the receipt's text shows, else the most recent one confirmed
within `window` (`PassthroughSession.recent_block` decides; each block is printed once).

Where a command stops is read by `drivers.printer.stream`, so a 1D 56 inside an image or a QR
code is never taken for a cut; if the stream holds a command it cannot measure, nothing is
inserted until the POS resets the printer (ESC @).  With nothing to insert the printer gets
the very bytes the POS sent.  The block is encoded as our ESC/POS driver encodes text (its code
page slot and font, `drivers.printer.document`), without ESC @: a reset would throw away the
POS's partial line, its downloaded logo and its ASB setting.  The print modes the POS had set
(bold, size, alignment, code page, ...) are put back after the block, before the cut.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Protocol

from bridge.receipts.render import render_target
from drivers.masking import mask_text
from drivers.printer.document import INIT, LF, encode_text, init_sequence
from drivers.printer.profile import RenderTarget
from drivers.printer.stream import CR, DLE, FF, EscposStream, Kind, Token
from drivers.reconnect import Backoff
from drivers.transport.base import Transport, TransportError

log = logging.getLogger("posbridge.passthrough.printer")

READ_TIMEOUT = 0.1  # how often the relay threads look at the stop flag while idle
TEXT_KEPT = 16384  # receipt text searched for the cheque number (its head: the number is there)

# Print modes that change how our text prints: set to the default for the block, then the
# POS's own value put back.  ESC t and ESC M are set to ours (the driver's code page and font).
_MODES = frozenset(
    (b"\x1b!", b"\x1b ", b"\x1b-", b"\x1bE", b"\x1bG", b"\x1bV", b"\x1ba", b"\x1b{")
) | frozenset((b"\x1d!", b"\x1dB", b"\x1bt", b"\x1bM"))
_PRINT_AND_FEED = frozenset((b"\x1bd", b"\x1bJ", b"\x1bK", b"\x1be"))  # the line is printed

# "Чек № 1042", "ЧЕК N 1042", "Receipt #A-17", "Заказ №: 55": a label, a number sign, the number
_LABELLED = re.compile(
    r"(?:ч[её]к|кассовый\s+ч[её]к|check|cheque|receipt|заказ|order|документ|док\.?)"
    r"\s*(?:№|n[o°º]?\.?|#)\s*:?\s*([0-9a-zа-я][0-9a-zа-я/_.-]*)",
    re.IGNORECASE,
)
_NUMBERED = re.compile(r"(?:№|#)\s*:?\s*([0-9][0-9a-z/_.-]*)", re.IGNORECASE)


def _is_feed(token: Token) -> bool:
    if token.kind is Kind.CONTROL:
        return token.data in (LF, b"\r")
    return token.kind is Kind.COMMAND and token.data[:2] in (b"\x1bd", b"\x1bJ")


class BlockSource(Protocol):
    """What the relay needs of `bridge.passthrough.session.PassthroughSession`."""

    def recent_block(
        self, cheque_number: str | None, *, width: int, window: float
    ) -> list[str] | None: ...


@dataclass
class PrinterCounts:
    """For metrics: what went through and what was added."""

    bytes_to_printer: int = 0
    bytes_to_pos: int = 0
    cuts: int = 0
    blocks_inserted: int = 0
    not_inserted: int = 0  # cuts where the stream was not trusted (unknown command, page mode)
    unknown_commands: int = 0
    failures: int = 0  # our own errors and the printer's transport errors

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def cheque_number_in(text: str) -> str | None:
    """The cheque number a receipt prints, if it labels one; else the first "№ ..."."""
    found = _LABELLED.search(text) or _NUMBERED.search(text)
    return found.group(1).rstrip("./-") if found else None


class _Modes:
    """The print modes the POS set since its last ESC @, in the order it last set them."""

    def __init__(self) -> None:
        self.set: dict[bytes, bytes] = {}

    def seen(self, command: bytes) -> None:
        if command[:2] == INIT:
            self.set.clear()
        elif command[:2] in _MODES and len(command) == 3:
            self.set.pop(command[:2], None)
            self.set[command[:2]] = command

    def defaults(self) -> bytes:
        return b"".join(key + b"\x00" for key in self.set if key not in (b"\x1bt", b"\x1bM"))

    def restore(self, target: RenderTarget) -> bytes:
        """The POS's modes again.  A font the POS never chose is put back to font A; a code
        page it never chose stays ours: the printer's power-on default is not known here."""
        font_set = b"\x1bM" in self.set or b"\x1b!" in self.set
        back = b"" if font_set or target.font == "a" else b"\x1bM\x00"
        return back + b"".join(self.set.values())


class PrinterRelay:
    """Relays a POS's ESC/POS printer port to the real printer; one thread each way."""

    def __init__(
        self,
        pos: Transport,
        device: Transport,
        session: BlockSource,
        *,
        window: float,
        width: int,
        target: RenderTarget | None = None,
        name: str = "printer",
        backoff: Backoff | None = None,
    ) -> None:
        if window < 0:
            raise ValueError(f"printer pass-through {name}: window must be >= 0, got {window}")
        if target is None:
            target = render_target(width)  # the register's default: CP866 on 80 mm
        self.pos = pos
        self.device = device
        self.session = session
        self.window = window
        self.width = width
        self.target = target
        self.name = name
        self.backoff = backoff or Backoff()
        self.counts = PrinterCounts()
        self._stream = EscposStream()
        self._modes = _Modes()
        self._text = bytearray()  # the receipt's text since the last cut
        self._feeds = bytearray()  # paper feeds after the last line: a cut may follow
        self._line_open = False  # text waits in the printer's line buffer
        self._page_mode = False
        self._stop = threading.Event()
        self._device_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ life

    def start(self) -> PrinterRelay:
        self._stop.clear()
        for transport in (self.pos, self.device):
            if not transport.is_open:
                try:
                    transport.open()
                except TransportError as exc:  # the loops retry the printer
                    log.warning("%s: %s", self.name, exc)
        self._threads = [
            threading.Thread(target=self._pos_to_printer, name=f"{self.name}-out", daemon=True),
            threading.Thread(target=self._printer_to_pos, name=f"{self.name}-in", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop both threads, hand the printer what is held back, close both ports (the
        relay owns them)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        held = self.idle() + self._stream.flush()
        if held:  # an incomplete command the POS will never finish: still the POS's bytes
            self._to_printer(held)
        for transport in (self.pos, self.device):
            try:
                transport.close()
            except TransportError as exc:
                log.info("%s: closing %s: %s", self.name, transport.name, exc)

    def __enter__(self) -> PrinterRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def counters(self) -> dict[str, int]:
        return self.counts.as_dict()

    # ------------------------------------------------------------------ the two directions

    def _pos_to_printer(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.pos.read(4096, timeout=READ_TIMEOUT)
            except TransportError as exc:
                self._failed("the POS port failed", exc)
                continue
            try:
                if data:
                    self._to_printer(self.relay(data))
                elif self._feeds:
                    self._to_printer(self.idle())
            except Exception as exc:  # a bug of ours must not stop the POS's printing
                self._failed("relaying to the printer failed", exc)

    def _printer_to_pos(self) -> None:
        if not self.device.can_read:
            return  # a printer without a back channel: the POS's queries go unanswered
        while not self._stop.is_set():
            try:
                data = self._device_op(lambda: self.device.read(256, timeout=READ_TIMEOUT))
            except TransportError:
                continue  # the printer is being reopened
            if not data:
                continue
            self.counts.bytes_to_pos += len(data)
            try:
                self.pos.write(data)
            except TransportError as exc:
                self.counts.failures += 1
                log.info("%s: a printer reply not delivered to the POS: %s", self.name, exc)

    def _failed(self, what: str, exc: Exception) -> None:
        self.counts.failures += 1
        log.warning("%s: %s: %s", self.name, what, exc)
        self._stop.wait(self.backoff.delay(1))

    def _to_printer(self, data: bytes) -> None:
        """Write all of `data`, waiting for the printer to come back if it went away: the POS
        is held up meanwhile, as it would be by a printer that is off."""
        while data:
            try:
                self._device_op(lambda: self.device.write(data))
            except TransportError:
                if self._stop.is_set():
                    log.warning("%s: %d bytes not printed: stopping", self.name, len(data))
                    return
                continue
            self.counts.bytes_to_printer += len(data)
            return

    def _device_op(self, op: Callable[[], bytes | None]) -> bytes | None:
        """`op` on the printer; on a transport error, close it and reopen after a backoff."""
        try:
            if not self.device.is_open:
                with self._device_lock:
                    if not self.device.is_open:
                        self.device.open()
                        self.backoff.reset()
                        log.info("%s: printer %s is back", self.name, self.device.name)
            return op()
        except (TransportError, OSError, ValueError) as exc:  # ValueError: closed under a read
            self.counts.failures += 1
            log.warning("%s: printer %s: %s", self.name, self.device.name, exc)
            with self._device_lock:
                self.device.close()
            self._stop.wait(self.backoff.next())
            if isinstance(exc, TransportError):
                raise
            raise TransportError(f"{self.device.name}: {exc}") from exc

    # ------------------------------------------------------------------ the stream

    def relay(self, data: bytes) -> bytes:
        """What goes to the printer for `data` from the POS: the same bytes, plus a block
        before a cut.  Held back: an incomplete command at the end, and paper feeds after the
        last printed line (a block goes before them, or the cutter would cut through it),
        until the next command or `idle()`."""
        out: list[bytes] = []
        for token in self._stream.feed(data):
            if token.kind is Kind.CUT:
                out.append(self._at_cut())
            elif _is_feed(token) and not self._line_open:
                self._feeds += token.data
                continue
            elif token.kind is Kind.COMMAND and token.data[0] == DLE:
                out.append(token.data)  # real time (a status query): runs on arrival anyway
                continue
            else:
                self._note(token)
            if self._feeds:
                out.append(self.idle())
            out.append(token.data)
        self.counts.unknown_commands = self._stream.unknown_commands
        return b"".join(out)

    def idle(self) -> bytes:
        """The held feeds, once the POS has paused: no cut came right after them."""
        feeds, self._feeds = bytes(self._feeds), bytearray()
        return feeds

    def _note(self, token: Token) -> None:
        kind, data = token.kind, token.data
        if kind is Kind.TEXT:
            self._line_open = True
            self._keep(data)
        elif kind is Kind.CONTROL:
            if data[0] in (LF[0], CR, FF):
                self._line_open = False
                self._keep(b"\n")
            if data[0] == FF:
                self._page_mode = False  # FF prints the page and returns to standard mode
        elif kind is Kind.COMMAND:
            head = data[:2]
            self._modes.seen(data)
            if head == INIT:
                self._page_mode = self._line_open = False
            elif head == b"\x1bL":
                self._page_mode = True
            elif head == b"\x1bS":
                self._page_mode = False
            elif head in _PRINT_AND_FEED:
                self._line_open = False
            self._keep(b" ")

    def _keep(self, text: bytes) -> None:
        if len(self._text) < TEXT_KEPT:
            self._text += text

    def _at_cut(self) -> bytes:
        self.counts.cuts += 1
        text, self._text = bytes(self._text), bytearray()
        if self._stream.lost or self._page_mode:
            self.counts.not_inserted += 1
            self._line_open = False
            return b""
        try:
            number = cheque_number_in(text.decode(self.target.codec, errors="replace"))
            lines = self.session.recent_block(number, width=self.width, window=self.window)
            block = self._encode(lines) if lines else b""
        except Exception:  # fail open: the receipt is cut as the POS wanted, without a block
            self.counts.failures += 1
            log.exception("%s: no loyalty block on this receipt", self.name)
            block = b""
        if block:
            self.counts.blocks_inserted += 1
            shown = mask_text(number) if number else "by the window"  # "№" may be a card's
            log.info("%s: loyalty block inserted before the cut (cheque %s)", self.name, shown)
        self._line_open = False
        return block

    def _encode(self, lines: list[str]) -> bytes:
        """The lines in the printer's code page and font, as our driver prints text."""
        body = b"".join(encode_text(line, self.target) + LF for line in lines)
        return b"".join(
            (
                LF if self._line_open else b"",  # the POS's unfinished line prints first
                self._modes.defaults(),
                init_sequence(self.target).removeprefix(INIT),  # ESC t slot, ESC M font
                body,
                self._modes.restore(self.target),
            )
        )
