"""The printer pass-through: an unmodified POS prints on its ESC/POS printer through a pty, and
the loyalty block of its cheque appears before the cut.

The receipts are real ones from python-escpos (text, native QR codes, EAN and CODE128
barcodes, raster, graphics and column images, every cut form), with GS V's bytes planted
inside image and QR data, where a byte scanner would see a cut.  The POS side is the relay's
real pty; the printer is another real pty (byte-exact checks, status answers) or emupos, an
emulator we did not write, reading what came out.  The end-to-end test confirms a cheque
through the real service and sandbox just before the POS prints.
"""

from __future__ import annotations

import os
import random
import select
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from escpos.printer import Dummy
from PIL import Image

from bridge.config import parse
from bridge.fiscal.sale import loyalty_lines
from bridge.passthrough.printer import PrinterRelay, cheque_number_in
from bridge.receipts.render import render_target
from bridge.server import Service
from drivers.printer.stream import EscposStream, Kind, measure
from drivers.reconnect import Backoff
from drivers.transport.serial import SerialTransport
from drivers.transport.tcp import TcpTransport
from drivers.virtual_port import PtyPort, TcpListenPort
from sandbox.server import SandboxServer
from tests.conftest import LOGIN, PASSWORD
from tests.drivers.emupos_helpers import Emupos, running_emupos
from tests.drivers.pty_helpers import Pty
from tests.net import free_port
from tests.service.conftest import TOKEN
from tests.service.test_api import ACTIVE, MILK, SOAP

CUT_BYTES = b"\x1dV"
PATTERN = bytes([0x1D, 0x56, 0x00])  # GS V 0, planted inside image and QR data
WIDTH = 48
BLOCK = ["=" * WIDTH, "ПРОГРАММА ЛОЯЛЬНОСТИ", "Баланс после покупки:    123,45 б."]
TARGET = render_target(WIDTH)


# --- real receipts ----------------------------------------------------------------------------


@dataclass
class Printout:
    """A POS's print job and where its cuts start."""

    name: str
    data: bytes = b""
    cuts: list[int] = field(default_factory=list)


def _row_image(width: int = 96, height: int = 24) -> Image.Image:
    """Rows of GS V 0 and its inverse: whichever way the driver maps black, they are there."""
    row = (PATTERN + bytes(b ^ 0xFF for b in PATTERN)) * width
    return Image.frombytes("1", (width, height), row[: width // 8] * height)


def _column_image(width: int = 48) -> Image.Image:
    """Columns of 24 dots spelling GS V 0 (and its inverse), for ESC * images."""
    image = Image.new("1", (width, 24), 1)
    for x in range(width):
        pattern = PATTERN if x % 2 else bytes(b ^ 0xFF for b in PATTERN)
        for y in range(24):
            image.putpixel((x, y), (pattern[y // 8] >> (7 - y % 8)) & 1)
    return image


class Job:
    def __init__(self, name: str) -> None:
        self.printer = Dummy()
        self.out = Printout(name)

    def raw(self, data: bytes) -> Job:
        self.printer._raw(data)
        return self

    def text(self, text: str) -> Job:
        return self.raw(text.encode("cp866"))

    def cut(self, **options: Any) -> Job:
        start = len(self.printer.output)
        self.printer.cut(**options)
        self.out.cuts.append(self.printer.output.index(CUT_BYTES, start))
        return self

    def raw_cut(self, command: bytes) -> Job:
        self.out.cuts.append(len(self.printer.output))
        return self.raw(command)

    def done(self) -> Printout:
        self.out.data = self.printer.output
        return self.out


def receipts() -> list[Printout]:
    shop = Job("sale: text, native QR, EAN-13, raster image, full cut")
    shop.raw(b"\x1b@\x1bt\x11")
    shop.printer.set(align="center", bold=True, double_height=True)
    shop.text('Магазин "Ромашка"\n')
    shop.printer.set(align="left", normal_textsize=True)
    shop.text("Чек № 1042\nМолоко 3,2%      2 x 89,90 = 179,80\nИтого: 329,80\n")
    shop.printer.qr("https://check.example/?fn=1&i=\x1dV\x00&fp=2", native=True, size=5)
    shop.printer.barcode("4006381333931", "EAN13")
    shop.printer.image(_row_image(), impl="bitImageRaster")
    shop.text("Спасибо за покупку!\n").cut()

    images = Job("two receipts: graphics and column images, CODE128 with GS in it, partial cut")
    images.raw(b"\x1b@").text("Заказ № 77\n")
    images.printer.image(_row_image(128, 16), impl="graphics")
    images.printer.image(_column_image(), impl="bitImageColumn")
    images.raw(b"\x1dk\x49\x07{A\x1dV\x00AB")  # CODE128 set A: control characters allowed
    images.raw(b"\x1dh\x50\x1dk\x02400638133393\x00")  # EAN-13, function A (NUL ends it)
    images.cut(mode="PART", feed=False)
    images.text("Копия\n").cut(mode="FULL", feed=True)

    forms = Job("every cut form, status queries and a drawer kick")
    forms.raw(b"\x1b@\x1dI\x01\x10\x04\x01\x1dr\x01").text("Форма 1\n").raw_cut(b"\x1dV\x01")
    forms.text("Форма 2\n").raw_cut(b"\x1dVA\x10")
    forms.text("Форма 3\n").raw_cut(b"\x1dVB\x00")
    forms.text("Форма 4\n").raw_cut(b"\x1dVa\x03")
    forms.text("Форма 5\n").raw_cut(b"\x1dV0")
    forms.raw(b"\x1b*\x00\x03\x00" + PATTERN + b"\n")  # an 8-dot image, 3 columns
    forms.raw(b"\x1bp\x00\x19\xfa").text("Форма 6\n").raw_cut(b"\x1bi")
    return [shop.done(), images.done(), forms.done()]


RECEIPTS = receipts()


def chunks(data: bytes, seed: int) -> Iterator[bytes]:
    """`data` cut at random places, single bytes included."""
    rnd = random.Random(seed)
    at = 0
    while at < len(data):
        size = rnd.choice((1, 2, 3, 7, 64, 500, 4096))
        yield data[at : at + size]
        at += size


def test_the_receipts_hide_cut_bytes_in_their_data() -> None:
    """The check below is worth something only if a naive search would cut too often."""
    for receipt in RECEIPTS:
        real = [at for at in receipt.cuts if receipt.data[at : at + 2] == CUT_BYTES]
        assert receipt.data.count(CUT_BYTES) > len(real), receipt.name


# --- the stream scanner -----------------------------------------------------------------------


@pytest.mark.parametrize("receipt", RECEIPTS, ids=lambda r: r.name)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_scanner_finds_the_cuts_and_nothing_else(receipt: Printout, seed: int) -> None:
    stream = EscposStream()
    offset, cuts, out = 0, [], b""
    for chunk in chunks(receipt.data, seed):
        for token in stream.feed(chunk):
            if token.kind is Kind.CUT:
                cuts.append(offset)
            offset += len(token.data)
            out += token.data
    assert cuts == receipt.cuts
    assert out == receipt.data and stream.held == 0
    assert not stream.lost and stream.unknown_commands == 0


@pytest.mark.parametrize("seed", range(5))
def test_any_bytes_at_all_come_out_as_they_went_in(seed: int) -> None:
    rnd = random.Random(seed)
    noise = bytes(
        rnd.choice(b"\x1b\x1d\x1c\x10\x00V@k(v") if rnd.random() < 0.3 else rnd.randrange(256)
        for _ in range(20000)
    )
    stream = EscposStream()
    out = b"".join(t.data for chunk in chunks(noise, seed) for t in stream.feed(chunk))
    assert out + stream.flush() == noise


def test_the_scanner_holds_only_an_incomplete_header() -> None:
    stream = EscposStream()
    image = b"\x1dv0\x00\x02\x00\x40\x00"  # a raster image announcing 128 bytes of data
    tokens = list(stream.feed(b"text" + image + PATTERN * 10))
    assert b"".join(t.data for t in tokens) == b"text" + image + PATTERN * 10  # all out at once
    assert list(stream.feed(b"\x00" * 98)) and stream.held == 0
    assert list(stream.feed(b"\x1d")) == [] and stream.held == 1  # GS alone: a cut, perhaps
    assert [t.kind for t in stream.feed(b"V\x00")] == [Kind.CUT]


@pytest.mark.parametrize(
    ("command", "length"),
    [
        (b"\x1b*\x21\x02\x00" + b"\x00" * 6, 11),  # ESC * 24-dot: 3 bytes a column
        (b"\x1b&\x03\x41\x42\x01\x1dV\x00\x02" + bytes(6), 16),  # two user characters
        (b"\x1bD\x08\x10\x00", 5),  # tab stops, up to NUL
        (b"\x1d(k\x03\x001C\x06", 8),
        (b"\x1d8L\x02\x00\x00\x000p", 9),
        (b"\x1d*\x01\x01" + bytes(8), 12),
        (b"\x1dkI\x02{A", 6),
        (b"\x1dVB\x05", 4),
        (b"\x1cq\x01\x01\x00\x01\x00" + bytes(8), 15),
        (b"\x1cg1\x00\x00\x00\x00\x00\x02\x00ab", 12),
        (b"\x10\x14\x08\x01\x03\x14\x01\x06\x02\x08", 10),
        (b"\x10\x04\x07\x01", 4),
    ],
)
def test_command_lengths(command: bytes, length: int) -> None:
    assert measure(command) == length
    tokens = list(EscposStream().feed(command + b"\x1dV\x00"))
    assert [t.kind for t in tokens][-1] is Kind.CUT and tokens[-1].data == b"\x1dV\x00"


def test_unknown_commands_are_reported_and_esc_at_resynchronises() -> None:
    assert measure(b"\x1b\x99") == -2 and measure(b"\x1dV") == -1
    stream = EscposStream()
    tokens = list(stream.feed(b"\x1b\x99" + PATTERN))
    assert stream.lost and stream.unknown_commands == 1
    assert [t.kind for t in tokens] == [Kind.UNKNOWN, Kind.CUT]  # a cut, but not to be trusted
    list(stream.feed(b"\x1b@"))
    assert not stream.lost


def test_the_cheque_number_is_read_from_the_receipt_text() -> None:
    assert cheque_number_in("Магазин\nКАССОВЫЙ ЧЕК № 1042\nИтого") == "1042"
    assert cheque_number_in("Чек N A-17.\n") == "A-17"
    assert cheque_number_in("ИНН 7701\nReceipt #55/3 ") == "55/3"
    assert cheque_number_in("ФН № 9999078900012345") == "9999078900012345"
    assert cheque_number_in("Итого 100,00") is None


# --- the relay over real ptys -----------------------------------------------------------------


class Blocks:
    """`PassthroughSession.recent_block` as the relay sees it: a block, handed out once."""

    def __init__(self, lines: list[str] | None = None) -> None:
        self.lines = lines
        self.asked: list[str | None] = []

    def recent_block(
        self, cheque_number: str | None, *, width: int, window: float
    ) -> list[str] | None:
        assert (width, window) == (WIDTH, 30.0)
        self.asked.append(cheque_number)
        lines, self.lines = self.lines, None
        return lines


class Pos:
    """The POS: opens the relay's pty by its path, as it opens a serial printer."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def recv(self, size: int, timeout: float = 5.0) -> bytes:
        out = b""
        while len(out) < size and select.select([self.fd], [], [], timeout)[0]:
            out += os.read(self.fd, size - len(out))
        return out

    def close(self) -> None:
        os.close(self.fd)


@dataclass
class Rig:
    relay: PrinterRelay
    pos: Pos
    printer: Pty
    blocks: Blocks

    def printed(self, size: int) -> bytes:
        return self.printer.recv(size, timeout=10)

    def printed_until(self, end: bytes, timeout: float = 10.0) -> bytes:
        """What the printer got, up to and including `end` (the job's last bytes)."""
        out = b""
        while not out.endswith(end) and select.select([self.printer.master], [], [], timeout)[0]:
            out += os.read(self.printer.master, 4096)
        return out

    def nothing_more(self) -> bool:
        return not select.select([self.printer.master], [], [], 0.2)[0]


@pytest.fixture
def make_rig() -> Iterator[Callable[[Blocks], Rig]]:
    made: list[tuple[Rig, PtyPort, SerialTransport]] = []

    def make(blocks: Blocks) -> Rig:
        port = PtyPort(None, "pos-printer")
        printer = Pty()
        device = SerialTransport(printer.path)
        relay = PrinterRelay(port, device, blocks, window=30.0, width=WIDTH, target=TARGET)
        rig = Rig(relay.start(), Pos(port.slave_path), printer, blocks)
        made.append((rig, port, device))
        return rig

    yield make
    for rig, port, device in made:
        rig.relay.stop()
        rig.pos.close()
        port.close()
        device.close()
        rig.printer.unplug()


@pytest.mark.parametrize("receipt", RECEIPTS, ids=lambda r: r.name)
def test_nothing_to_insert_passes_every_byte_unchanged(
    make_rig: Callable[[Blocks], Rig], receipt: Printout
) -> None:
    rig = make_rig(Blocks(None))
    for chunk in chunks(receipt.data, seed=7):
        rig.pos.send(chunk)
    assert rig.printed(len(receipt.data)) == receipt.data
    assert rig.nothing_more()
    counts = rig.relay.counts
    assert counts.cuts == len(receipt.cuts) == len(rig.blocks.asked)
    assert counts.blocks_inserted == 0 and counts.bytes_to_printer == len(receipt.data)


def test_the_block_goes_before_the_feed_and_cut_in_the_printers_code_page(
    make_rig: Callable[[Blocks], Rig],
) -> None:
    rig = make_rig(Blocks(BLOCK))
    receipt = RECEIPTS[0]
    rig.pos.send(receipt.data + b"next receipt\n\x1dV\x00")
    feed = receipt.data.rindex(b"\x1bd\x06", 0, receipt.cuts[0])  # python-escpos feeds, cuts
    head, tail = receipt.data[:feed], receipt.data[feed:] + b"next receipt\n\x1dV\x00"
    printed = rig.printed_until(tail)
    assert printed.startswith(head) and printed.endswith(tail)
    block = printed[len(head) : -len(tail)]
    body = "".join(line + "\n" for line in BLOCK).encode("cp866")
    # the POS had set alignment, bold, size and ESC t 17: reset for the block, then set back
    assert block.index(body) > 0
    before, after = block.split(body)
    assert before.endswith(b"\x1bt\x11\x1bM\x00")
    assert b"\x1ba\x00" in before and b"\x1dB" not in before
    for mode in (b"\x1bt", b"\x1bE", b"\x1ba"):  # the POS's last value of each
        assert head[head.rindex(mode) :][:3] in after
    assert rig.blocks.asked == ["1042", None]  # the number on the receipt; none on the next
    assert rig.relay.counts.blocks_inserted == 1 and rig.nothing_more()


def test_a_status_query_between_the_feeds_and_the_cut_is_answered_and_moves_nothing(
    make_rig: Callable[[Blocks], Rig],
) -> None:
    rig = make_rig(Blocks(BLOCK[1:2]))
    rig.pos.send(b"\x1b@total 10\n\x1bd\x05\n\x10\x04\x01")
    # the query at once, ahead of the feeds held back in case a cut follows
    assert rig.printed(14) == b"\x1b@total 10\n\x10\x04\x01"
    rig.printer.send(b"\x16")
    assert rig.pos.recv(1) == b"\x16"
    rig.pos.send(b"\x1dV\x00")
    block = b"\x1bt\x11\x1bM\x00" + BLOCK[1].encode("cp866") + b"\n"
    expected = block + b"\x1bd\x05\n\x1dV\x00"  # the block before the feeds and the cut
    assert rig.printed(len(expected)) == expected


def test_an_unfinished_line_is_printed_before_the_block(
    make_rig: Callable[[Blocks], Rig],
) -> None:
    rig = make_rig(Blocks(BLOCK[1:2]))
    rig.pos.send(b"\x1b@total 10\x1dV\x00")
    expected = b"\x1b@total 10\n\x1bt\x11\x1bM\x00" + BLOCK[1].encode("cp866") + b"\n\x1dV\x00"
    assert rig.printed(len(expected)) == expected


def test_after_an_unknown_command_nothing_is_inserted_until_esc_at(
    make_rig: Callable[[Blocks], Rig],
) -> None:
    rig = make_rig(Blocks(BLOCK))
    lost = b"\x1b@\x1b\x99\x05" + PATTERN + b"text\x1dV\x00"
    rig.pos.send(lost)
    assert rig.printed(len(lost)) == lost
    assert rig.blocks.asked == [] and rig.relay.counts.not_inserted == 2
    rig.pos.send(b"\x1b@" + "Чек № 5\n".encode("cp866"))
    rig.pos.send(b"\x1dV\x00")
    printed = rig.printed_until(b"\x1dV\x00")
    assert b"\x1dV\x00" in printed and BLOCK[1].encode("cp866") in printed
    assert rig.blocks.asked == ["5"]


def test_status_queries_are_answered_by_the_printer(make_rig: Callable[[Blocks], Rig]) -> None:
    rig = make_rig(Blocks(BLOCK))
    for query, answer in [(b"\x10\x04\x01", b"\x16"), (b"\x10\x04\x04", b"\x12")]:
        rig.pos.send(query)
        assert rig.printed(len(query)) == query  # at once, though a cut may follow
        rig.printer.send(answer)
        assert rig.pos.recv(len(answer)) == answer
    rig.pos.send(b"\x1da\xff")  # ASB on: the printer reports by itself from now on
    assert rig.printed(3) == b"\x1da\xff"
    asb = b"\x14\x00\x00\x0f"
    rig.printer.send(asb)
    assert rig.pos.recv(4) == asb
    assert rig.relay.counts.bytes_to_pos == 6


def test_a_long_print_job_is_forwarded_while_it_comes(make_rig: Callable[[Blocks], Rig]) -> None:
    """Nothing is held for a cut that may come: the printer gets each part as it is sent."""
    rig = make_rig(Blocks(BLOCK))
    receipt = RECEIPTS[0].data
    middle = receipt.index(b"\x1dv0") + 20  # inside the raster image's data
    rig.pos.send(receipt[:middle])
    assert rig.printed(middle) == receipt[:middle]
    rig.pos.send(receipt[middle:])
    rest = rig.printed_until(receipt[RECEIPTS[0].cuts[0] :])
    assert rest.startswith(receipt[middle : RECEIPTS[0].cuts[0] - 3])  # less ESC d 6, the feed
    assert rig.relay.counts.blocks_inserted == 1


# --- end to end: the real service and sandbox, emupos as the printer -------------------------


def emupos_printed(emu: Emupos, count: int) -> list[list[str]]:
    emu.wait_event("printer.job.completed", count)
    assert emu.unknown_commands() == []
    return [
        [line.rstrip() for line in emu.receipt_text(r).splitlines()]
        for r in emu.receipts_completed()
    ]


def confirm(api: httpx.Client, number: str) -> str:
    r = api.post("/v1/cheques", json={"number": number, "card": ACTIVE, "lines": [MILK, SOAP]})
    assert r.status_code == 201, r.text
    cheque_id = str(r.json()["id"])
    assert api.post(f"/v1/cheques/{cheque_id}/calculate").status_code == 200
    assert api.post(f"/v1/cheques/{cheque_id}/confirm").status_code == 200
    return cheque_id


def pos_receipt(number: str | None) -> bytes:
    job = Job("pos")
    job.raw(b"\x1b@\x1bt\x11").text("Магазин\n")
    if number:
        job.text(f"Чек № {number}\n")
    job.printer.qr("https://check.example/\x1dV\x00", native=True, size=4)
    job.printer.image(_row_image(), impl="bitImageRaster")
    return job.text("Итого: 329,80\n").cut().done().data


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emupos]:
    yield from running_emupos(tmp_path / "emupos", serial=False)


@pytest.fixture
def service(tmp_path: Path, sandbox_server: SandboxServer, emu: Emupos) -> Iterator[Service]:
    """The service with emupos as its printer `prn`, and the POS's port in front of it."""
    config = parse(
        {
            "processing": {
                "url": sandbox_server.url,
                "login": LOGIN,
                "password": PASSWORD,
                "lock_file": str(tmp_path / "processing.lock"),
                "read_timeout": 5.0,
            },
            "journal": {"path": str(tmp_path / "journal.sqlite")},
            "api": {"port": free_port(), "token": TOKEN},
            "receipt": {"columns": WIDTH},
            "devices": [
                {
                    "name": "prn",
                    "kind": "printer",
                    "connection": "tcp",
                    "host": "127.0.0.1",
                    "tcp_port": emu.tcp_port,
                }
            ],
            "passthrough": [
                {
                    "name": "pos-printer",
                    "kind": "printer",
                    "device": "prn",
                    "link": str(tmp_path / "run" / "printer"),
                    "window": 30,
                }
            ],
        }
    )
    started = Service(config, TOKEN).start()
    yield started
    started.stop()


def test_end_to_end_the_cheque_confirmed_before_printing_gets_its_block(
    tmp_path: Path, emu: Emupos, service: Service
) -> None:
    jobs = [pos_receipt("A-1041"), pos_receipt(None), pos_receipt(None)]
    direct = TcpTransport("127.0.0.1", emu.tcp_port)
    with direct:
        for job in jobs:
            direct.write(job)
    unchanged = emupos_printed(emu, len(jobs))

    with httpx.Client(base_url=service.url, headers={"X-Posbridge-Token": TOKEN}) as api:
        first, second = confirm(api, "A-1041"), confirm(api, "A-1042")

    pos = Pos(str(tmp_path / "run" / "printer"))  # the POS opens its printer's port
    try:
        for job in jobs:
            pos.send(job)
        pos.send(b"\x10\x04\x01")  # the POS asks the printer how it is: emupos answers
        assert len(pos.recv(1)) == 1
    finally:
        pos.close()
    printed = emupos_printed(emu, 2 * len(jobs))[len(jobs) :]

    register = service.register
    assert register.passthrough is not None
    counts = register.passthrough.counters()["pos-printer"]
    register.passthrough.stop()  # ends the relay's connection: emupos ends its last job

    def block(cheque_id: str) -> list[str]:
        cheque = register.book.get(cheque_id)
        lines = loyalty_lines(cheque, register.config.receipt.language, WIDTH)
        return [line.rstrip() for line in lines]

    assert any("ЛОЯЛЬНОСТИ" in line for line in block(first))
    assert block(first) != block(second)  # balances differ: the right block is the one found
    assert printed[0] == unchanged[0] + block(first)  # by its number, though not the latest
    assert printed[1] == unchanged[1] + block(second)  # no number: the latest, within the window
    assert printed[2] == unchanged[2]  # nothing left to insert: unchanged
    assert counts["blocks_inserted"] == 2 and counts["cuts"] == 3


class Broken:
    def recent_block(
        self, cheque_number: str | None, *, width: int, window: float
    ) -> list[str] | None:
        raise RuntimeError("the register is in a bad way")


def test_fail_open_an_error_of_ours_leaves_the_receipt_unchanged(
    make_rig: Callable[[Blocks], Rig],
) -> None:
    rig = make_rig(Broken())  # type: ignore[arg-type]
    receipt = RECEIPTS[0].data
    rig.pos.send(receipt)
    assert rig.printed(len(receipt)) == receipt and rig.nothing_more()
    assert rig.relay.counts.failures == 1 and rig.relay.counts.blocks_inserted == 0


def test_page_mode_gets_no_block(make_rig: Callable[[Blocks], Rig]) -> None:
    rig = make_rig(Blocks(BLOCK))
    job = b"\x1b@\x1bLpage\x0c\x1bL\x1dV\x00"  # a cut inside page mode: not where a block goes
    rig.pos.send(job)
    assert rig.printed(len(job)) == job and rig.nothing_more()
    assert rig.relay.counts.not_inserted == 1 and rig.blocks.asked == []


def test_feeds_at_the_end_of_a_job_reach_the_printer_without_a_cut(
    make_rig: Callable[[Blocks], Rig],
) -> None:
    rig = make_rig(Blocks(BLOCK))
    job = b"\x1b@last line\n\n\n\x1bd\x05"  # held while a cut may follow, sent once idle
    rig.pos.send(job)
    assert rig.printed(len(job)) == job
    assert rig.blocks.asked == []


def test_a_network_printer_that_drops_the_connection_is_reconnected() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)
    port = PtyPort(None, "pos-printer")
    device = TcpTransport("127.0.0.1", server.getsockname()[1])
    backoff = Backoff(initial=0.05, maximum=0.2)
    relay = PrinterRelay(port, device, Blocks(None), window=30.0, width=WIDTH, backoff=backoff)
    pos = Pos(port.slave_path)
    relay.start()
    try:
        first, _ = server.accept()
        pos.send(b"one\n")
        assert first.recv(16) == b"one\n"
        first.close()  # the printer restarts
        second, _ = server.accept()  # the relay comes back by itself
        second.sendall(b"\x12")  # and answers reach the POS again
        assert pos.recv(1) == b"\x12"
        pos.send(b"two\n")
        assert second.recv(16) == b"two\n"
        second.close()
        assert relay.counts.failures >= 1
    finally:
        relay.stop()
        pos.close()
        port.close()
        device.close()
        server.close()


def test_a_pos_printing_to_a_tcp_port_gets_the_block_too() -> None:
    printer = Pty()
    port = TcpListenPort("127.0.0.1", 0, "pos-printer")
    blocks = Blocks(BLOCK)
    relay = PrinterRelay(port, SerialTransport(printer.path), blocks, window=30.0, width=WIDTH)
    with relay, socket.create_connection(("127.0.0.1", port.bound_port), timeout=10) as pos:
        pos.sendall(b"\x1b@" + "Чек № 9\n".encode("cp866") + b"\x1dV\x00")
        out = b""
        while not out.endswith(b"\x1dV\x00") and select.select([printer.master], [], [], 10)[0]:
            out += os.read(printer.master, 4096)
        pos.sendall(b"\x10\x04\x01")
        assert printer.recv(3) == b"\x10\x04\x01"
        printer.send(b"\x16")
        assert pos.recv(1) == b"\x16"
    printer.unplug()
    assert BLOCK[1].encode("cp866") in out and blocks.asked == ["9"]
