"""Every contract operation and card state against a running sandbox, over loopback HTTP.

Expected amounts are worked out by hand from the seed's rules (dairy 5 %, tobacco 0 %,
everything else 1 %; bakery -10 % from 10:00 to 12:00; bonuses at most 50 % of the cheque).
"""

from __future__ import annotations

import pytest

from sandbox.server import SandboxServer
from tests.sandbox.wire import (
    CARD_100,
    CARD_BLOCKED,
    CARD_EMPTY,
    CARD_EXPIRED,
    CARD_INACTIVE,
    PHONE,
    Api,
    D,
    line,
)

MORNING = "2026-11-29T10:30:00"  # bakery -10 %


def test_balance_by_card_phone_and_auto(api: Api) -> None:
    assert api.balance()["balance"] == D("500.00")
    assert api.balance(card="+7 999 000-00-01", id_type="Phone")["balance"] == D("500.00")
    assert api.balance(card=PHONE, id_type="Auto")["balance"] == D("500.00")
    assert api.balance(card=CARD_100, id_type="Auto")["balance"] == D("100.00")
    assert api.balance(card=CARD_INACTIVE)["balance"] == D("0.00")
    missing = api.balance(card="2775000000999")
    assert missing["code"] == "CardNotFound"
    assert "2775000000999" not in missing["errorMessage"]  # masked
    assert api.balance(card=None)["code"] == "CardNotFound"


@pytest.mark.parametrize(
    ("card", "code", "cashier"),
    [
        (CARD_BLOCKED, "CardBlocked", "Card is blocked"),
        (CARD_EXPIRED, "CardExpired", "Card has expired"),
        ("2775000000999", "CardNotFound", "Card not found"),
    ],
)
def test_card_states_refused_without_discount(api: Api, card: str, code: str, cashier: str) -> None:
    lines = [line(1, "2001", "55.00")]
    for answer in (
        api.balance(card=card),
        api.calculate("p-state", lines, card=card, date=MORNING),
        api.payment("p-state", lines, "1.00", card=card),
        api.discount("p-state", lines, card=card, date=MORNING),
    ):
        assert answer["code"] == code
        assert answer["cashierMessage"] == cashier
        assert "cheque" not in answer  # no discount calculated
    # nothing was started for the refused card
    assert api.admin.get("/sandbox/purchases/p-state").status_code == 404


def test_calculate_direct_discount_available_and_preview(api: Api) -> None:
    lines = [line(1, "1001", "179.80", "2"), line(2, "2001", "55.00")]
    answer = api.calculate("p-calc", lines, date=MORNING)
    assert answer["code"] == "Ok"
    cheque = answer["cheque"]
    assert cheque["totalAmount"] == D("229.30")
    assert cheque["totalDiscount"] == D("5.50")
    assert [x["discount"] for x in cheque["lines"]] == [D("0.00"), D("5.50")]
    assert [x["cashback"] for x in cheque["lines"]] == [D("8.99"), D("0.50")]
    assert answer["availableAmount"] == D("114.65")
    assert answer["availableBonusAmount"] == D("114.65")
    assert answer["balance"] == D("500.00")
    # wanting to spend bonuses lowers the previewed accrual, nothing is held yet
    wants = api.calculate("p-calc", lines, date=MORNING, paymentAmount=D("100.00"))
    assert wants["cheque"]["totalCashback"] < cheque["totalCashback"]
    assert api.ledger()["held"] == D("0.00")
    assert api.purchase("p-calc")["status"] == "open"


def test_available_is_capped_by_balance_and_limit(api: Api) -> None:
    lines = [line(1, "5001", "1000.00")]
    assert api.available("p-av", lines, card=CARD_100)["availableAmount"] == D("100.00")
    assert api.available("p-av2", lines)["availableAmount"] == D("500.00")
    assert api.available("p-av3", [line(1, "5001", "99.99")])["availableAmount"] == D("49.99")
    assert api.available("p-av4", lines, card=CARD_INACTIVE)["availableAmount"] == D("0.00")


def test_purchase_with_payment_accrues_on_money_paid(api: Api) -> None:
    lines = [line(1, "1001", "179.80", "2"), line(2, "5001", "150.00")]
    assert api.calculate("p-full", lines)["code"] == "Ok"
    paid = api.payment("p-full", lines, "100.00")
    assert (paid["code"], paid["amount"], paid["bonusAmount"]) == ("Ok", D("100.00"), D("100.00"))
    assert paid["balance"] == D("400.00")
    assert api.ledger()["held"] == D("100.00")
    final = api.discount("p-full", lines)
    # 100.00 redeemed split 54.52 / 45.48; 125.28 * 5 % = 6.26, 104.52 * 1 % = 1.05
    assert [x["payAmount"] for x in final["cheque"]["lines"]] == [D("125.28"), D("104.52")]
    assert final["accruedAmount"] == D("7.31")
    assert api.ledger()["pendingAccrual"] == D("7.31")
    assert api.balance()["balance"] == D("400.00")  # a held accrual is not spendable yet
    confirmed = api.confirm("p-full")
    assert (confirmed["accruedAmount"], confirmed["balance"]) == (D("7.31"), D("407.31"))
    ledger = api.ledger()
    assert (ledger["balance"], ledger["redeemed"], ledger["accrued"]) == (
        D("407.31"),
        D("100.00"),
        D("7.31"),
    )
    assert (ledger["held"], ledger["pendingAccrual"]) == (D("0.00"), D("0.00"))
    view = api.purchase("p-full")
    assert (view["status"], view["redeemed"], view["accrued"]) == (
        "confirmed",
        D("100.00"),
        D("7.31"),
    )


def test_accrual_by_group_and_unknown_goods(api: Api) -> None:
    lines = [
        line(1, "1001", "100.00"),  # dairy 5 %
        line(2, "3001", "100.00"),  # tobacco 0 %
        line(3, "5001", "100.00"),  # default 1 %
        line(4, "4001", "148.08", "1.234"),  # produce by weight, 1 %
        line(5, "no-such-goods", "100.00"),  # not in the catalogue: default group
    ]
    answer = api.discount("p-groups", lines)
    assert [x["cashback"] for x in answer["cheque"]["lines"]] == [
        D("5.00"),
        D("0.00"),
        D("1.00"),
        D("1.48"),
        D("1.00"),
    ]
    assert answer["accruedAmount"] == D("8.48")
    status = api.status()
    assert status["unknownGoods"] == 1
    assert status["unknownGoodsIds"] == ["no-such-goods"]


def test_redemption_limit_is_half_the_cheque_after_discounts(api: Api) -> None:
    lines = [line(1, "5001", "200.00")]
    assert api.payment("p-lim", lines, "100.01")["code"] == "LargePaymentAmount"
    assert api.payment("p-lim", lines, "60.00")["code"] == "Ok"
    assert api.payment("p-lim", lines, "40.01")["code"] == "LargePaymentAmount"
    assert api.payment("p-lim", lines, "40.00")["code"] == "Ok"
    assert api.balance()["balance"] == D("400.00")
    bread = [line(1, "2001", "200.00")]  # 180.00 after the morning discount: limit 90.00
    refused = api.payment("p-lim2", bread, "90.01", date=MORNING)
    assert refused["code"] == "LargePaymentAmount"
    assert refused["cashierMessage"]
    assert api.payment("p-lim2", bread, "90.00", date=MORNING)["code"] == "Ok"


def test_not_enough_money(api: Api) -> None:
    lines = [line(1, "5001", "1000.00")]
    assert api.payment("p-nem", lines, "100.01", card=CARD_100)["code"] == "NotEnoughMoney"
    assert api.payment("p-nem", lines, "100.00", card=CARD_100)["code"] == "Ok"
    assert api.payment("p-nem2", lines, "0.01", card=CARD_EMPTY)["code"] == "NotEnoughMoney"
    assert api.ledger(CARD_100)["balance"] == D("0.00")


def test_not_activated_card_accrues_but_cannot_redeem(api: Api) -> None:
    lines = [line(1, "5001", "100.00")]
    calc = api.calculate("p-inact", lines, card=CARD_INACTIVE)
    assert (calc["code"], calc["availableAmount"]) == ("Ok", D("0.00"))
    refused = api.payment("p-inact", lines, "1.00", card=CARD_INACTIVE)
    assert refused["code"] == "CardNotActivated"
    assert api.discount("p-inact", lines, card=CARD_INACTIVE)["accruedAmount"] == D("1.00")
    api.confirm("p-inact")
    assert api.ledger(CARD_INACTIVE)["balance"] == D("1.00")


def test_anonymous_purchase_gets_direct_discount_only(api: Api) -> None:
    lines = [line(1, "2001", "55.00"), line(2, "1001", "89.90")]
    calc = api.calculate("p-anon", lines, card=None, date=MORNING)
    assert calc["cheque"]["totalDiscount"] == D("5.50")
    assert calc["cheque"]["totalCashback"] == D("0.00")
    assert calc["availableAmount"] == D("0.00")
    assert "balance" not in calc
    final = api.discount("p-anon", lines, card=None, date=MORNING)
    assert final["accruedAmount"] == D("0.00")
    assert api.confirm("p-anon")["code"] == "Ok"
    assert api.payment("p-anon2", lines, "1.00", card=None)["code"] == "CardNotFound"


def test_discount_may_start_a_purchase(api: Api) -> None:
    """An offline replay sends discount and confirm only."""
    lines = [line(1, "1001", "40.00")]
    assert api.discount("p-replay", lines)["accruedAmount"] == D("2.00")
    assert api.confirm("p-replay")["balance"] == D("502.00")


def test_cancel_releases_holds(api: Api) -> None:
    lines = [line(1, "5001", "300.00")]
    api.payment("p-cancel", lines, "100.00")
    api.discount("p-cancel", lines)
    ledger = api.ledger()
    assert (ledger["held"], ledger["pendingAccrual"], ledger["balance"]) == (
        D("100.00"),
        D("2.00"),
        D("400.00"),
    )
    canceled = api.cancel("p-cancel")
    assert (canceled["code"], canceled["balance"]) == ("Ok", D("500.00"))
    ledger = api.ledger()
    assert (ledger["held"], ledger["pendingAccrual"], ledger["redeemed"]) == (
        D("0.00"),
        D("0.00"),
        D("0.00"),
    )
    assert {e["status"] for e in ledger["entries"] if e["purchaseId"] == "p-cancel"} == {"released"}
    assert api.purchase("p-cancel")["status"] == "canceled"
    assert api.confirm("p-cancel")["code"] == "OperationIsCanceled"
    assert api.cancel("p-cancel")["code"] == "OperationIsCanceled"
    assert api.payment("p-cancel", lines, "1.00")["code"] == "OperationIsCanceled"


def test_cancel_operation_returns_one_payment(api: Api) -> None:
    lines = [line(1, "5001", "300.00")]
    api.payment("p-cop", lines, "30.00", op_id="pay-a")
    api.payment("p-cop", lines, "20.00", op_id="pay-b")
    assert api.balance()["balance"] == D("450.00")
    undone = api.cancel_operation("p-cop", "pay-a")
    assert (undone["code"], undone["amount"], undone["balance"]) == ("Ok", D("30.00"), D("480.00"))
    assert api.cancel_operation("p-cop", "pay-a")["code"] == "OperationIsCanceled"
    assert api.cancel_operation("p-cop", "pay-zzz")["code"] == "OperationNotFound"
    api.discount("p-cop", lines)
    assert api.cancel_operation("p-cop", "pay-b")["code"] == "IncorrectOperationOrder"
    api.confirm("p-cop")
    assert api.cancel_operation("p-cop", "pay-b")["code"] == "OperationIsConfirmed"
    assert api.ledger()["redeemed"] == D("20.00")


def test_operation_order_errors(api: Api) -> None:
    lines = [line(1, "5001", "100.00")]
    assert api.confirm("p-none")["code"] == "PurchaseNotFound"
    assert api.cancel("p-none")["code"] == "PurchaseNotFound"
    api.calculate("p-order", lines)
    assert api.confirm("p-order")["code"] == "IncorrectOperationOrder"
    api.discount("p-order", lines)
    assert api.payment("p-order", lines, "1.00")["code"] == "IncorrectOperationOrder"
    api.confirm("p-order")
    assert api.confirm("p-order")["code"] == "OperationIsConfirmed"
    assert api.cancel("p-order")["code"] == "OperationIsConfirmed"
    assert api.discount("p-order", lines)["code"] == "OperationIsConfirmed"
    assert api.calculate("p-order", lines)["code"] == "OperationIsConfirmed"


def test_purchase_is_bound_to_its_card_and_register(api: Api, sandbox: SandboxServer) -> None:
    lines = [line(1, "5001", "100.00")]
    api.discount("p-bound", lines)
    # another card may be presented until bonuses are paid: the first card's hold goes
    assert api.calculate("p-bound", lines, card=CARD_100)["code"] == "Ok"
    assert api.ledger()["pendingAccrual"] == D("0.00")
    assert api.confirm("p-bound")["code"] == "IncorrectOperationOrder"  # discount again first
    assert api.payment("p-bound", lines, "10.00", card=CARD_100)["code"] == "Ok"
    assert api.discount("p-bound", lines)["code"] == "DifferentCheque"
    assert api.discount("p-bound", lines, card=CARD_100)["accruedAmount"] == D("0.90")
    other = Api(sandbox, "register-2", "secret-2")
    try:
        assert other.confirm("p-bound")["code"] == "PurchaseNotFound"
        assert other.calculate("p-bound", lines)["code"] == "NotUniquePurchaseID"
    finally:
        other.close()


def test_blocked_register(sandbox: SandboxServer) -> None:
    blocked = Api(sandbox, "register-blocked", "secret-3")
    try:
        assert blocked.balance()["code"] == "DeviceBlocked"
    finally:
        blocked.close()


def test_partial_and_full_refund_return_exactly_what_was_moved(api: Api) -> None:
    lines = [line(1, "1001", "200.00", "2"), line(2, "5001", "100.00")]
    # redeemed 60.00 split 40/20; accrual 160 * 5 % = 8.00 and 80 * 1 % = 0.80
    assert api.sale("p-sold", lines, pay="60.00")["accruedAmount"] == D("8.80")
    assert api.balance()["balance"] == D("448.80")

    first = api.refund("r-1", "p-sold", [line(1, "1001", "100.00", "1")])
    assert (first["code"], first["accruedAmount"], first["amount"]) == (
        "Ok",
        D("-4.00"),
        D("20.00"),
    )
    assert first["balance"] == D("464.80")
    assert api.purchase("p-sold")["status"] == "partially_refunded"

    over = api.refund("r-2", "p-sold", [line(1, "1001", "200.00", "2")])
    assert over["code"] == "LimitGained"
    assert api.balance()["balance"] == D("464.80")

    rest = api.refund("r-3", "p-sold", [line(1, "1001", "100.00", "1"), line(2, "5001", "100.00")])
    assert (rest["accruedAmount"], rest["amount"], rest["balance"]) == (
        D("-4.80"),
        D("40.00"),
        D("500.00"),
    )
    ledger = api.ledger()
    assert (ledger["reversed"], ledger["refunded"]) == (ledger["accrued"], ledger["redeemed"])
    assert api.purchase("p-sold")["status"] == "refunded"
    assert api.purchase("p-sold")["refunds"] == ["r-1", "r-3"]
    assert api.refund("r-4", "p-sold", [line(2, "5001", "100.00")])["code"] == "LimitGained"


def test_refunds_in_thirds_add_up_to_the_cent(api: Api) -> None:
    api.sale("p-thirds", [line(1, "1001", "20.00", "3")])  # accrual 1.00
    taken = [
        api.refund(f"r-th-{i}", "p-thirds", [line(1, "1001", "6.67", "1")])["accruedAmount"]
        for i in range(3)
    ]
    assert taken == [D("-0.33"), D("-0.33"), D("-0.34")]
    assert api.balance()["balance"] == D("500.00")


def test_refund_refusals_and_by_transaction(api: Api) -> None:
    lines = [line(1, "5001", "100.00")]
    api.discount("p-open", lines)
    assert api.refund("r-open", "p-open", lines)["code"] == "IncorrectOperationOrder"
    assert api.refund("r-ghost", "p-ghost", lines)["code"] == "PurchaseNotFound"
    confirmed = api.confirm("p-open")
    assert api.refund("r-pos", "p-open", [line(7, "5001", "100.00")])["code"] == "DifferentCheque"
    by_tx = api.refund("r-tx", None, lines, refundTransactionId=confirmed["transactionId"])
    assert (by_tx["code"], by_tx["accruedAmount"]) == ("Ok", D("-1.00"))
    assert api.refund("r-tx", "p-open", lines)["code"] == "NotUniquePurchaseID"
    assert api.confirm("r-tx")["code"] == "Ok"  # a refund is final at once
