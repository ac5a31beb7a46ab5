"""What the register does when an answer of processing cannot be used at all: docs/answers.md.

One test per row of the table, each with the three kinds of unusable answer (not JSON, a
JSON value that is not an object, an object without `code`).  Processing really did the
step (the real sandbox sits behind the rewriting fake); only its answer is lost, so the
register cannot know the outcome and must act on that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bridge.loyalty.client import LoyaltyClient
from bridge.loyalty.journal import EntryStatus, Journal
from bridge.loyalty.offline import (
    NO_REDEMPTION_OFFLINE,
    Connectivity,
    LocalResponse,
    OfflineClient,
    RedemptionOffline,
)
from bridge.loyalty.protocol import Operation, dumps, match_path
from sandbox.server import SandboxServer
from tests.conftest import LOGIN, PASSWORD
from tests.loyalty.drifting_processing import (
    CARD,
    DriftingProcessing,
    Step,
    cheque,
    drifting_processing,
    perform,
)
from tests.loyalty.offline_helpers import when_online


def not_json(answer: dict[str, Any]) -> bytes:
    return b"<html><body>Processing is being updated</body></html>"


def not_an_object(answer: dict[str, Any]) -> bytes:
    return dumps([answer])


def without_code(answer: dict[str, Any]) -> bytes:
    answer.pop("code")
    return dumps(answer)


UNUSABLE: dict[str, Callable[[dict[str, Any]], bytes]] = {
    f.__name__: f for f in (not_json, not_an_object, without_code)
}


@pytest.fixture
def fake(sandbox_server: SandboxServer) -> Iterator[DriftingProcessing]:
    with drifting_processing(sandbox_server.url) as f:
        yield f


@pytest.fixture
def oc(fake: DriftingProcessing, tmp_path: Path) -> Iterator[OfflineClient]:
    client = LoyaltyClient(fake.url, LOGIN, PASSWORD, lock_file=tmp_path / "lock")
    offline = OfflineClient(
        client, Journal(tmp_path / "journal.sqlite"), probe_min=0.01, probe_max=0.05
    )
    yield offline
    offline.stop()
    client.close()
    offline.journal.close()


def requests_for(fake: DriftingProcessing, op: Operation) -> list[bytes]:
    out = []
    for path, body in fake.requests:
        matched = match_path(path.removeprefix("/publicapi"))
        if matched is not None and matched[0] is op:
            out.append(body)
    return out


# ---------------------------------------------------------------------- balance


@pytest.mark.parametrize("unusable", list(UNUSABLE))
def test_balance_is_unknown(unusable: str, fake: DriftingProcessing, oc: OfflineClient) -> None:
    rewrite = UNUSABLE[unusable]
    answer = perform(oc, fake, Operation.BALANCE, lambda a: rewrite(a))
    assert isinstance(answer, LocalResponse) and answer.local == "offline"
    assert answer.balance is None and answer.cashier_message == "Balance unknown (offline)"
    assert oc.journal.counts().pending == 0  # nothing to resend: a balance changes nothing
    assert oc.state is Connectivity.ONLINE  # processing answered: the next call asks again
    again = perform(oc, fake, Operation.BALANCE, lambda a: a)
    assert not isinstance(again, LocalResponse) and again.balance == Decimal("500.00")


# ---------------------------------------------------------------------- calculate, available


@pytest.mark.parametrize("unusable", list(UNUSABLE))
@pytest.mark.parametrize("op", [Operation.CALCULATE, Operation.AVAILABLE])
def test_no_discount_locally(
    op: Operation, unusable: str, fake: DriftingProcessing, oc: OfflineClient
) -> None:
    answer = perform(oc, fake, op, UNUSABLE[unusable])
    assert isinstance(answer, LocalResponse) and answer.local == "offline"
    assert answer.available_amount == 0
    if op is Operation.CALCULATE:
        assert answer.cheque is not None and answer.cheque.total_discount == 0
        assert [(x.position, x.amount, x.discount) for x in answer.cheque.lines] == [
            (x.position, x.amount, Decimal(0)) for x in cheque().lines
        ]  # full price, by line
    assert oc.journal.counts().pending == 0
    assert oc.state is Connectivity.ONLINE


# ---------------------------------------------------------------------- payment


@pytest.mark.parametrize("unusable", list(UNUSABLE))
def test_lost_redemption_is_refused_and_undone(
    unusable: str, fake: DriftingProcessing, oc: OfflineClient, sandbox_server: SandboxServer
) -> None:
    step = Step()
    with pytest.raises(RedemptionOffline) as info:
        perform(oc, fake, Operation.PAYMENT, UNUSABLE[unusable], step)
    assert info.value.cashier_text == NO_REDEMPTION_OFFLINE
    book = sandbox_server.ledger(CARD)
    assert book is not None and book["held"] == Decimal("20.00")  # processing did take it
    assert step.purchase is not None
    payment_id = step.purchase.last_request_id
    (undo,) = oc.journal.pending_page(0, 10)
    assert undo.op == Operation.CANCEL_OPERATION.value
    assert undo.request["targetOperationId"] == payment_id
    assert oc.state is Connectivity.RECOVERING  # the replayer sends the undo by itself
    online = when_online(oc)
    oc.start()
    assert online.wait(10), "the lost redemption was not cancelled"
    book = sandbox_server.ledger(CARD)
    assert book is not None and (book["held"], book["redeemed"]) == (Decimal("0.00"),) * 2


# ---------------------------------------------------------------------- must-reach steps

MUST_REACH = [
    Operation.DISCOUNT,
    Operation.CONFIRM,
    Operation.CANCEL,
    Operation.REFUND,
    Operation.CANCEL_OPERATION,
]


def processing_state(sandbox_server: SandboxServer, op: Operation, step: Step) -> Any:
    """What processing holds once the step was applied (once, however often it was sent)."""
    assert step.purchase is not None
    purchase = sandbox_server.purchase(step.purchase.purchase_id)
    assert purchase is not None
    book = sandbox_server.ledger(CARD)
    assert book is not None
    return {
        Operation.DISCOUNT: lambda: purchase["status"] == "discounted",
        Operation.CONFIRM: lambda: purchase["status"] == "confirmed",
        Operation.CANCEL: lambda: purchase["status"] == "canceled",
        Operation.REFUND: lambda: purchase["status"] == "refunded",
        Operation.CANCEL_OPERATION: lambda: book["held"] == Decimal("0.00"),
    }[op]()


@pytest.mark.parametrize("unusable", list(UNUSABLE))
@pytest.mark.parametrize("op", MUST_REACH)
def test_must_reach_step_is_resent_until_an_answer_can_be_read(
    op: Operation,
    unusable: str,
    fake: DriftingProcessing,
    oc: OfflineClient,
    sandbox_server: SandboxServer,
) -> None:
    step = Step()
    fake_rewrite = UNUSABLE[unusable]
    answer = perform(oc, fake, op, fake_rewrite, step)
    # the cashier goes on: the step is queued, exactly as when processing is unreachable
    assert isinstance(answer, LocalResponse) and answer.local == "queued"
    assert step.purchase is not None
    op_id = step.request_op_id or step.purchase.last_request_id
    entry = oc.journal.by_operation_id(op_id)
    assert entry is not None and entry.status == EntryStatus.PENDING and entry.op == op.value
    assert processing_state(sandbox_server, op, step)  # processing did apply it
    assert oc.state is Connectivity.RECOVERING

    # still unusable: the replayer resends the very same request, and keeps it
    fake.drift(op, fake_rewrite)
    sent_before = len(requests_for(fake, op))
    oc.start()
    assert fake.wait_for(lambda: len(requests_for(fake, op)) >= sent_before + 2)
    assert len(set(requests_for(fake, op))) == 1  # same bytes: same operationId and date
    entry = oc.journal.by_operation_id(op_id)
    assert entry is not None and entry.status == EntryStatus.PENDING and entry.attempts >= 2

    # readable again: the next resend is answered; processing recognised every duplicate
    online = when_online(oc)
    fake.stop_drifting()
    oc.kick()
    assert online.wait(10), "the journal did not drain"
    entry = oc.journal.by_operation_id(op_id)
    assert entry is not None and entry.status == EntryStatus.DONE
    assert processing_state(sandbox_server, op, step)
    assert sandbox_server.status()["duplicates"] == len(requests_for(fake, op)) - 1
