"""A retried step (same operationId) is answered from storage and never moves money twice."""

from __future__ import annotations

from sandbox.server import SandboxServer
from tests.sandbox.wire import Api, D, line


def test_retried_payment_returns_the_stored_answer(api: Api) -> None:
    lines = [line(1, "5001", "300.00")]
    body = {
        "operationId": "pay-once",
        "operationDate": "2026-11-29T14:00:00",
        "identifier": {"type": "CardNumber", "value": "2775000000012"},
        "cheque": api.cheque(lines),
        "amount": D("100.00"),
    }
    path = "/v1.2/Processing/Purchases/p-idem/Bonus/Payment"
    first = api.raw(path, body)
    ledger = api.ledger()
    before = api.status()["duplicates"]
    again = api.raw(path, body)
    assert again.status_code == 200
    assert again.content == first.content  # byte for byte, transactionId included
    assert api.ledger() == ledger
    assert api.status()["duplicates"] == before + 1
    assert ledger["held"] == D("100.00")


def test_retried_discount_and_confirm_accrue_once(api: Api) -> None:
    lines = [line(1, "1001", "100.00")]
    for _ in range(3):
        assert api.discount("p-once", lines, op_id="disc-1")["accruedAmount"] == D("5.00")
    for _ in range(3):
        assert api.confirm("p-once", op_id="conf-1")["balance"] == D("505.00")
    ledger = api.ledger()
    assert (ledger["accrued"], ledger["balance"]) == (D("5.00"), D("505.00"))
    assert len([e for e in ledger["entries"] if e["kind"] == "accrual"]) == 1
    assert api.status()["duplicates"] == 4


def test_operation_id_reused_for_another_step_is_refused(api: Api) -> None:
    lines = [line(1, "5001", "100.00")]
    assert api.payment("p-a", lines, "10.00", op_id="op-x")["code"] == "Ok"
    ledger = api.ledger()
    other_purchase = api.payment("p-b", lines, "10.00", op_id="op-x")
    assert other_purchase["code"] == "NotUniqueOperationID"
    other_operation = api.discount("p-a", lines, op_id="op-x")
    assert other_operation["code"] == "NotUniqueOperationID"
    assert api.ledger() == ledger
    assert api.status()["duplicates"] == 0


def test_operation_ids_are_per_register(api: Api, sandbox: SandboxServer) -> None:
    lines = [line(1, "5001", "100.00")]
    assert api.discount("p-r1", lines, op_id="same-id")["code"] == "Ok"
    other = Api(sandbox, "register-2", "secret-2")
    try:
        assert other.discount("p-r2", lines, op_id="same-id")["code"] == "Ok"
    finally:
        other.close()


def test_refused_step_is_not_stored(api: Api) -> None:
    """A refusal changed nothing, so the same step may be retried once it can succeed."""
    lines = [line(1, "5001", "100.00")]
    assert api.payment("p-later", lines, "60.00", op_id="pay-later")["code"] == "LargePaymentAmount"
    bigger = [line(1, "5001", "200.00")]
    assert api.payment("p-later", bigger, "60.00", op_id="pay-later")["code"] == "Ok"
