"""The loyalty client against the real sandbox over loopback: every operation and card state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import pytest

from bridge.loyalty import errors
from bridge.loyalty.client import LoyaltyClient
from bridge.loyalty.protocol import Cheque, ChequeLine, Identifier, Operation
from bridge.loyalty.purchase import Purchase, run_purchase
from sandbox.server import SandboxServer
from tests.conftest import admin

ACTIVE, INACTIVE, BLOCKED, EXPIRED = (
    "2775000000012",
    "2775000000029",
    "2775000000036",
    "2775000000043",
)
D = Decimal


def make_cheque(*lines: tuple[str, str, str, str], number: str = "1") -> Cheque:
    return Cheque(
        number=number,
        date=datetime(2026, 11, 29, 15, 0, 0),
        lines=[
            ChequeLine(
                position=i + 1,
                goods_id=goods,
                name=name,
                price=D(price),
                quantity=D(qty),
                amount=(D(price) * D(qty)).quantize(D("0.01")),
            )
            for i, (goods, name, price, qty) in enumerate(lines)
        ],
    )


MILK = ("1001", "Milk", "89.90", "2")
BREAD = ("2001", "Rye bread", "55.00", "1")
SOAP = ("5001", "Dish soap", "150.00", "1")


def ledger(server: SandboxServer, card: str) -> dict[str, object]:
    return admin(server, f"ledger/{card}")  # type: ignore[no-any-return]


def test_balance_by_card_and_by_phone(client: LoyaltyClient) -> None:
    assert client.balance(ACTIVE).balance == D("500.00")
    by_phone = client.balance(Identifier(type="Phone", value="+79990000001"))
    assert by_phone.balance == D("500.00")


def test_full_purchase_sequence_accrues_and_redeems(
    client: LoyaltyClient, sandbox_server: SandboxServer
) -> None:
    cheque = make_cheque(MILK, SOAP)
    result = run_purchase(client, cheque, Identifier(value=ACTIVE), pay=D("100"))
    assert result.redeemed == D("100.00")
    # accrual on money paid: milk 5% (dairy), soap 1% (default), after the redemption share
    assert result.accrued > 0
    assert result.balance == D("500.00") - D("100.00") + result.accrued
    book = ledger(sandbox_server, ACTIVE)
    assert book["balance"] == result.balance
    assert book["redeemed"] == D("100.00") and book["accrued"] == result.accrued


def test_calculate_and_available_preview_without_holding(
    client: LoyaltyClient, sandbox_server: SandboxServer
) -> None:
    purchase = client.purchase(make_cheque(MILK, SOAP), ACTIVE)
    calc = purchase.calculate()
    total = D("329.80")
    assert calc.cheque is not None and calc.cheque.total_amount == total
    # redemption limit: at most 50% of the cheque
    assert calc.available_amount == (total / 2).quantize(D("0.01"))
    avail = purchase.available()
    assert avail.available_amount == calc.available_amount
    assert ledger(sandbox_server, ACTIVE)["held"] == D("0.00")


def test_redemption_over_the_limit_is_refused(client: LoyaltyClient) -> None:
    purchase = client.purchase(make_cheque(BREAD), ACTIVE)
    with pytest.raises(errors.LargePaymentAmount):
        purchase.pay(D("40.00"))  # 50% of 55.00 is 27.50


def test_redemption_over_the_balance_is_refused(client: LoyaltyClient) -> None:
    purchase = client.purchase(make_cheque(SOAP, SOAP, SOAP, SOAP, SOAP), "2775000000050")
    with pytest.raises(errors.NotEnoughMoney):
        purchase.pay(D("150.00"))  # balance 100


def test_not_activated_card_accrues_but_cannot_redeem(
    client: LoyaltyClient, sandbox_server: SandboxServer
) -> None:
    purchase = client.purchase(make_cheque(MILK), INACTIVE)
    calc = purchase.calculate()
    assert calc.available_amount == D("0.00")
    with pytest.raises(errors.CardNotActivated) as info:
        purchase.pay(D("10"))
    assert not info.value.retryable
    purchase.discount()
    confirmed = purchase.confirm()
    assert confirmed.accrued_amount is not None and confirmed.accrued_amount > 0
    assert ledger(sandbox_server, INACTIVE)["accrued"] == confirmed.accrued_amount


@pytest.mark.parametrize("op", ["balance", "calculate"])
def test_blocked_card_gets_nothing_and_cashier_sees_card_is_blocked(
    client: LoyaltyClient, op: str
) -> None:
    with pytest.raises(errors.CardBlocked) as info:
        if op == "balance":
            client.balance(BLOCKED)
        else:
            client.purchase(make_cheque(MILK), BLOCKED).calculate()
    assert info.value.cashier_text == "Card is blocked"
    assert info.value.code == "CardBlocked"


def test_expired_and_unknown_cards(client: LoyaltyClient) -> None:
    with pytest.raises(errors.CardExpired):
        client.purchase(make_cheque(MILK), EXPIRED).pay(D("1"))
    with pytest.raises(errors.CardNotFound):
        client.balance("2775000009999")


def test_wrong_password_is_an_authentication_error(
    make_client: Callable[..., LoyaltyClient],
) -> None:
    client = make_client(password="wrong-password")
    with pytest.raises(errors.AuthenticationFailed) as info:
        client.balance(ACTIVE)
    assert info.value.status == 401 and not info.value.retryable
    assert "wrong-password" not in str(info.value)


def test_blocked_register(make_client: Callable[..., LoyaltyClient]) -> None:
    client = make_client(login="register-blocked", password="secret-3")
    with pytest.raises(errors.DeviceBlocked):
        client.balance(ACTIVE)


def test_retry_of_a_step_is_idempotent(
    client: LoyaltyClient, sandbox_server: SandboxServer
) -> None:
    purchase = client.purchase(make_cheque(MILK), ACTIVE)
    purchase.pay(D("20"))
    purchase.discount()
    first = purchase.confirm()
    before = ledger(sandbox_server, ACTIVE)
    dupes = admin(sandbox_server, "status")["duplicates"]
    again = purchase.confirm()  # same operationId: processing returns the original result
    assert again.transaction_id == first.transaction_id
    assert ledger(sandbox_server, ACTIVE) == before
    assert admin(sandbox_server, "status")["duplicates"] == dupes + 1


def test_a_resent_payment_is_not_deducted_twice(
    client: LoyaltyClient, sandbox_server: SandboxServer
) -> None:
    purchase = client.purchase(make_cheque(MILK), ACTIVE)
    request = client.prepare(
        Operation.PAYMENT,
        purchase_id=purchase.purchase_id,
        identifier=Identifier(value=ACTIVE),
        cheque=purchase.cheque,
        amount=D("30"),
    )
    client.send(request)
    client.send(request)  # e.g. the answer to the first was lost
    assert ledger(sandbox_server, ACTIVE)["held"] == D("30.00")


def test_same_operation_id_for_another_step_is_refused(client: LoyaltyClient) -> None:
    purchase = client.purchase(make_cheque(MILK), ACTIVE)
    calc = client.prepare(
        Operation.CALCULATE, purchase_id=purchase.purchase_id, cheque=purchase.cheque
    )
    client.send(calc)
    reuse = client.prepare(
        Operation.DISCOUNT, purchase_id=purchase.purchase_id, cheque=purchase.cheque
    )
    forged = type(reuse)(
        reuse.op,
        reuse.body.model_copy(update={"operation_id": calc.operation_id}),
        reuse.purchase_id,
    )
    with pytest.raises(errors.NotUniqueOperationID):
        client.send(forged)


def test_cancel_of_a_held_purchase_releases_the_hold(
    client: LoyaltyClient, sandbox_server: SandboxServer
) -> None:
    purchase = client.purchase(make_cheque(MILK, SOAP), ACTIVE)
    purchase.pay(D("50"))
    purchase.discount()
    assert ledger(sandbox_server, ACTIVE)["held"] == D("50.00")
    purchase.cancel()
    book = ledger(sandbox_server, ACTIVE)
    assert book["held"] == D("0.00") and book["balance"] == D("500.00")
    with pytest.raises(errors.OperationIsCanceled):
        Purchase(client, purchase.cheque, purchase.identifier, purchase.purchase_id).confirm()


def test_cancel_one_redemption(client: LoyaltyClient, sandbox_server: SandboxServer) -> None:
    purchase = client.purchase(make_cheque(MILK, SOAP), ACTIVE)
    purchase.pay(D("20"))
    first_payment = purchase.payments[0][0]
    purchase.cancel_payment(first_payment)
    assert purchase.redeemed == D("0")
    assert ledger(sandbox_server, ACTIVE)["held"] == D("0.00")
    purchase.discount()
    purchase.confirm()
    assert ledger(sandbox_server, ACTIVE)["redeemed"] == D("0.00")


def test_confirm_before_discount_is_out_of_order(client: LoyaltyClient) -> None:
    purchase = client.purchase(make_cheque(MILK), ACTIVE)
    purchase.calculate()
    with pytest.raises(errors.IncorrectOperationOrder):
        purchase.confirm()


def test_partial_then_full_refund(client: LoyaltyClient, sandbox_server: SandboxServer) -> None:
    cheque = make_cheque(MILK, SOAP)
    result = run_purchase(client, cheque, Identifier(value=ACTIVE), pay=D("60"))
    after_purchase = ledger(sandbox_server, ACTIVE)["balance"]
    # return the soap (line 2) only
    soap_back = Cheque(number="R1", date=cheque.date, lines=[cheque.lines[1]])
    client.send(client.prepare_refund(result.purchase_id, soap_back, ACTIVE))
    partial = ledger(sandbox_server, ACTIVE)
    assert partial["refunded"] > 0 and partial["balance"] != after_purchase
    # then the milk: now the whole purchase is returned
    milk_back = Cheque(number="R2", date=cheque.date, lines=[cheque.lines[0]])
    client.send(client.prepare_refund(result.purchase_id, milk_back, ACTIVE))
    full = ledger(sandbox_server, ACTIVE)
    assert full["balance"] == D("500.00")  # every accrual taken back, every redemption returned
    with pytest.raises(errors.BusinessError):  # nothing left to refund
        client.send(client.prepare_refund(result.purchase_id, milk_back, ACTIVE))


def test_refund_of_an_unconfirmed_purchase_is_refused(client: LoyaltyClient) -> None:
    purchase = client.purchase(make_cheque(MILK), ACTIVE)
    purchase.discount()
    with pytest.raises(errors.BusinessError):
        client.send(client.prepare_refund(purchase.purchase_id, purchase.cheque, ACTIVE))


# ------------------------------------------------------------------ offers on local time


def discount_at(make_client: Callable[..., LoyaltyClient], when: datetime) -> Decimal:
    client = make_client(clock=lambda: when)
    response = client.purchase(make_cheque(BREAD), ACTIVE).calculate()
    assert response.cheque is not None
    return response.cheque.total_discount or D(0)


@pytest.mark.parametrize(
    ("hh", "mm", "ss", "expected"),
    [(9, 59, 59, "0"), (10, 0, 0, "5.50"), (11, 59, 59, "5.50"), (12, 0, 0, "0")],
)
def test_morning_offer_is_evaluated_on_the_registers_local_time(
    make_client: Callable[..., LoyaltyClient], hh: int, mm: int, ss: int, expected: str
) -> None:
    assert discount_at(make_client, datetime(2026, 11, 29, hh, mm, ss)) == D(expected)


def accrual_at(make_client: Callable[..., LoyaltyClient], when: datetime) -> Decimal:
    client = make_client(clock=lambda: when)
    purchase = client.purchase(make_cheque(SOAP), INACTIVE)
    purchase.discount()
    return purchase.confirm().accrued_amount or D(0)


@pytest.mark.parametrize(
    ("when", "factor"),
    [
        (datetime(2026, 11, 29, 21, 59, 59), 1),
        (datetime(2026, 11, 29, 22, 0, 0), 2),
        (datetime(2026, 11, 29, 23, 59, 59), 2),
        (datetime(2026, 11, 30, 0, 0, 0), 2),
        (datetime(2026, 11, 30, 1, 59, 59), 2),
        (datetime(2026, 11, 30, 2, 0, 0), 1),
    ],
)
def test_night_offer_across_midnight(
    make_client: Callable[..., LoyaltyClient], when: datetime, factor: int
) -> None:
    assert accrual_at(make_client, when) == D("1.50") * factor  # soap 150.00 at 1%
