"""Command layouts and reply parsers, checked against the lengths and fields the vendor documents."""

from __future__ import annotations

from decimal import Decimal

import pytest

from drivers.fiscal.base import FiscalPayment, PaymentKind, TaxRate, TaxSystem
from drivers.fiscal.shtrih import commands as cmd
from drivers.fiscal.shtrih.frames import request_body


def message_length(command: cmd.Command) -> int:
    """The vendor's "Длина сообщения": command code(s), password and data."""
    password = None if command.password is cmd.Password.NONE else 30
    return len(request_body(command.code, password, command.data))


@pytest.mark.parametrize(
    ("command", "length"),
    [
        (cmd.short_status(), 5),
        (cmd.full_status(), 5),
        (cmd.device_type(), 1),
        (cmd.print_string("Hello"), 46),
        (cmd.bold_string("Bold"), 26),
        (cmd.font_string("Font", font=2), 47),
        (cmd.font_info(1), 6),
        (cmd.cut(), 6),
        (cmd.open_receipt(0), 6),
        (cmd.sale("Milk", Decimal("1"), Decimal("89.90"), TaxRate.VAT10, 1), 60),
        (cmd.close(Decimal("100"), "x" * 50), 71),
        (cmd.cancel(), 5),
        (
            cmd.operation_v2(
                name="N" * 200,
                quantity=Decimal("1"),
                price=Decimal("1"),
                amount=Decimal("1"),
                tax=TaxRate.NONE,
                department=1,
                payment_method=4,
                payment_object=1,
            ),
            160,
        ),
        (cmd.close_v2([FiscalPayment(PaymentKind.CASH, Decimal(1))], TaxSystem.OSN, "t" * 99), 182),
        (cmd.fn_status(), 6),
    ],
)
def test_message_lengths_match_the_protocol(command: cmd.Command, length: int) -> None:
    assert message_length(command) == length


def test_print_string_is_cp1251_with_station_flags_and_zero_padding() -> None:
    command = cmd.print_string("Бонусы: 120", cmd.RECEIPT | cmd.JOURNAL)
    assert command.data[0] == 0x03
    assert command.data[1:12] == "Бонусы: 120".encode("cp1251")
    assert command.data[12:] == bytes(29)
    # control characters never reach the device; unknown characters print as '?'
    assert cmd.print_string("a\tb\x1bc€☃").data[1:7] == "abc€?".encode("cp1251") + b"\0"
    # a line longer than the 40-byte field is sent whole (the device's width decides)
    assert len(cmd.print_string("x" * 48).data) == 1 + 48


def test_operation_v2_fields() -> None:
    command = cmd.operation_v2(
        name="Молоко 3,2%",
        quantity=Decimal("1.5"),
        price=Decimal("89.90"),
        amount=Decimal("134.85"),
        tax=TaxRate.VAT10,
        department=2,
        payment_method=4,
        payment_object=1,
    )
    data = command.data
    assert command.code == 0xFF46 and command.prints and not command.repeatable
    assert data[0] == 1  # приход
    assert int.from_bytes(data[1:7], "little") == 1_500_000  # 6 decimals
    assert int.from_bytes(data[7:12], "little") == 8990
    assert int.from_bytes(data[12:17], "little") == 13485
    assert data[17:22] == b"\xff" * 5  # tax sum: the device computes it
    assert list(data[22:26]) == [0x02, 2, 4, 1]  # VAT10 bit, department, method, object
    assert data[26:] == "Молоко 3,2%".encode("cp1251")


@pytest.mark.parametrize(
    ("rate", "bit", "group"),
    [
        (TaxRate.VAT20, 0x01, 1),
        (TaxRate.VAT10, 0x02, 2),
        (TaxRate.VAT0, 0x04, 3),
        (TaxRate.NONE, 0x08, 4),
        (TaxRate.VAT20_120, 0x10, 5),
        (TaxRate.VAT10_110, 0x20, 6),
    ],
)
def test_tax_codes(rate: TaxRate, bit: int, group: int) -> None:
    assert cmd.TAX_BIT[rate] == bit
    assert cmd.TAX_GROUP[rate] == group


def test_sale_0x80_uses_thousandths_and_tax_groups() -> None:
    data = cmd.sale("Хлеб", Decimal("2.5"), Decimal("45.00"), TaxRate.VAT20, 1).data
    assert int.from_bytes(data[0:5], "little") == 2500
    assert int.from_bytes(data[5:10], "little") == 4500
    assert list(data[10:15]) == [1, 1, 0, 0, 0]
    assert data[15:19] == "Хлеб".encode("cp1251")


def test_close_v2_puts_payments_in_their_slots_and_the_tax_system_bit() -> None:
    payments = [
        FiscalPayment(PaymentKind.CASH, Decimal("100.00")),
        FiscalPayment(PaymentKind.ELECTRONIC, Decimal("50.50")),
        FiscalPayment(PaymentKind.CASH, Decimal("0.01")),
        FiscalPayment(PaymentKind.OTHER, Decimal("1")),
    ]
    data = cmd.close_v2(payments, TaxSystem.USN_INCOME).data
    slots = [int.from_bytes(data[i * 5 : i * 5 + 5], "little") for i in range(16)]
    assert slots[0] == 10001 and slots[1] == 5050 and slots[15] == 100
    assert sum(slots) == 10001 + 5050 + 100
    assert data[80] == 0  # rounding
    assert data[81:111] == bytes(30)  # tax sums: the device computes them
    assert data[111] == 0x02
    assert len(data) == 112


@pytest.mark.parametrize(
    "bad", [Decimal("0.001"), Decimal("-1"), Decimal("100000000"), 1.5, Decimal("NaN")]
)
def test_money_is_refused_not_rounded(bad: object) -> None:
    with pytest.raises(ValueError, match="price"):
        cmd.money(bad, "price")  # type: ignore[arg-type]


def test_quantity_with_more_than_six_decimals_is_refused() -> None:
    with pytest.raises(ValueError, match="quantity 0.0000001"):
        cmd.scaled(Decimal("0.0000001"), 6, 6, "quantity")
    with pytest.raises(ValueError, match="quantity"):
        cmd.scaled(Decimal("0"), 6, 6, "quantity")
