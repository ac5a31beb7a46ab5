"""A call that steps aside: the journal's fsync and the bookkeeping overlap the next
request, never a request of their own, and nothing is sent before it is on disk.

- The sequencer: a call that steps aside lets the next queued call run, takes the turn
  back before the calls queued after it, and its requests never overlap another's.
- Sales run in the register's turn (as the POS API runs them) with must-reach steps
  journaled aside: processing sees no overlap, every step exactly once, in order.
- The journal fsyncs outside its lock: an entry committed but not yet fsynced is not
  sent, and one whose fsync fails is taken back and answered `JournalUnavailable`.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.loyalty.client import LoyaltyClient
from bridge.loyalty.journal import EntryStatus, Journal, JournalUnavailable
from bridge.loyalty.offline import OfflineClient
from bridge.loyalty.protocol import Identifier, Operation
from bridge.loyalty.purchase import Purchase
from bridge.loyalty.sequencer import RegisterLock, Sequencer
from sandbox.server import SandboxServer
from tests.conftest import admin
from tests.loyalty.offline_helpers import shift

ACTIVE = "2775000000012"


class _Signalling(deque[Any]):
    """The turn's line of returning calls, telling the test when one joins it."""

    def __init__(self, joined: threading.Event) -> None:
        super().__init__()
        self.joined = joined

    def append(self, item: Any) -> None:
        super().append(item)
        self.joined.set()


def test_a_call_that_steps_aside_lets_the_next_run_and_comes_back_first(
    tmp_path: Path,
) -> None:
    seq = Sequencer(RegisterLock(tmp_path / "lock"))
    order: list[str] = []
    inside = [0]
    most = [0]
    b_ran, a_waits = threading.Event(), threading.Event()
    seq._turn._returning = _Signalling(a_waits)  # type: ignore[assignment]

    def request(name: str) -> Callable[[], None]:
        def run() -> None:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            order.append(name)
            inside[0] -= 1

        return run

    def a() -> str:
        request("a1")()
        assert seq.step_aside()  # local work now: the next call may go
        assert b_ran.wait(10)
        seq.call(request("a2"))  # takes the turn back ahead of c
        return "a"

    def b() -> None:
        request("b")()
        b_ran.set()
        assert a_waits.wait(10)  # a is back in line while b still holds the turn

    gate = threading.Event()
    first = seq.submit(gate.wait)  # everything below queues behind it
    futures = [seq.submit(a), seq.submit(b), seq.submit(request("c"))]
    gate.set()
    first.result(10)
    assert futures[0].result(10) == "a"
    for fut in futures[1:]:
        fut.result(10)
    seq.close(10)
    assert order == ["a1", "b", "a2", "c"]
    assert most[0] == 1


def test_only_the_turns_holder_steps_aside_and_only_for_someone(tmp_path: Path) -> None:
    seq = Sequencer(RegisterLock(tmp_path / "lock"))
    assert seq.step_aside() is False  # a plain thread holds nothing
    assert seq.call(lambda: seq.step_aside()) is False  # nobody waits: no hand-over to pay
    assert seq.call(lambda: seq.step_aside(force=True)) is True  # a fast-path holder lets go
    assert seq.call(lambda: 7) == 7  # and the turn is free again
    seq.close(10)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "journal.sqlite")
    yield j
    j.close()


def test_sales_run_in_the_turn_journal_aside_and_never_overlap(
    make_client: Callable[..., LoyaltyClient], journal: Journal, sandbox_server: SandboxServer
) -> None:
    """As the POS API runs them: each sale is one queued call that steps aside for its
    journal appends; many at once must still reach processing one request at a time."""
    oc = OfflineClient(make_client(), journal)
    turn = oc.client.exclusive()
    sales = shift(21, 24)

    def sell(cheque: Any, ident: Identifier | None) -> str:
        p = Purchase(oc, cheque, ident)
        p.calculate()
        p.discount()
        p.confirm()
        return p.purchase_id

    futures = [turn.submit(lambda c=c, i=i: sell(c, i)) for c, i, _, _ in sales]
    ids = [f.result(60) for f in futures]
    status = admin(sandbox_server, "status")
    assert status["overlaps"] == 0
    assert status["requests"] == 3 * len(sales)  # nothing sent twice, nothing lost
    for pid in ids:
        assert admin(sandbox_server, f"purchases/{pid}")["status"] == "confirmed"
    entries = list(journal.entries())
    assert len(entries) == 2 * len(sales)
    assert all(e.status == EntryStatus.DONE for e in entries)
    for pid in ids:  # each purchase's steps in journal order: discount, then confirm
        assert [e.op for e in journal.for_purchase(pid)] == ["discount", "confirm"]
    helpers = [t.name for t in threading.enumerate() if t.name.startswith("posbridge-sender-")]
    assert len(helpers) > 1, "no call ever stepped aside"
    oc.client.close()


def test_an_entry_not_yet_on_disk_is_not_sent(
    make_client: Callable[..., LoyaltyClient],
    journal: Journal,
    sandbox_server: SandboxServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Committed by another thread whose fsync has not finished: the replayer makes it
    durable itself before sending it, and sends nothing if it cannot."""
    oc = OfflineClient(make_client(), journal)
    request = oc.prepare(Operation.CONFIRM, purchase_id="p-aside", identifier=None)
    entry, fresh = journal._insert(request, None)  # committed, its fsync still to come
    assert fresh
    synced: list[int] = []
    real = journal._fsync

    def failing() -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(journal, "_fsync", failing)
    with pytest.raises(JournalUnavailable, match="I/O error"):
        oc.drain()
    assert admin(sandbox_server, "status")["requests"] == 0  # not sent
    assert journal.get(entry.seq) is not None  # still waiting, in its place

    def counting() -> None:
        synced.append(1)
        real()

    monkeypatch.setattr(journal, "_fsync", counting)
    report = oc.drain()
    assert synced == [1] and report.sent == 1
    assert admin(sandbox_server, "status")["requests"] == 1


def test_a_step_whose_fsync_fails_is_taken_back_and_not_sent(
    make_client: Callable[..., LoyaltyClient],
    journal: Journal,
    sandbox_server: SandboxServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    oc = OfflineClient(make_client(), journal)
    ((cheque, _, _, _),) = shift(22, 1)
    p = Purchase(oc, cheque, Identifier(value=ACTIVE))
    p.calculate()
    sent = admin(sandbox_server, "status")["requests"]

    def failing() -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(journal, "_fsync", failing)
    with pytest.raises(JournalUnavailable, match="I/O error"):
        p.discount()
    monkeypatch.undo()
    assert journal.first_pending_seq() is None  # taken back: never replayed later
    ops = [e.op for e in journal.entries()]
    assert "discount" not in ops
    status = admin(sandbox_server, "status")
    # the discount never went out; only the purchase's cancel (nothing half-done) did
    assert status["requests"] == sent + 1
    assert admin(sandbox_server, f"purchases/{p.purchase_id}")["status"] != "discounted"
