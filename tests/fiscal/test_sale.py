"""Composing the fiscal sale: a discount spread to the cent, payments that must cover the
sum, per-line tax over the registrar's default, the loyalty block at the device's width."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.fiscal.sale import FiscalRequest, LineFiscal, SaleError, compose, line_amounts
from bridge.loyalty.protocol import local_now
from bridge.service.cheque import Line, RegisterCheque
from drivers.fiscal.base import FiscalPayment, PaymentKind, TaxRate, TaxSystem

cents = st.integers(min_value=0, max_value=10_000_000).map(lambda c: Decimal(c) / 100)


@given(st.lists(cents, min_size=1, max_size=30), cents)
def test_a_spread_discount_adds_up_to_the_cent(amounts: list[Decimal], discount: Decimal) -> None:
    out = line_amounts(amounts, discount)
    total = sum(amounts, Decimal(0))
    assert sum(out, Decimal(0)) == total - min(discount, total)
    assert all(0 <= a <= b for a, b in zip(out, amounts, strict=True))
    assert all(a == a.quantize(Decimal("0.01")) for a in out)


def cheque(**kw: object) -> RegisterCheque:
    values: dict[str, object] = {
        "id": "c",
        "number": "1",
        "opened_at": local_now(),
        "lines": [
            Line("1", "Молоко", Decimal("89.90"), Decimal("2"), Decimal("179.80")),
            Line("2", "Хлеб", Decimal("55.00"), Decimal("1"), Decimal("55.00")),
        ],
        "state": "confirmed",
        "card": "2775000000012",
        "balance_before": Decimal("100"),
        "accrued": Decimal("11.74"),
        "balance_after": Decimal("111.74"),
        **kw,
    }
    return RegisterCheque(**values)  # type: ignore[arg-type]


def pay(*parts: tuple[PaymentKind, str]) -> list[FiscalPayment]:
    return [FiscalPayment(kind, Decimal(amount)) for kind, amount in parts]


def test_items_taxes_and_the_loyalty_block() -> None:
    request = FiscalRequest(
        pay((PaymentKind.CASH, "300")), {2: LineFiscal(TaxRate.VAT10, payment_object=2)}
    )
    sale = compose(
        cheque(),
        request,
        default_tax=TaxRate.VAT20,
        tax_system=TaxSystem.USN_INCOME,
        language="ru",
        width=32,
    )
    assert [i.tax for i in sale.items] == [TaxRate.VAT20, TaxRate.VAT10]
    assert [i.payment_object for i in sale.items] == [1, 2]
    assert [i.payment_method for i in sale.items] == [4, 4]
    assert sale.tax_system is TaxSystem.USN_INCOME and sale.to_pay == Decimal("234.80")
    assert all(len(line) <= 32 for line in sale.messages)
    text = "\n".join(sale.messages)
    assert "ПРОГРАММА ЛОЯЛЬНОСТИ" in text and "111,74" in text and "27*******0012" in text
    assert "2775000000012" not in text


def test_a_loyalty_discount_lowers_the_items_and_the_sum_to_pay() -> None:
    c = cheque(discount=Decimal("10.00"))
    sale = compose(
        c,
        FiscalRequest(pay((PaymentKind.ELECTRONIC, "224.80"))),
        default_tax=TaxRate.NONE,
        tax_system=TaxSystem.OSN,
        language="ru",
        width=40,
    )
    assert [i.amount for i in sale.items] == [Decimal("172.15"), Decimal("52.65")]
    assert sale.to_pay == Decimal("224.80")


def test_offline_cheque_prints_the_offline_notice() -> None:
    c = cheque(queued=True, offline=True, accrued=None, balance_after=None)
    sale = compose(
        c,
        FiscalRequest(pay((PaymentKind.CASH, "234.80"))),
        default_tax=TaxRate.NONE,
        tax_system=TaxSystem.OSN,
        language="ru",
        width=40,
    )
    assert "Нет связи с процессингом" in " ".join(" ".join(sale.messages).split())


@pytest.mark.parametrize(
    ("payments", "code"),
    [
        (pay((PaymentKind.CASH, "100")), "payments_short"),
        (pay((PaymentKind.ELECTRONIC, "300")), "payments_over"),
        (pay((PaymentKind.ELECTRONIC, "200"), (PaymentKind.OTHER, "40")), "payments_over"),
    ],
)
def test_payments_that_do_not_fit_are_refused(payments: list[FiscalPayment], code: str) -> None:
    with pytest.raises(SaleError) as caught:
        compose(
            cheque(),
            FiscalRequest(payments),
            default_tax=TaxRate.NONE,
            tax_system=TaxSystem.OSN,
            language="ru",
            width=40,
        )
    assert caught.value.code == code and "234.80" in str(caught.value)


def test_an_unknown_position_is_refused() -> None:
    with pytest.raises(SaleError) as caught:
        compose(
            cheque(),
            FiscalRequest(pay((PaymentKind.CASH, "300")), {3: LineFiscal(TaxRate.VAT0)}),
            default_tax=TaxRate.NONE,
            tax_system=TaxSystem.OSN,
            language="ru",
            width=40,
        )
    assert caught.value.code == "bad_lines" and "3" in str(caught.value)
