"""Network faults between the register and processing, on real sockets through a proxy.

For each fault the shift is sold through an `OfflineClient` while the fault is on, one
replay is attempted while it is still on, then the fault is lifted and the background
replayer drains the journal by itself.  Processing must end exactly where the same
shift sold online leaves it (every ledger, every purchase), and its duplicate count must
equal the must-reach requests it processed while their answer was lost (each is sent
again later and must be recognised by its operationId), nothing more.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bridge.loyalty import errors
from bridge.loyalty.client import LoyaltyClient
from bridge.loyalty.journal import Journal
from bridge.loyalty.offline import (
    MUST_REACH,
    Connectivity,
    LocalResponse,
    OfflineClient,
    RedemptionOffline,
)
from bridge.loyalty.protocol import Identifier, match_path
from bridge.loyalty.purchase import Purchase, run_purchase
from sandbox.server import SandboxServer
from tests.conftest import LOGIN, PASSWORD
from tests.fault_proxy import FaultProxy, fault_proxy
from tests.loyalty.crash_child import FixedIds, final_state, online_reference, purchase_id
from tests.loyalty.offline_helpers import shift, when_online

SEED, PURCHASES = 23, 12
ACTIVE = "2775000000012"
READ_TIMEOUT = 0.4

FAULTS: dict[str, tuple[str, dict[str, Any]]] = {  # case: (proxy fault, its options)
    "pass": ("pass", {}),
    "refuse": ("refuse", {}),
    "reset": ("reset", {}),
    "stall": ("stall", {}),
    "status500": ("status", {"status": 500}),
    "status503": ("status", {"status": 503}),
    "status504-after-processing": ("status", {"status": 504, "forward": True}),
    "garbage-after-processing": ("garbage", {"forward": True}),
    "truncated-json": (
        "garbage",
        {"body": b'{"code":"Ok","balance":', "content_type": "application/json"},
    ),
}
LOSES_PROCESSED_ANSWERS = {
    "reset",
    "stall",
    "status504-after-processing",
    "garbage-after-processing",
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return online_reference(tmp_path_factory.mktemp("online"), SEED, PURCHASES)


@pytest.fixture
def proxy(sandbox_server: SandboxServer) -> Iterator[FaultProxy]:
    with fault_proxy(sandbox_server.host, sandbox_server.port) as p:
        yield p


@pytest.fixture
def offline(proxy: FaultProxy, tmp_path: Path) -> Iterator[OfflineClient]:
    client = LoyaltyClient(
        proxy.url,
        LOGIN,
        PASSWORD,
        lock_file=tmp_path / "processing.lock",
        connect_timeout=READ_TIMEOUT,
        read_timeout=READ_TIMEOUT,
    )
    oc = OfflineClient(client, Journal(tmp_path / "journal.sqlite"), probe_min=0.01, probe_max=0.05)
    yield oc
    oc.stop()
    client.close()
    oc.journal.close()


def sell(oc: OfflineClient, index: int, item: Any) -> Purchase:
    """The cashier's side: a calculate that fails is sold at full price; the rest must reach."""
    cheque, ident, when, cancel = item
    p = Purchase(
        FixedIds(oc, SEED, index, when), cheque, ident, purchase_id=purchase_id(SEED, index)
    )
    try:
        p.calculate()
    except errors.LoyaltyError as exc:
        assert exc.retryable and not isinstance(exc, errors.BusinessError), exc
    p.discount()
    if cancel:
        p.cancel()
    else:
        p.confirm()
    return p


def lost_must_reach(proxy: FaultProxy) -> int:
    """Must-reach requests processing applied while their answer never reached the register."""
    count = 0
    for event in proxy.events:
        matched = match_path(event.path.removeprefix("/publicapi"))
        if (
            matched is not None
            and matched[0] in MUST_REACH
            and event.forwarded
            and not event.answered
        ):
            count += 1
    return count


@pytest.mark.parametrize("case", list(FAULTS))
def test_fault_then_replay_equals_online(
    case: str,
    proxy: FaultProxy,
    offline: OfflineClient,
    sandbox_server: SandboxServer,
    reference: dict[str, Any],
) -> None:
    kind, options = FAULTS[case]
    proxy.set_fault(kind, **options)
    for i, item in enumerate(shift(SEED, PURCHASES)):
        p = sell(offline, i, item)
        last = p.last["cancel" if item[3] else "confirm"]
        if case == "pass":
            assert last.ok and not isinstance(last, LocalResponse)
        else:  # the cashier is told it is queued, never an error
            assert isinstance(last, LocalResponse) and last.local == "queued", last
    during = offline.drain()  # a replay attempt while the fault is still on
    counts = offline.journal.counts()
    if case == "pass":
        assert during.stopped is None and counts.pending == 0
    else:
        assert during.stopped is not None and counts.pending > 0
        assert offline.state is not Connectivity.ONLINE
    if case in LOSES_PROCESSED_ANSWERS:
        assert lost_must_reach(proxy) >= 1  # the interesting path was taken

    proxy.set_fault("pass")
    online = when_online(offline)
    offline.start()
    offline.kick()
    if offline.state is not Connectivity.ONLINE:
        assert online.wait(30), "the journal did not drain"
    counts = offline.journal.counts()
    assert (counts.pending, counts.rejected, counts.done) == (0, 0, 2 * PURCHASES)
    status = sandbox_server.status()
    assert status["overlaps"] == 0
    assert status["duplicates"] == lost_must_reach(proxy)
    assert final_state(sandbox_server, SEED, PURCHASES) == reference


def test_run_purchase_keeps_the_accrual_when_calculate_gets_a_500(
    proxy: FaultProxy, offline: OfflineClient, sandbox_server: SandboxServer
) -> None:
    ((cheque, ident, _, _),) = shift(SEED, 1)
    proxy.set_fault("status", status=500)
    result = run_purchase(offline, cheque, ident)
    assert result.queued
    proxy.set_fault("pass")
    assert offline.drain().stopped is None
    assert sandbox_server.purchase(result.purchase_id)["status"] == "confirmed"  # type: ignore[index]


@pytest.mark.parametrize("flow", ["abandoned", "confirmed-anyway"])
@pytest.mark.parametrize("case", ["status500-after-processing", "garbage-after-processing"])
def test_redemption_with_a_garbled_answer_is_undone(
    case: str,
    flow: str,
    proxy: FaultProxy,
    offline: OfflineClient,
    sandbox_server: SandboxServer,
) -> None:
    ((cheque, _, _, _),) = shift(4, 1)
    p = Purchase(offline, cheque, Identifier(value=ACTIVE))
    p.calculate()
    kind = case.split("-")[0].removesuffix("500")
    proxy.set_fault(kind, status=500, forward=True, only="/Bonus/Payment")
    with pytest.raises(errors.LoyaltyError):
        p.pay(Decimal("20"))
    book = sandbox_server.ledger(ACTIVE)
    assert book is not None and book["held"] == Decimal("20.00")  # processing did apply it
    proxy.set_fault("pass")
    if flow == "abandoned":  # what run_purchase does: the purchase is dropped
        assert offline.journal.counts().pending == 0 or offline.drain().stopped is None
    else:  # what the register service allows: the cashier takes other payment and confirms
        p.discount()
        p.confirm()
        assert offline.drain().stopped is None
    book = sandbox_server.ledger(ACTIVE)
    assert book is not None and (book["held"], book["redeemed"]) == (Decimal("0.00"),) * 2


def test_lost_redemption_is_undone_without_waiting_for_the_next_sale(
    proxy: FaultProxy, offline: OfflineClient, sandbox_server: SandboxServer
) -> None:
    ((cheque, _, _, _),) = shift(4, 1)
    p = Purchase(offline, cheque, Identifier(value=ACTIVE))
    p.calculate()
    proxy.set_fault("status", status=500, forward=True, only="/Bonus/Payment")
    with pytest.raises(RedemptionOffline):
        p.pay(Decimal("20"))
    proxy.set_fault("pass")
    assert offline.journal.counts().pending == 1  # the cancel-operation
    assert offline.state is Connectivity.RECOVERING  # a backlog: the replayer must run
    online = when_online(offline)
    offline.start()

    def held() -> Decimal:
        book = sandbox_server.ledger(ACTIVE)
        assert book is not None
        return Decimal(book["held"])

    assert online.wait(10), "the lost redemption was not cancelled"
    assert held() == 0
