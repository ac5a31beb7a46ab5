"""The shared wire models: exact money, local time without offset, paths both ways."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from bridge.loyalty import protocol as p


def cheque(**line: object) -> p.Cheque:
    base = dict(position=1, goods_id="1001", name="Milk", price="1.10", quantity="3", amount="3.30")
    base.update(line)
    return p.Cheque(
        number="42", date=datetime(2026, 11, 29, 14, 5, 31), lines=[p.ChequeLine(**base)]
    )


def test_money_is_sent_as_exact_json_numbers() -> None:
    body = p.CalculateRequest(
        operation_id="op-1",
        operation_date=datetime(2026, 11, 29, 14, 5, 31, 999),
        cheque=cheque(),
        payment_amount=Decimal("0.1") + Decimal("0.2"),
    )
    raw = p.encode(body)
    assert b'"paymentAmount":0.30' in raw
    assert b'"price":1.10' in raw and b'"quantity":3.000' in raw
    decoded = p.loads(raw)
    assert decoded["paymentAmount"] == Decimal("0.30")
    assert isinstance(decoded["cheque"]["lines"][0]["amount"], Decimal)


def test_operation_date_is_local_without_offset() -> None:
    body = p.BalanceRequest(operation_id="x", operation_date=datetime(2026, 1, 2, 3, 4, 5))
    text = json.loads(p.encode(body))["operationDate"]
    assert text == "2026-01-02T03:04:05"
    with pytest.raises(ValidationError, match="without an offset"):
        p.BalanceRequest(
            operation_id="x",
            operation_date=datetime(2026, 1, 2, tzinfo=timezone(timedelta(hours=3))),
        )
    with pytest.raises(ValidationError, match="without an offset"):
        p.BalanceRequest.model_validate(
            {"operationId": "x", "operationDate": "2026-01-02T03:04:05Z"}
        )


def test_floats_never_reach_the_wire() -> None:
    with pytest.raises(TypeError, match="binary floats"):
        p.dumps({"amount": 0.1})


def test_request_models_reject_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="extra"):
        p.ConfirmRequest.model_validate(
            {"operationId": "x", "operationDate": "2026-01-02T03:04:05", "amout": 1}
        )


def test_money_rounds_half_up_to_cents_on_the_wire() -> None:
    body = p.PaymentRequest(
        operation_id="x", operation_date=datetime(2026, 1, 1), cheque=cheque(), amount="10.005"
    )
    assert p.loads(p.encode(body))["amount"] == Decimal("10.01")


@pytest.mark.parametrize("op", list(p.Operation))
def test_paths_round_trip(op: p.Operation) -> None:
    path = p.path_for(op, "pur-1", "op-9")
    matched = p.match_path(path)
    assert matched is not None and matched[0] is op
    if "{purchaseId}" in p.PATHS[op]:
        assert matched[1] == "pur-1"


def test_paths_refuse_unsafe_ids() -> None:
    with pytest.raises(ValueError, match="URL-safe"):
        p.path_for(p.Operation.CONFIRM, "../Balance")
    with pytest.raises(ValueError, match="needs a purchaseId"):
        p.path_for(p.Operation.CONFIRM)
    assert p.match_path("/v1.2/Processing/Nope") is None


def test_card_numbers_are_masked_in_reprs() -> None:
    ident = p.Identifier(value="2775000000012")
    assert "2775000000012" not in repr(ident)
    body = p.BalanceRequest(operation_id="x", operation_date=datetime(2026, 1, 1), identifier=ident)
    assert "2775000000012" not in repr(body)
    assert p.mask_card("2775000000012") == "27*******0012"
    assert p.mask_card("1234") == "**34"


def test_pin_never_in_repr() -> None:
    body = p.PaymentRequest(
        operation_id="x",
        operation_date=datetime(2026, 1, 1),
        cheque=cheque(),
        amount=1,
        pin_code="4321",
    )
    assert "4321" not in repr(body)


def test_response_parses_decimal_and_ignores_new_fields() -> None:
    r = p.ProcessingResponse.model_validate(
        p.loads(b'{"code":"Ok","balance":12.34,"futureField":true,"cheque":{"lines":[]}}')
    )
    assert r.ok and r.balance == Decimal("12.34")


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=0, max_value=10**9, places=2))
def test_any_money_value_survives_the_wire(value: Decimal) -> None:
    body = p.PaymentRequest(
        operation_id="x", operation_date=datetime(2026, 1, 1), cheque=cheque(), amount=value + 1
    )
    assert p.loads(p.encode(body))["amount"] == value + 1
