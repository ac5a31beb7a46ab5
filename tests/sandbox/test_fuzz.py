"""Whatever a register sends, the sandbox answers 200 or 400 with a JSON body: never a crash."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.loyalty.protocol import dumps
from tests.sandbox.wire import Api, line

PATHS = [
    "/v1.2/Processing/Balance",
    "/v1.2/Processing/Purchases/fz/Calculate",
    "/v1.2/Processing/Purchases/fz/Bonus/Available",
    "/v1.2/Processing/Purchases/fz/Bonus",
    "/v1.2/Processing/Purchases/fz/Bonus/Payment",
    "/v1.2/Processing/Purchases/fz/Operations/op/Cancel",
    "/v1.2/Processing/Purchases/fz/Confirm",
    "/v1.2/Processing/Purchases/fz/Cancel",
    "/v1.2/Processing/Purchases/fz/Refund",
    "/v1.2/Goods/Import",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.decimals(allow_nan=False, allow_infinity=False, places=4).map(Decimal)
    | st.text(max_size=20)
    | st.sampled_from(["2026-11-29T14:00:00", "2026-11-29T14:00:00Z", "NaN", "1e999", "-0"])
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

VALID: dict[str, Any] = {
    "operationId": "fz-op",
    "operationDate": "2026-11-29T14:00:00",
    "identifier": {"type": "CardNumber", "value": "2775000000012"},
    "cheque": {"number": "1", "date": "2026-11-29T14:00:00", "lines": [line(1, "1001", "10.00")]},
    "amount": Decimal("1.00"),
    "refundPurchaseId": "fz",
    "goods": [{"goodsId": "1", "name": "x"}],
}
FIELDS = [*VALID, "position", "quantity", "price", "lines", "type", "value"]


def _check(api: Api, path: str, body: bytes) -> None:
    response = api.raw(path, body)
    assert response.status_code in (200, 400), response.text
    answer = json.loads(response.content)
    assert isinstance(answer["code"], str)
    if response.status_code == 400:
        assert answer["errorMessage"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=st.sampled_from(PATHS), body=values)
def test_arbitrary_json(api: Api, path: str, body: Any) -> None:
    _check(api, path, dumps(body))


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(PATHS),
    field=st.sampled_from(FIELDS),
    value=values,
    where=st.integers(0, 2),
)
def test_one_field_off(api: Api, path: str, field: str, value: Any, where: int) -> None:
    body = json.loads(dumps(VALID), parse_float=Decimal)
    target = [body, body["cheque"], body["cheque"]["lines"][0]][where]
    target[field] = value
    _check(api, path, dumps(body))
