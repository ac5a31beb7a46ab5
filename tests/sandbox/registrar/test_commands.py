"""Every supported command: the answer's length and fields, as the vendor's layouts give them.

Lengths are the LEN byte (the vendor counts the command byte in it): short status is 16,
full status 48, a print command 3, close receipt 8...
"""

from __future__ import annotations

from datetime import datetime

import pytest

from sandbox.registrar import RegistrarEmulator
from tests.sandbox.registrar.wire import (
    RawHost,
    close_v2,
    cmd,
    le,
    sale_v2,
    text_field,
)


def sale_80(name: str, qty_thousandths: int, price: int) -> bytes:
    return cmd(
        0x80, le(qty_thousandths, 5) + le(price, 5) + bytes([1, 0, 0, 0, 0]) + text_field(name)
    )


def close_85(cash: int, card: int = 0) -> bytes:
    return cmd(0x85, le(cash, 5) + le(card, 5) + bytes(10) + le(0, 2) + bytes(4) + text_field(""))


@pytest.mark.parametrize(
    ("body", "length"),
    [
        (cmd(0x10), 16),
        (cmd(0x11), 48),
        (cmd(0x17, b"\x02" + text_field("hello")), 3),
        (cmd(0x12, b"\x02" + text_field("BOLD", 20)), 3),
        (cmd(0x2F, b"\x02\x01" + text_field("font 1")), 3),
        (cmd(0x26, b"\x01"), 7),
        (cmd(0x25, b"\x01"), 3),
        (cmd(0xFF01), 33),
    ],
)
def test_answer_lengths(host: RawHost, body: bytes, length: int) -> None:
    answer = host.call(body)
    assert answer.error == 0
    assert len(answer.body) == length


def test_short_status_fields(host: RawHost) -> None:
    f = host.call(cmd(0x10)).fields
    assert f[0] == 30  # operator: the system administrator's password was used
    flags = int.from_bytes(f[1:3], "little")
    assert flags & (1 << 1) and flags & (1 << 7)  # receipt roll and paper sensor: paper
    assert not flags & (1 << 10)  # lid down
    assert f[3] == 4 and f[4] == 0  # mode 4 shift closed, submode 0 paper present


def test_full_status_fields(host: RawHost, emulator: RegistrarEmulator) -> None:
    f = host.call(cmd(0x11)).fields
    assert f[0] == 30
    assert int.from_bytes(f[9:11], "little") == emulator.state.last_document
    assert f[13] == 4  # mode
    now = datetime.now()
    assert f[23:26] == bytes([now.day, now.month, now.year % 100])
    assert int.from_bytes(f[30:34], "little") == emulator.device.identity.serial


def test_device_type_names_the_model(host: RawHost) -> None:
    answer = host.call(cmd(0xFC, password=None))
    assert answer.error == 0
    assert len(answer.body) == 8 + len("ШТРИХ-М-01Ф")  # 8 + X
    assert answer.fields[6:].decode("cp1251") == "ШТРИХ-М-01Ф"


def test_font_parameters_give_the_line_width(host: RawHost) -> None:
    f = host.call(cmd(0x26, b"\x01")).fields
    width, char_width, _height, fonts = int.from_bytes(f[0:2], "little"), f[2], f[3], f[4]
    assert width // char_width == 48
    assert fonts >= 2
    f2 = host.call(cmd(0x26, b"\x02")).fields
    assert width // f2[2] == 24
    assert host.call(cmd(0x26, b"\x09")).error == 0x33  # no such font


def test_print_commands_reach_the_paper(host: RawHost, emulator: RegistrarEmulator) -> None:
    host.call(cmd(0x17, b"\x02" + text_field("Строка 1")))
    host.call(cmd(0x12, b"\x02" + text_field("ЖИРНО", 20)))
    host.call(cmd(0x2F, b"\x02\x02" + text_field("крупно")))
    host.call(cmd(0x17, b"\x01" + text_field("journal only")))
    host.call(cmd(0x25, b"\x00"))
    kinds = [(line.kind, line.text, line.font) for line in emulator.paper]
    assert kinds == [
        ("text", "Строка 1", 1),
        ("bold", "ЖИРНО", 1),
        ("font", "крупно", 2),
        ("cut", "full", 1),
    ]


def test_print_string_is_cut_at_the_line_width(host: RawHost, emulator: RegistrarEmulator) -> None:
    host.call(cmd(0x17, b"\x02" + ("x" * 60).encode()))
    assert emulator.paper[-1].text == "x" * 48


def test_sale_receipt_with_0x80_and_0x85(host: RawHost, emulator: RegistrarEmulator) -> None:
    assert host.call(cmd(0x8D, b"\x00")).body == bytes([0x8D, 0, 30])
    assert len(host.call(sale_80("Хлеб", 2000, 4550)).body) == 3
    close = host.call(close_85(10000))
    assert len(close.body) == 8
    assert int.from_bytes(close.fields[1:6], "little") == 10000 - 9100  # change
    [doc] = emulator.documents
    assert doc["items"][0] == {
        "name": "Хлеб",
        "quantity": "2",
        "price": "45.50",
        "amount": "91.00",
        "tax": 0,
        "department": 1,
        "payment_method": None,
        "payment_object": None,
        "operation": 1,
    }
    assert doc["total"] == "91.00" and doc["change"] == "9.00"


def test_operation_v2_and_close_v2(host: RawHost, emulator: RegistrarEmulator) -> None:
    host.call(cmd(0x8D, b"\x00"))
    answer = host.call(sale_v2("Сыр", 1_500_000, 30000, tax=1, method=4, subject=1))
    assert answer.body == b"\xff\x46\x00"
    close = host.call(close_v2(cash=0, electronic=45000, tax_system=1))
    assert close.error == 0
    assert len(close.body) == 3 + 5 + 4 + 4 + 5
    f = close.fields
    change = int.from_bytes(f[0:5], "little")
    number = int.from_bytes(f[5:9], "little")
    sign = int.from_bytes(f[9:13], "little")
    [doc] = emulator.documents
    assert change == 0
    assert number == doc["number"] == emulator.state.last_document
    assert str(sign) == doc["sign"]
    assert doc["items"][0]["quantity"] == "1.5" and doc["items"][0]["amount"] == "450.00"
    assert doc["payments"] == {"2": "450.00"} and doc["tax_system"] == 1


def test_operation_v2_name_up_to_128_bytes(host: RawHost, emulator: RegistrarEmulator) -> None:
    host.call(cmd(0x8D, b"\x00"))
    assert host.call(sale_v2("N" * 128, 1_000_000, 100)).error == 0
    assert emulator.state.receipt is not None
    assert emulator.state.receipt.items[0].name == "N" * 128
    assert host.call(sale_v2("N" * 129, 1_000_000, 100)).error == 0x33


@pytest.mark.parametrize(
    "bad",
    [
        {"tax": 3},  # two rates at once
        {"method": 0},
        {"method": 8},
        {"subject": 0},
        {"operation": 5},
    ],
)
def test_operation_v2_refuses_bad_fields(host: RawHost, bad: dict[str, int]) -> None:
    host.call(cmd(0x8D, b"\x00"))
    assert host.call(sale_v2("x", 1_000_000, 100, **bad)).error == 0x33


def test_close_v2_refuses_a_bad_tax_system(host: RawHost) -> None:
    host.call(cmd(0x8D, b"\x00"))
    host.call(sale_v2("x", 1_000_000, 100))
    assert host.call(close_v2(cash=100, tax_system=3)).error == 0x33


def test_close_refuses_payments_below_the_total(host: RawHost, emulator: RegistrarEmulator) -> None:
    host.call(cmd(0x8D, b"\x00"))
    host.call(sale_v2("x", 1_000_000, 10000))
    assert host.call(close_v2(cash=9999)).error == 0x45
    assert emulator.state.receipt is not None  # still open: the POS can pay again or cancel


def test_cancel_receipt(host: RawHost, emulator: RegistrarEmulator) -> None:
    host.call(cmd(0x8D, b"\x00"))
    host.call(sale_v2("x", 1_000_000, 100))
    assert host.call(cmd(0x88)).body == bytes([0x88, 0, 30])
    assert emulator.state.receipt is None and emulator.documents == []
    assert host.call(cmd(0x88)).error == 0x73  # nothing left to cancel


def test_fn_status_and_find_document(host: RawHost, emulator: RegistrarEmulator) -> None:
    host.call(cmd(0x8D, b"\x00"))
    host.call(sale_v2("x", 1_000_000, 12345))
    close = host.call(close_v2(cash=12345)).fields
    number = int.from_bytes(close[5:9], "little")
    status = host.call(cmd(0xFF01)).fields
    assert status[3] == 1  # shift open
    assert status[10:26] == emulator.device.identity.fn_serial.encode()
    assert int.from_bytes(status[26:30], "little") == number
    found = host.call(cmd(0xFF0A, le(number, 4)))
    f = found.fields
    assert f[0] == 3  # a receipt
    assert int.from_bytes(f[7:11], "little") == number
    assert f[11:15] == close[9:13]  # the same fiscal sign
    assert int.from_bytes(f[16:21], "little") == 12345
    assert host.call(cmd(0xFF0A, le(999, 4))).error == 0x08


def test_open_shift_and_z_report(host: RawHost, emulator: RegistrarEmulator) -> None:
    assert host.call(cmd(0xE0)).error == 0
    assert emulator.state.mode == 2
    assert host.call(cmd(0xE0)).error == 0x73
    assert host.call(cmd(0x41)).error == 0
    assert emulator.state.mode == 4
    kinds = [doc["kind"] for doc in emulator.fiscal_documents]
    assert kinds == ["shift_open", "shift_close"]
    assert "ОТЧЕТ О ЗАКРЫТИИ СМЕНЫ" in emulator.paper_text()


def test_wrong_password_is_refused(host: RawHost, emulator: RegistrarEmulator) -> None:
    assert host.call(cmd(0x8D, b"\x00", password=1234)).error == 0x4F
    assert emulator.state.receipt is None
    assert host.call(cmd(0xFF01, password=1)).error == 0x4F  # cashier may not ask the FN
    assert host.call(cmd(0x10, password=1)).body[2] == 1  # but may ask the status, as operator 1


def test_unknown_command_and_short_request(host: RawHost) -> None:
    assert host.call(cmd(0x99)).error == 0x37
    assert host.call(bytes([0x10, 30, 0])).error == 0x33  # password cut short
    assert len(host.call(cmd(0x80, b"\x01")).body) == 2  # a refusal carries only the code


def test_paper_log_of_a_fiscal_receipt(host: RawHost, emulator: RegistrarEmulator) -> None:
    host.call(cmd(0x8D, b"\x00"))
    host.call(sale_v2("Молоко", 1_000_000, 8990))
    host.call(cmd(0x17, b"\x02" + text_field("Бонусов начислено: 9")))
    close = host.call(close_v2(cash=10000)).fields
    kinds = [line.kind for line in emulator.paper]
    receipt = kinds[kinds.index("header") :]
    assert receipt == [
        "header", "header", "item", "item", "text", "total", "payment", "payment",
        "fiscal", "fiscal", "fiscal", "cut",
    ]  # fmt: skip
    text = emulator.paper_text()
    assert "Бонусов начислено: 9" in text
    assert f"ФД {int.from_bytes(close[5:9], 'little')}" in text
    assert str(int.from_bytes(close[9:13], "little")) in text
    assert emulator.documents[0]["messages"] == ["Бонусов начислено: 9"]


def test_control_codes_in_text_are_ignored(host: RawHost, emulator: RegistrarEmulator) -> None:
    host.call(cmd(0x17, b"\x02" + b"A\x00B\x1bC\x0a" + b"\x00" * 30))
    assert emulator.paper[-1].text == "ABC"


def test_quantities_read_as_plain_decimals(host: RawHost, emulator: RegistrarEmulator) -> None:
    host.call(sale_v2("ten", 10_000_000, 100))
    host.call(sale_v2("weighed", 1_234_567, 100))
    host.call(sale_v2("hundred", 100_000_000, 1))
    items = emulator.state.receipt.items if emulator.state.receipt else []
    quantities = [item.as_json()["quantity"] for item in items]
    assert quantities == ["10", "1.234567", "100"]
    assert "10 X 1.00" in emulator.paper_text()
