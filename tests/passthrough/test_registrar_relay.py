"""The registrar relay between an unmodified POS and the real (emulated) Shtrih-M registrar.

Each scenario runs twice where it matters: the POS straight on the emulator, and the same
POS through the relay.  The emulator records every command it executes and its clock is
frozen, so "the fiscal frames reach the registrar unchanged" is checked to the byte, and
"without a card the receipt is not touched" as identical paper and documents.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bridge.passthrough.registrar import RegistrarRelay, RegistrarSession
from bridge.passthrough.session import PassthroughSession, SoldItem
from drivers.transport.tcp import TcpTransport
from drivers.virtual_port import PtyPort
from sandbox.registrar import Fault, RegistrarEmulator
from sandbox.server import SandboxServer
from tests.conftest import admin
from tests.fault_proxy import FaultProxy, fault_proxy
from tests.net import free_port
from tests.passthrough.registrar_rig import (
    BLOCK,
    CARD,
    OFFLINE,
    TITLE,
    StubSession,
    close_85,
    direct,
    emulator,
    make_session,
    play,
    receipt_v1,
    receipt_v2,
    relayed,
    sale_80,
)
from tests.sandbox.registrar.test_pyshtrih import SCRIPT as PYSHTRIH_SCRIPT
from tests.sandbox.registrar.test_pyshtrih import VENV_PYTHON
from tests.sandbox.registrar.wire import ACK, ENQ, NAK, STX, RawHost, cmd, frame
from tests.stand_ins import missing

ODD_FRAMES = [  # frames the relay does not read: they must pass byte for byte
    cmd(0x11),
    cmd(0x2F, bytes([2, 1]) + "шрифт 1".encode("cp1251").ljust(40, b"\0")),
    cmd(0xE5, b"\x01\x02\x03"),  # unknown to the device: its refusal comes back as is
    cmd(0x25, b"\x01"),
]


def until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll a condition the relay offers no event for (its counters), up to `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def run_direct(frames: list[bytes]) -> dict[str, Any]:
    emu, executed = emulator()
    with emu, direct(emu) as pos:
        answers = play(pos, frames)
        return outcome(emu, executed, answers)


def outcome(
    emu: RegistrarEmulator, executed: list[tuple[int, bytes]], answers: list[Any]
) -> dict[str, Any]:
    return {
        "answers": [a.body for a in answers],
        "lrc_ok": all(a.lrc_ok for a in answers),
        "executed": list(executed),
        "paper": emu.paper,
        "documents": emu.documents,
    }


def run_relayed(frames: list[bytes], session: RegistrarSession, **options: Any) -> dict[str, Any]:
    emu, executed = emulator()
    with emu, relayed(emu, session, **options) as (pos, relay):
        answers = play(pos, frames)
        out = outcome(emu, executed, answers)
        out["counters"] = relay.counters
        return out


# -- untouched without a card ---------------------------------------------------------------


@pytest.mark.parametrize("device", ["pty", "tcp"])
@pytest.mark.parametrize("receipt", ["v1", "v2"])
def test_without_a_card_everything_is_as_on_the_device_itself(device: str, receipt: str) -> None:
    frames = (receipt_v1() if receipt == "v1" else receipt_v2()) + ODD_FRAMES
    alone = run_direct(frames)
    session = StubSession(card=None)
    through = run_relayed(frames, session, device=device)

    assert through["answers"] == alone["answers"] and through["lrc_ok"]
    assert through["executed"] == alone["executed"]  # every frame, byte for byte, nothing added
    assert through["paper"] == alone["paper"]
    assert through["documents"] == alone["documents"] and len(alone["documents"]) == 1
    assert session.calls == []
    assert through["counters"]["frames_relayed"] == len(frames)
    assert through["counters"]["frames_inserted"] == through["counters"]["failures"] == 0


# -- a card: the block inside the receipt -----------------------------------------------------


def inserted(
    alone: list[tuple[int, bytes]], through: list[tuple[int, bytes]]
) -> list[tuple[int, bytes]]:
    """`through` minus `alone`, checking that everything else is the same, in order."""
    extra, rest = [], list(alone)
    for executed in through:
        if rest and executed == rest[0]:
            rest.pop(0)
        else:
            extra.append(executed)
    assert rest == [], "a POS frame did not reach the registrar"
    return extra


def lines_as_sent(lines: list[str], password: int = 30) -> list[tuple[int, bytes]]:
    field = [text.encode("cp1251").ljust(40, b"\0") for text in lines]
    return [(0x17, password.to_bytes(4, "little") + b"\x02" + f) for f in field]


@pytest.mark.parametrize(
    ("pos", "device"),
    [("pty", "pty"), ("pty", "tcp"), ("tcp", "pty")],
    ids=["pty", "tcp", "pos_tcp"],
)
def test_a_card_prints_the_block_inside_the_fiscal_receipt_before_its_close(
    pos: str, device: str
) -> None:
    frames = receipt_v1()
    alone = run_direct(frames)
    session = StubSession(card="4000000000000002")
    through = run_relayed(frames, session, device=device, pos=pos)

    # the POS sees the device's own answers, the close's included
    assert through["answers"] == alone["answers"] and through["lrc_ok"]
    extra = inserted(alone["executed"], through["executed"])
    assert extra == [(0x26, (30).to_bytes(4, "little") + b"\x01"), *lines_as_sent(BLOCK)]
    close_at = [code for code, _ in through["executed"]].index(0x85)
    assert through["executed"][close_at - len(BLOCK) : close_at] == lines_as_sent(BLOCK)

    [(card, items, width, _)] = session.calls
    assert card == "4000000000000002" and width == 48  # what 0x26 says of the emulator
    assert items == [
        SoldItem("Молоко", Decimal(2), Decimal("89.90"), Decimal("179.80")),
        SoldItem("Хлеб", Decimal("1.5"), Decimal("45.50"), Decimal("68.25")),
    ]
    [doc] = through["documents"]
    assert doc["messages"] == ["Спасибо за покупку!", *BLOCK]
    assert {k: v for k, v in doc.items() if k != "messages"} == {
        k: v for k, v in alone["documents"][0].items() if k != "messages"
    }  # the same sale, sums and payments: only the lines are added
    text = [line.text for line in through["paper"]]
    assert text.index(BLOCK[-1]) < next(i for i, t in enumerate(text) if t.startswith("ИТОГ"))
    assert [line for line in through["paper"] if line.text not in BLOCK] == alone["paper"]
    assert through["counters"]["frames_inserted"] == len(BLOCK)
    assert through["counters"]["receipts_settled"] == 1
    assert through["counters"]["failures"] == 0


def test_fn_era_frames_give_the_items_and_the_block_goes_before_ff45() -> None:
    frames = receipt_v2()
    alone = run_direct(frames)
    session = StubSession(card="4000000000000002", lines=["Бонусы: +12"])
    through = run_relayed(frames, session)

    assert through["answers"] == alone["answers"]
    [(_, items, _, _)] = session.calls
    assert items == [
        SoldItem("Кефир 1%", Decimal(3), Decimal("79.00"), Decimal("237.00")),
        SoldItem("Сыр Российский", Decimal("0.25"), Decimal("899.00"), Decimal("224.75")),
    ]
    extra = inserted(alone["executed"], through["executed"])
    assert [code for code, _ in extra] == [0x26, 0x17]
    codes = [code for code, _ in through["executed"]]
    assert codes.index(0x17) == codes.index(0xFF45) - 1
    assert through["documents"][0]["messages"] == ["Бонусы: +12"]
    assert session.opened == 1  # the first 0xFF46 opened the receipt


@pytest.mark.parametrize("admin", [30, 7], ids=["admin_known", "admin_wrong"])
def test_the_block_goes_with_the_pos_operator_password(admin: int) -> None:
    frames = receipt_v1(own_line=False, password=3)  # cashier 3: no admin rights for 0x26
    alone = run_direct(frames)
    session = StubSession(card="4000000000000002")
    through = run_relayed(frames, session, admin_password=admin)

    assert through["answers"] == alone["answers"]
    [(_, _, width, _)] = session.calls
    assert width == (48 if admin == 30 else 32)  # both refused: the narrow fallback
    extra = inserted(alone["executed"], through["executed"])
    asked = [
        (0x26, (3).to_bytes(4, "little") + b"\x01"),
        (0x26, admin.to_bytes(4, "little") + b"\x01"),
    ]
    assert extra == asked + lines_as_sent(BLOCK, password=3)
    assert through["documents"][0]["messages"] == BLOCK


def test_a_cancelled_receipt_is_forgotten_and_the_card_waits_for_the_next() -> None:
    session = StubSession(card="4000000000000002")
    frames = [
        cmd(0x8D, b"\x00"),
        sale_80("Молоко", 1000, 8990),
        cmd(0x88),  # cancelled: its item is not the next receipt's
        sale_80("Хлеб", 1000, 4550),  # opens the next receipt by itself
        close_85(5000),
    ]
    through = run_relayed(frames, session)
    [(_, items, _, _)] = session.calls
    assert [item.name for item in items] == ["Хлеб"]
    assert session.opened == 2
    assert through["documents"][0]["messages"] == BLOCK


CANCELLED_AFTER_CLOSE = [cmd(0x8D, b"\x00"), sale_80("Milk", 1000, 8990), close_85(5000), cmd(0x88)]


def test_a_receipt_cancelled_after_its_close_was_refused_is_voided() -> None:
    session = StubSession(card=CARD)
    out = run_relayed(CANCELLED_AFTER_CLOSE, session)
    assert [a[1] for a in out["answers"]] == [0, 0, 0x45, 0]  # 50.00 paid for 89.90: refused
    assert len(session.calls) == 1 and len(session.voided) == 1
    assert out["counters"]["receipts_voided"] == 1


def test_a_close_refused_then_sent_again_and_taken_is_not_voided() -> None:
    session = StubSession(card=CARD)
    frames = [*CANCELLED_AFTER_CLOSE[:3], close_85(10000)]
    out = run_relayed(frames, session)
    assert [a[1] for a in out["answers"]] == [0, 0, 0x45, 0]
    assert len(session.calls) == 1 and session.voided == []  # settled once, kept
    assert out["counters"]["receipts_voided"] == 0


def test_a_receipt_cancelled_before_its_close_has_nothing_to_void() -> None:
    session = StubSession(card=CARD)
    out = run_relayed([*CANCELLED_AFTER_CLOSE[:2], cmd(0x88)], session)
    assert [a[1] for a in out["answers"]] == [0, 0, 0]
    assert session.calls == [] and session.voided == []


def test_a_cancel_while_the_settle_overruns_voids_it_when_it_ends() -> None:
    session = StubSession(card=CARD, hold=True)
    emu, _ = emulator()
    with emu, relayed(emu, session, settle_budget=0.3) as (pos, relay):
        answers = play(pos, CANCELLED_AFTER_CLOSE)
        assert [a.body[1] for a in answers] == [0, 0, 0x45, 0]
        assert session.voided == []  # the settle is still running
        session.release.set()
        assert until(lambda: len(session.voided) == 1)
        assert relay.counters["receipts_voided"] == 1


def test_a_refused_sale_is_not_an_item() -> None:
    session = StubSession(card="4000000000000002")
    frames = [
        cmd(0x8D, b"\x00"),
        sale_80("Молоко", 1000, 8990),
        cmd(0x80, bytes(5) + bytes(5) + bytes([1, 1, 0, 0, 0]) + bytes(40)),  # zero quantity
        close_85(10000),
    ]
    through = run_relayed(frames, session)
    assert through["answers"][2][1] != 0  # the registrar refused it, and the POS was told so
    [(_, items, _, _)] = session.calls
    assert [item.name for item in items] == ["Молоко"]


# -- fail open ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "session",
    [
        StubSession(card="4000000000000002", error=RuntimeError("boom")),
        StubSession(card="4000000000000002", lines=[], reason="failed: processing down"),
    ],
    ids=["settle_raises", "settle_failed"],
)
def test_a_failed_settle_closes_the_receipt_untouched(session: StubSession) -> None:
    frames = receipt_v1()
    alone = run_direct(frames)
    through = run_relayed(frames, session)
    assert through["answers"] == alone["answers"]
    assert through["documents"] == alone["documents"]
    assert through["paper"] == alone["paper"]
    assert [code for code, _ in inserted(alone["executed"], through["executed"])] == [0x26]
    assert through["counters"]["failures"] == 1 and through["counters"]["frames_inserted"] == 0


def test_a_settle_past_its_budget_does_not_hold_the_close_and_enq_is_answered_meanwhile() -> None:
    frames = receipt_v1()
    alone = run_direct(frames)
    session = StubSession(card="4000000000000002", hold=True)
    emu, _ = emulator()
    with emu, relayed(emu, session, settle_budget=0.5) as (pos, relay):
        play(pos, frames[:-2])
        assert pos.enq() == NAK
        pos.write(frame(frames[-2]))  # the close
        assert pos.byte() == ACK  # at once, as the device would
        assert session.settling.wait(10)
        pos.write(bytes([ENQ]))  # the POS polls while it waits: "the answer is coming"
        assert pos.byte() == ACK
        started = time.monotonic()
        answer = pos.read_answer(timeout=10)
        waited = time.monotonic() - started
        assert not session.returned.is_set()  # the close went out while settle still ran
        pos.write(bytes([ACK]))
        session.release.set()
        play(pos, frames[-1:])
        counters = relay.counters
    assert answer.body == alone["answers"][-2]
    assert waited < 5  # the budget (0.5 s) and the close, far below any POS's timeout
    assert emu.documents == alone["documents"]
    assert emu.paper == alone["paper"]
    assert counters["failures"] == 1 and counters["frames_inserted"] == 0


def test_the_registrar_refusing_a_line_ends_the_block_and_the_close_still_goes() -> None:
    frames = receipt_v1(own_line=False)
    alone = run_direct(frames)
    session = StubSession(card="4000000000000002")
    emu, executed = emulator()
    emu.inject(Fault.error(0x17, 0x6B))  # "paper out" for the first loyalty line
    with emu, relayed(emu, session) as (pos, relay):
        answers = play(pos, frames)
        counters = relay.counters
    assert [a.body for a in answers] == alone["answers"]
    extra = inserted(alone["executed"], executed)
    assert extra == [(0x26, (30).to_bytes(4, "little") + b"\x01"), *lines_as_sent(BLOCK[:1])]
    assert emu.documents == alone["documents"]  # closed, nothing of ours on it
    assert emu.paper == alone["paper"]
    assert counters["failures"] == 1 and counters["frames_inserted"] == 0


# -- the link, as the device plays it -----------------------------------------------------


def test_a_bad_lrc_from_the_pos_gets_nak_and_never_reaches_the_registrar() -> None:
    emu, executed = emulator()
    with emu, relayed(emu, StubSession()) as (pos, _):
        good = frame(cmd(0x10))
        assert pos.enq() == NAK
        pos.write(good[:-1] + bytes([good[-1] ^ 0x01]))
        assert pos.byte() == NAK
        pos.write(bytes([STX, 5]) + b"\x10\x1e")  # cut short
        assert pos.byte(timeout=5) == NAK
        assert executed == []
        answer = pos.call(cmd(0x10))
    assert answer.lrc_ok and answer.body[0] == 0x10 and answer.body[1] == 0
    assert [code for code, _ in executed] == [0x10]


def test_an_answer_the_pos_naks_is_replayed_on_its_enq_and_never_run_twice() -> None:
    emu, _ = emulator()
    with emu, relayed(emu, StubSession()) as (pos, _):
        pos.call(cmd(0x8D, b"\x00"))
        first = pos.call(sale_80("Молоко", 1000, 8990), ack=False)
        pos.write(bytes([NAK]))  # "bad LRC" on our side
        assert pos.enq() == ACK  # pending: here it comes again
        again = pos.read_answer()
        pos.write(bytes([ACK]))
        assert pos.enq() == NAK  # acknowledged: nothing pending any more
    assert again.body == first.body
    assert emu.commands_seen_count(0x80) == 1


# -- a third-party client: pyshtrih 2.0.6 over the relay's pty --------------------------------


@pytest.fixture
def pyshtrih() -> Path:
    """pyshtrih in its own Python 3.9 venv (tools/pyshtrih-venv.sh), as test_pyshtrih has it."""
    probe = [str(VENV_PYTHON), "-c", "import pyshtrih"]
    if not VENV_PYTHON.exists() or subprocess.run(probe, capture_output=True).returncode:
        missing("pyshtrih venv absent or broken: run tools/pyshtrih-venv.sh (needs a Python 3.9)")
    return VENV_PYTHON


def pyshtrih_sale(python: Path, port: str) -> dict[str, Any]:
    run = subprocess.run(
        [str(python), str(PYSHTRIH_SCRIPT), port], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    seen: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return seen


@pytest.mark.parametrize("card", [None, "4000000000000002"], ids=["no_card", "card"])
def test_pyshtrih_sells_through_the_relay(pyshtrih: Path, card: str | None) -> None:
    emu, alone_executed = emulator()
    with emu:
        alone_seen = pyshtrih_sale(pyshtrih, emu.start_pty())
        alone_paper, alone_docs = emu.paper, emu.documents

    session = StubSession(card=card)
    emu, executed = emulator()
    with emu, relayed(emu, session) as (_, relay):
        seen = pyshtrih_sale(pyshtrih, relay.pos.slave_path)  # type: ignore[attr-defined]
        counters = relay.counters

    assert seen == alone_seen  # every answer read by pyshtrih as from the device itself
    assert seen["change"] == 20000 - 17980
    if card is None:
        assert executed == alone_executed
        assert emu.paper == alone_paper and emu.documents == alone_docs
        assert session.calls == []
        return
    [(_, items, width, _)] = session.calls
    assert items == [SoldItem("Молоко", Decimal(2), Decimal("89.90"), Decimal("179.80"))]
    assert width == 48
    extra = inserted(alone_executed, executed)
    assert extra[-len(BLOCK) :] == lines_as_sent(BLOCK, password=1)  # pyshtrih's cashier
    [doc] = emu.documents
    assert doc["messages"] == ["Бонусов начислено: 18", *BLOCK]
    assert doc["total"] == alone_docs[0]["total"] and doc["payments"] == alone_docs[0]["payments"]
    assert [line for line in emu.paper if line.text not in BLOCK] == alone_paper
    assert counters["frames_inserted"] == len(BLOCK) and counters["failures"] == 0


# -- end to end: the real session, the real register, the real processing sandbox -------------

E2E_ITEMS = [sale_80("Milk 3.2% 1 l", 2000, 8990), sale_80("Dish soap", 1000, 15000)]
E2E_RECEIPT = [cmd(0x8D, b"\x00"), *E2E_ITEMS, close_85(40000), cmd(0x10)]


@pytest.fixture
def proxy(sandbox_server: SandboxServer) -> Iterator[FaultProxy]:
    with fault_proxy(sandbox_server.host, sandbox_server.port) as p:
        yield p


@pytest.fixture
def real_session(tmp_path: Path, proxy: FaultProxy) -> Iterator[PassthroughSession]:
    session = make_session(tmp_path, proxy.url)
    try:
        yield session
    finally:
        session.register.stop()


def run_with(session: PassthroughSession, **options: Any) -> dict[str, Any]:
    session.card_presented(CARD, "scanner-relay")
    out = run_relayed(E2E_RECEIPT, session, **options)
    assert [a[1] for a in out["answers"]] == [0] * len(E2E_RECEIPT)  # the POS saw no error
    [doc] = out["documents"]
    assert doc["total"] == "329.80" and doc["payments"] == {"1": "400.00"}
    return out


def receipt_text(out: dict[str, Any]) -> list[str]:
    """The receipt's lines from its header to its total."""
    text = [line.text for line in out["paper"]]
    first = next(i for i, t in enumerate(text) if "КАССОВЫЙ ЧЕК" in t)
    total = next(i for i, t in enumerate(text) if t.startswith("ИТОГ"))
    return text[first:total]


def test_online_the_loyalty_block_is_printed_inside_the_receipt(
    real_session: PassthroughSession, sandbox_server: SandboxServer
) -> None:
    out = run_with(real_session, settle_budget=3.0)
    inside = "\n".join(receipt_text(out))
    assert TITLE in inside and "Bonuses accrued" in inside
    assert CARD not in inside
    assert all(len(line.text) <= 48 for line in out["paper"])  # laid out at 0x26's width
    [cheque] = real_session.register.book._closed.values()
    assert cheque.state == "confirmed" and [ln.goods_id for ln in cheque.lines] == ["1001", "5001"]
    assert cheque.purchase is not None
    assert (
        admin(sandbox_server, f"purchases/{cheque.purchase.purchase_id}")["status"] == "confirmed"
    )
    assert out["counters"]["receipts_settled"] == 1 and out["counters"]["failures"] == 0


@pytest.mark.parametrize("down", [False, True], ids=["online", "offline"])
def test_a_sale_cancelled_at_the_registrar_after_settling_is_refunded(
    real_session: PassthroughSession, sandbox_server: SandboxServer, proxy: FaultProxy, down: bool
) -> None:
    """Close refused (payments short), then the POS cancels: no sale, so no accrual."""
    if down:
        proxy.set_fault("refuse")
    real_session.card_presented(CARD, "scanner-relay")
    frames = [cmd(0x8D, b"\x00"), *E2E_ITEMS, close_85(10000), cmd(0x88)]
    out = run_relayed(frames, real_session, settle_budget=3.0)
    assert [a[1] for a in out["answers"]] == [0, 0, 0, 0x45, 0]
    [cheque] = real_session.register.book._closed.values()
    assert until(lambda: cheque.state == "refunded"), cheque.state
    assert real_session.counts.voided == 1 and out["counters"]["receipts_voided"] == 1
    assert real_session.figures()["voidFailed"] == 0
    assert cheque.purchase is not None
    if down:  # the sale and its refund wait in the journal, in that order
        ops = [e.op for e in real_session.register.offline.journal.pending_page()]
        assert ops[-1] == "refund" and "confirm" in ops, ops
        return
    sold = admin(sandbox_server, f"purchases/{cheque.purchase.purchase_id}")
    [refund_id] = sold["refunds"]
    refund = admin(sandbox_server, f"purchases/{refund_id}")
    assert refund["totalAmount"] == sold["totalAmount"] == Decimal("329.80")
    ledger = admin(sandbox_server, f"ledger/{CARD}")
    assert ledger["reversed"] == ledger["accrued"] > 0  # what was accrued is taken back


@pytest.mark.parametrize("fault", ["refuse", "status"], ids=["down", "http_500"])
def test_processing_down_prints_the_offline_notice_and_journals_the_sale(
    real_session: PassthroughSession, proxy: FaultProxy, fault: str
) -> None:
    proxy.set_fault(fault)
    out = run_with(real_session, settle_budget=3.0)
    inside = " ".join(" ".join(receipt_text(out)).split())
    assert OFFLINE in inside
    assert real_session.register.offline.journal.counts().pending >= 1
    assert out["counters"]["failures"] == 0


@pytest.mark.parametrize("fault", ["blackhole", "stall"])
def test_slow_processing_closes_the_receipt_untouched_within_the_budget(
    real_session: PassthroughSession, proxy: FaultProxy, fault: str
) -> None:
    alone = run_direct(E2E_RECEIPT)
    proxy.set_fault(fault)
    out = run_with(real_session, settle_budget=0.5)
    assert out["answers"] == alone["answers"]
    assert out["paper"] == alone["paper"] and out["documents"] == alone["documents"]
    assert out["counters"]["failures"] == 1
    assert real_session.counts.failed == 1


def test_an_unreachable_registrar_gets_no_made_up_answer_and_the_pos_retry_goes_through() -> None:
    port = free_port()  # nothing listens: the registrar is off
    virtual = PtyPort(None, "kkt-virtual")
    relay = RegistrarRelay(
        virtual, TcpTransport("127.0.0.1", port), StubSession(), name="kkt", link_timeout=0.3
    ).start()  # starts all the same: the POS's port is there
    emu, executed = emulator()
    pos = RawHost.open_pty(virtual.slave_path)
    try:
        assert pos.enq() == NAK
        pos.write(frame(cmd(0x10)))
        assert pos.byte() == ACK
        assert until(lambda: relay.counters["failures"] == 1)  # the registrar was tried
        assert pos.quiet_for(0.5) == b""  # and no answer invented for the POS
        emu.start_tcp(port=port)  # the registrar is back
        answer = pos.call(cmd(0x10))  # the POS asks again, as it would a silent device
        assert answer.lrc_ok and answer.body[:2] == b"\x10\x00"
        assert [code for code, _ in executed] == [0x10]
    finally:
        pos.close()
        relay.stop()
        emu.stop()


def test_pyshtrih_gets_the_loyalty_block_from_the_real_session(
    pyshtrih: Path, real_session: PassthroughSession
) -> None:
    real_session.card_presented(CARD, "scanner-relay")
    emu, _ = emulator()
    with emu, relayed(emu, real_session, settle_budget=1.5) as (_, relay):
        seen = pyshtrih_sale(pyshtrih, relay.pos.slave_path)  # type: ignore[attr-defined]
    assert seen["change"] == 20000 - 17980 and seen["mode_after"] == 2
    [doc] = emu.documents
    assert doc["total"] == "179.80"
    assert doc["messages"][0] == "Бонусов начислено: 18"  # pyshtrih's own line, then ours
    assert TITLE in "\n".join(doc["messages"][1:])
    [cheque] = real_session.register.book._closed.values()
    assert cheque.state == "confirmed" and cheque.card == CARD
    assert real_session.counts.unmatched == 1  # "Молоко" is not in the pushed catalogue


def test_the_width_is_asked_once_and_a_later_receipt_without_a_card_is_untouched() -> None:
    first, second = receipt_v1(), receipt_v2()
    alone = run_direct(first + second)
    session = StubSession(card="4000000000000002")
    through = run_relayed(first + second, session)
    assert through["answers"] == alone["answers"]
    extra = inserted(alone["executed"], through["executed"])
    assert [code for code, _ in extra] == [0x26] + [0x17] * len(BLOCK)  # all in the first
    first_doc, second_doc = through["documents"]
    assert first_doc["messages"][1:] == BLOCK
    assert second_doc == alone["documents"][1]
    assert len(session.calls) == 1 and session.opened == 2


def test_a_pos_that_reads_the_font_width_itself_gets_no_0x26_of_ours() -> None:
    frames = [cmd(0x26, bytes([1])), *receipt_v1()]
    alone = run_direct(frames)
    session = StubSession(card="4000000000000002")
    through = run_relayed(frames, session)
    assert through["answers"] == alone["answers"]
    extra = inserted(alone["executed"], through["executed"])
    assert [code for code, _ in extra] == [0x17] * len(BLOCK)  # only the block's lines
    told = alone["answers"][0]  # what the registrar told the POS: the block is laid out to it
    assert told[:2] == bytes([0x26, 0])
    [(_, _, width, _)] = session.calls
    assert width == int.from_bytes(told[2:4], "little") // told[4] == 48


def test_link_faults_on_the_registrar_side_are_recovered_without_running_a_frame_twice() -> None:
    frames = receipt_v1()
    alone = run_direct(frames)
    emu, executed = emulator()
    emu.inject(Fault.nak())  # the registrar refuses our first frame: sent again
    emu.inject(Fault.bad_lrc(2))  # two answers garbled: NAK, ENQ, the replay
    emu.inject(Fault.drop_answer())  # an answer withheld: our ENQ fetches it
    with emu, relayed(emu, StubSession()) as (pos, _):
        answers = play(pos, frames)
    assert emu.faults.pending() == []  # every fault was met on the way
    assert [a.body for a in answers] == alone["answers"]
    assert executed == alone["executed"]  # nothing ran twice, nothing was lost
    assert emu.documents == alone["documents"]


def test_pyshtrih_keeps_its_3s_timeout_while_settle_hangs(pyshtrih: Path) -> None:
    emu, alone_executed = emulator()
    with emu:
        alone_seen = pyshtrih_sale(pyshtrih, emu.start_pty())
        alone_paper, alone_docs = emu.paper, emu.documents
    session = StubSession(card="4000000000000002", hold=True)
    emu, executed = emulator()
    try:
        with emu, relayed(emu, session, settle_budget=1.0) as (_, relay):
            seen = pyshtrih_sale(pyshtrih, relay.pos.slave_path)  # type: ignore[attr-defined]
            assert session.settling.is_set() and not session.returned.is_set()  # not waited for
    finally:
        session.release.set()
    assert seen == alone_seen
    assert emu.paper == alone_paper and emu.documents == alone_docs
    assert [code for code, _ in inserted(alone_executed, executed)] == [0x26, 0x26]
