"""Offline mode: queued accruals, refused redemption, ordered exactly-once replay."""

from __future__ import annotations

import stat
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bridge.loyalty import errors
from bridge.loyalty.client import LoyaltyClient
from bridge.loyalty.journal import EntryStatus, Journal
from bridge.loyalty.offline import Connectivity, LocalResponse, OfflineClient, RedemptionOffline
from bridge.loyalty.protocol import Identifier, Operation
from bridge.loyalty.purchase import Purchase
from sandbox.server import SandboxServer
from tests.conftest import LOGIN, PASSWORD, admin
from tests.loyalty.offline_helpers import shift, when_online

ACTIVE = "2775000000012"
D = Decimal


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "journal.sqlite")
    yield j
    j.close()


@pytest.fixture
def offline(make_client: Callable[..., LoyaltyClient], journal: Journal) -> Iterator[OfflineClient]:
    oc = OfflineClient(make_client(read_timeout=2.0), journal, probe_min=0.01, probe_max=0.05)
    yield oc
    oc.stop()


def sell(
    oc: OfflineClient, cheque: Any, ident: Identifier | None, cancel: bool = False
) -> Purchase:
    p = Purchase(oc, cheque, ident)
    p.calculate()
    p.discount()
    if cancel:
        p.cancel()
    else:
        p.confirm()
    return p


def test_offline_answers(
    offline: OfflineClient, sandbox_server: SandboxServer, journal: Journal
) -> None:
    ((cheque, _, _, _),) = shift(1, 1)
    sandbox_server.stop()
    p = Purchase(offline, cheque, Identifier(value=ACTIVE))
    calc = p.calculate()
    assert isinstance(calc, LocalResponse) and calc.local == "offline"
    assert calc.cheque is not None and calc.cheque.total_discount == 0
    assert calc.available_amount == 0
    assert offline.state is Connectivity.OFFLINE
    with pytest.raises(RedemptionOffline) as info:
        p.pay(D("10"))
    assert info.value.cashier_text == "Bonuses cannot be redeemed offline"
    bal = offline.send(offline.prepare(Operation.BALANCE, identifier=Identifier(value=ACTIVE)))
    assert bal.balance is None and "unknown" in (bal.cashier_message or "")
    queued = p.discount()
    assert isinstance(queued, LocalResponse) and queued.local == "queued"
    assert "once the connection is restored" in (queued.cashier_message or "")
    p.confirm()
    assert journal.counts().pending == 2


def test_business_refusals_never_make_the_register_offline(offline: OfflineClient) -> None:
    with pytest.raises(errors.CardBlocked):
        offline.send(
            offline.prepare(Operation.BALANCE, identifier=Identifier(value="2775000000036"))
        )
    assert offline.state is Connectivity.ONLINE


def test_online_requests_pass_through_the_journal(
    offline: OfflineClient, journal: Journal, sandbox_server: SandboxServer
) -> None:
    ((cheque, _, _, _),) = shift(2, 1)
    p = sell(offline, cheque, Identifier(value=ACTIVE))
    assert p.last["confirm"].accrued_amount is not None
    counts = journal.counts()
    assert (counts.pending, counts.done) == (0, 2)  # discount and confirm, both written first


def ledger_totals(server: SandboxServer) -> dict[str, tuple[Any, ...]]:
    out = {}
    for card in ("2775000000012", "2775000000029", "2775000000050", "2775000000067"):
        book = admin(server, f"ledger/{card}")
        out[card] = (book["balance"], book["accrued"], book["redeemed"], book["held"])
    return out


def test_hundred_purchases_offline_then_replay_equals_online(
    tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    purchases = shift(7, 100)

    def run(server: SandboxServer, name: str, go_offline: bool) -> OfflineClient:
        clock = {"now": datetime(2026, 1, 1)}
        client = LoyaltyClient(
            server.url,
            LOGIN,
            PASSWORD,
            lock_file=tmp_path / f"{name}.lock",
            clock=lambda: clock["now"],
        )
        oc = OfflineClient(
            client, Journal(tmp_path / f"{name}.sqlite"), probe_min=0.01, probe_max=0.05
        )
        if go_offline:
            server.stop()
        for cheque, ident, when, cancel in purchases:
            clock["now"] = when
            sell(oc, cheque, ident, cancel)
        return oc

    offline_run = run(sandbox_server, "offline", go_offline=True)
    assert offline_run.state is Connectivity.OFFLINE
    pending = offline_run.journal.counts().pending
    assert pending == 200  # discount + confirm/cancel for each purchase
    online = when_online(offline_run)
    sandbox_server.start()
    offline_run.start()
    assert online.wait(60), "the journal did not drain"
    offline_run.stop()
    counts = offline_run.journal.counts()
    assert (counts.pending, counts.rejected, counts.done) == (0, 0, 200)
    status = admin(sandbox_server, "status")
    assert status["duplicates"] == 0 and status["overlaps"] == 0

    with SandboxServer(tmp_path / "online.db") as online_server:
        online_run = run(online_server, "online", go_offline=False)
        assert online_run.journal.counts().pending == 0
        assert ledger_totals(sandbox_server) == ledger_totals(online_server)
        assert admin(online_server, "status")["duplicates"] == 0


def test_replay_keeps_order_ids_and_dates(
    offline: OfflineClient, sandbox_server: SandboxServer, journal: Journal
) -> None:
    sandbox_server.stop()
    sold = [sell(offline, c, i) for c, i, _, _ in shift(3, 5)]
    stored = [(e.operation_id, e.operation_date) for e in journal.entries()]
    sandbox_server.start()
    report = offline.drain()
    assert report.done == 10 and report.stopped is None
    assert offline.state is Connectivity.ONLINE
    for p in sold:
        view = admin(sandbox_server, f"purchases/{p.purchase_id}")
        assert view["status"] == "confirmed"
    assert [(e.operation_id, e.operation_date) for e in journal.entries()] == stored


def test_lost_redemption_answer_is_cancelled_by_replay(
    make_client: Callable[..., LoyaltyClient], journal: Journal, sandbox_server: SandboxServer
) -> None:
    """The payment reached processing but its answer was lost: the purchase must not keep it."""
    oc = OfflineClient(make_client(read_timeout=0.3), journal)
    ((cheque, _, _, _),) = shift(4, 1)
    p = Purchase(oc, cheque, Identifier(value=ACTIVE))
    p.calculate()
    sandbox_server.set_latency(5.0)
    with pytest.raises(RedemptionOffline):
        p.pay(D("20"))
    assert oc.state is Connectivity.OFFLINE
    sandbox_server.set_latency(0)  # the held payment is processed now
    assert sandbox_server.in_flight.wait_idle("register-1", 10)
    assert admin(sandbox_server, f"ledger/{ACTIVE}")["held"] == D("20.00")
    p.discount()
    p.confirm()
    report = oc.drain()
    assert report.stopped is None, report.stopped
    book = admin(sandbox_server, f"ledger/{ACTIVE}")
    assert book["held"] == D("0.00") and book["redeemed"] == D("0.00")
    assert admin(sandbox_server, f"purchases/{p.purchase_id}")["status"] == "confirmed"


def test_rejected_entries_are_kept_reported_and_retryable(
    offline: OfflineClient, sandbox_server: SandboxServer, journal: Journal
) -> None:
    ((cheque, _, _, _),) = shift(5, 1)
    sandbox_server.stop()
    p = Purchase(offline, cheque, Identifier(value=ACTIVE))
    p.confirm()  # a confirm of a purchase processing never saw: refused
    sandbox_server.start()
    report = offline.drain()
    assert [e.op for e in report.rejected] == ["confirm"]
    (entry,) = journal.entries(EntryStatus.REJECTED)
    assert "PurchaseNotFound" in (entry.last_error or "")
    assert offline.state is Connectivity.ONLINE  # a refusal is not a connectivity problem
    journal.retry(entry.seq)
    assert journal.get(entry.seq).status == EntryStatus.PENDING  # type: ignore[union-attr]
    with pytest.raises(Exception, match="only rejected"):
        journal.retry(entry.seq)


def test_wall_clock_jump_backwards_does_not_reorder(
    journal: Journal, client: LoyaltyClient
) -> None:
    reqs = [client.prepare(Operation.CONFIRM, purchase_id=f"p{i}") for i in range(5)]
    for req, now in zip(reqs, [1000.0, 999.0, 10.0, 5000.0, 1.0], strict=True):
        journal.append(req, now=now)
    assert [e.operation_id for e in journal.entries(EntryStatus.PENDING)] == [
        r.operation_id for r in reqs
    ]


def test_journal_file_is_private_and_durable(tmp_path: Path, client: LoyaltyClient) -> None:
    path = tmp_path / "j" / "journal.sqlite"
    j = Journal(path)
    req = client.prepare(Operation.CONFIRM, purchase_id="p1", identifier=Identifier(value=ACTIVE))
    j.append(req)
    j.append(req)  # the same step twice is one entry
    j.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for extra in path.parent.glob("journal.sqlite-*"):
        assert stat.S_IMODE(extra.stat().st_mode) & 0o077 == 0
    again = Journal(path)
    (entry,) = again.entries()
    assert entry.prepared().payload() == req.payload()
    assert ACTIVE not in repr(entry) and ACTIVE not in str(entry.export())
    assert entry.export(unmasked=True)["request"]["body"]["identifier"]["value"] == ACTIVE
    again.close()


def test_limits_warn_but_never_drop(
    make_client: Callable[..., LoyaltyClient], journal: Journal, sandbox_server: SandboxServer
) -> None:
    warnings: list[str] = []
    oc = OfflineClient(make_client(), journal, max_pending=2, on_warning=warnings.append)
    sandbox_server.stop()
    for cheque, ident, _, _ in shift(6, 2):
        sell(oc, cheque, ident)
    assert journal.counts().pending == 4
    assert warnings and "4 requests waiting (limit 2)" in warnings[-1]


def test_prune_only_old_done_entries(journal: Journal, client: LoyaltyClient) -> None:
    a = journal.append(client.prepare(Operation.CONFIRM, purchase_id="a"))
    b = journal.append(client.prepare(Operation.CONFIRM, purchase_id="b"))
    journal.finish(a.seq, EntryStatus.DONE, {"code": "Ok"})
    assert journal.prune(older_than_seconds=-1) == 1
    assert [e.seq for e in journal.entries()] == [b.seq]


def test_replay_racing_live_requests_never_overlaps(
    offline: OfflineClient, sandbox_server: SandboxServer, journal: Journal
) -> None:
    sandbox_server.stop()
    for cheque, ident, _, cancel in shift(8, 40):
        sell(offline, cheque, ident, cancel)
    sandbox_server.start()
    sandbox_server.set_latency(0.002)
    stop = threading.Event()
    live_calls = []

    def cashier() -> None:
        while not stop.is_set():
            live_calls.append(offline.client.balance(ACTIVE))

    threads = [threading.Thread(target=cashier) for _ in range(4)]
    for t in threads:
        t.start()
    report = offline.drain()
    stop.set()
    for t in threads:
        t.join()
    assert report.done == 80 and live_calls
    status = admin(sandbox_server, "status")
    assert status["overlaps"] == 0 and status["duplicates"] == 0


def test_two_replayers_never_send_an_entry_twice(
    make_client: Callable[..., LoyaltyClient], tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    """Two OfflineClients on one journal file stand for the service and `journal replay`."""
    path = tmp_path / "shared.sqlite"
    a = OfflineClient(make_client(), Journal(path))
    b = OfflineClient(make_client(), Journal(path))
    sandbox_server.stop()
    for cheque, ident, _, _ in shift(9, 30):
        sell(a, cheque, ident)
    sandbox_server.start()
    reports = []
    threads = [threading.Thread(target=lambda oc=oc: reports.append(oc.drain())) for oc in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.done for r in reports) == 60
    status = admin(sandbox_server, "status")
    assert status["duplicates"] == 0 and status["overlaps"] == 0


def test_sent_entries_are_pruned_after_the_retention(
    make_client: Callable[..., LoyaltyClient], journal: Journal, sandbox_server: SandboxServer
) -> None:
    oc = OfflineClient(make_client(), journal, retention_seconds=3600)
    for cheque, ident, _, _ in shift(13, 2):
        sell(oc, cheque, ident)
    assert journal.counts().done == 4
    assert oc.prune(force=True) == 0  # all sent just now: kept for the audit period
    oc.retention_seconds = -1
    assert oc.prune(force=True) == 4 and journal.counts().done == 0


def test_online_is_never_read_while_an_entry_waits(
    make_client: Callable[..., LoyaltyClient],
    journal: Journal,
    sandbox_server: SandboxServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The replayer has found the journal empty and is about to say ONLINE; in that very
    moment a cashier's discount is journaled and decides whether to send itself.  Without
    a lock it read RECOVERING and stayed queued, then the replayer said ONLINE: ONLINE
    with an entry pending, and a replayer asleep until the next sale.  Now the check and
    the move are one step, and the cashier's read waits for it: it reads ONLINE and sends
    itself.  The replayer is held at that point until the cashier has decided (old code:
    it asks the journal for its entry) or waits for the state (new code)."""
    stale = make_client().prepare(Operation.CONFIRM, purchase_id="never-seen")
    journal.append(stale)  # a backlog of one (processing refuses it: rejected, not stuck)
    oc = OfflineClient(make_client(), journal)
    initially = oc.state
    assert initially is Connectivity.RECOVERING
    ((cheque, _, _, _),) = shift(15, 1)
    p = Purchase(oc, cheque, Identifier(value=ACTIVE))
    p.calculate()

    checked, appended, decided = threading.Event(), threading.Event(), threading.Event()
    real_check, real_append, real_get = journal.first_pending_seq, journal.append, journal.get
    replayer_held: list[bool] = []

    def cashier() -> bool:
        return threading.current_thread() is threading.main_thread() and appended.is_set()

    def first_pending_seq() -> int | None:
        seq = real_check()
        if threading.current_thread() is replayer and not checked.is_set():
            checked.set()  # found empty: now the cashier's step is journaled
            replayer_held.append(decided.wait(10))
        return seq

    def append(request: Any, now: float | None = None) -> Any:
        entry = real_append(request, now)
        if threading.current_thread() is threading.main_thread():
            appended.set()
        return entry

    def get(seq: int) -> Any:
        if cashier():
            decided.set()
        return real_get(seq)

    class Watched:
        """The state lock, telling the replayer when the cashier waits for it."""

        def __init__(self, lock: Any) -> None:
            self.lock = lock

        def __enter__(self) -> Any:
            if cashier():
                decided.set()
            return self.lock.__enter__()

        def __exit__(self, *exc: object) -> Any:
            return self.lock.__exit__(*exc)

    monkeypatch.setattr(journal, "first_pending_seq", first_pending_seq)
    monkeypatch.setattr(journal, "append", append)
    monkeypatch.setattr(journal, "get", get)
    if hasattr(oc, "_state_lock"):
        monkeypatch.setattr(oc, "_state_lock", Watched(oc._state_lock))
    reports = []
    replayer = threading.Thread(target=lambda: reports.append(oc.drain()), name="replayer")
    replayer.start()
    assert checked.wait(10), "the replayer never reached its last check"
    answer = p.discount()
    replayer.join(10)
    monkeypatch.undo()

    assert replayer_held == [True] and not replayer.is_alive()
    assert [e.op for e in reports[0].rejected] == ["confirm"] and reports[0].stopped is None
    assert not isinstance(answer, LocalResponse), answer  # sent by the cashier's own thread
    assert oc.state is Connectivity.ONLINE
    assert journal.first_pending_seq() is None  # ONLINE means nothing waits
    assert admin(sandbox_server, f"purchases/{p.purchase_id}")["status"] == "discounted"
