"""Timed offers follow the register's operationDate, at the edges of their windows."""

from __future__ import annotations

import pytest

from tests.sandbox.wire import Api, D, line


@pytest.mark.parametrize(
    ("clock", "discount"),
    [
        ("09:59:59", "0.00"),
        ("10:00:00", "10.00"),
        ("11:59:59", "10.00"),
        ("12:00:00", "0.00"),
    ],
)
def test_morning_bakery_discount_window(api: Api, clock: str, discount: str) -> None:
    answer = api.calculate("p-bake", [line(1, "2001", "100.00")], date=f"2026-11-29T{clock}")
    assert answer["cheque"]["totalDiscount"] == D(discount)
    assert answer["cheque"]["totalAmount"] == D("100.00") - D(discount)


@pytest.mark.parametrize(
    ("when", "cashback"),
    [
        ("2026-11-29T21:59:59", "1.00"),
        ("2026-11-29T22:00:00", "2.00"),
        ("2026-11-30T00:00:00", "2.00"),
        ("2026-11-30T01:59:59", "2.00"),
        ("2026-11-30T02:00:00", "1.00"),
    ],
)
def test_night_double_accrual_crosses_midnight(api: Api, when: str, cashback: str) -> None:
    lines = [line(1, "5001", "100.00")]
    # the cheque's own date says noon: only operationDate counts
    answer = api.call(
        "/v1.2/Processing/Purchases/p-night/Bonus",
        date=when,
        cheque=api.cheque(lines, date="2026-11-29T12:00:00"),
    )
    assert answer["accruedAmount"] == D(cashback)
    assert api.confirm("p-night", date=when)["accruedAmount"] == D(cashback)


def test_offer_does_not_touch_other_groups(api: Api) -> None:
    answer = api.calculate("p-milk", [line(1, "1001", "100.00")], date="2026-11-29T10:30:00")
    assert answer["cheque"]["totalDiscount"] == D("0.00")
    # dairy 5 % doubled at night: 10 %
    night = api.calculate("p-milk", [line(1, "1001", "100.00")], date="2026-11-29T23:00:00")
    assert night["cheque"]["totalCashback"] == D("10.00")
