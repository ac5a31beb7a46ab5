"""Random purchase histories: what the answers report is exactly what the ledger holds.

A model balance is kept from the answers alone (payment `amount`, confirm `accruedAmount`,
refund `amount` and `accruedAmount`, cancel releasing the holds).  After every step it must
equal the ledger's balance, and the ledger's own totals must add up; retries of earlier
steps (same operationId, same bytes) must change nothing.
"""

from __future__ import annotations

import uuid
from decimal import ROUND_DOWN, Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.loyalty.protocol import dumps
from tests.sandbox.wire import CARD, Api, line, parse

GOODS = ["1001", "2001", "3001", "4001", "5001", "unknown-1"]
HOURS = ["09:30:00", "10:30:00", "14:00:00", "23:30:00", "01:30:00"]


def _invariant(ledger: dict[str, Any]) -> None:
    assert ledger["balance"] == (
        ledger["opening"]
        + ledger["accrued"]
        - ledger["redeemed"]
        + ledger["refunded"]
        - ledger["reversed"]
        - ledger["held"]
    )
    assert sum((e["amount"] for e in ledger["entries"] if e["status"] == "final"), Decimal(0)) == (
        ledger["balance"] + ledger["held"]
    )


class Register:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.sent: list[tuple[str, bytes, bytes]] = []  # path, body, first answer
        self.model = api.ledger()["balance"]

    def send(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        raw = dumps(body)
        response = self.api.raw(path, raw)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = parse(response)
        if answer["code"] == "Ok":
            self.sent.append((path, raw, response.content))
        return answer

    def step(self, pid: str, op: str, date: str, **fields: Any) -> dict[str, Any]:
        body = {"operationId": uuid.uuid4().hex, "operationDate": date, **fields}
        return self.send(f"/v1.2/Processing/Purchases/{pid}/{op}", body)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_random_histories_keep_the_books(api: Api, data: st.DataObject) -> None:
    reg = Register(api)
    ident = {"type": "CardNumber", "value": CARD}
    confirmed: list[tuple[str, list[dict[str, Any]]]] = []
    for _ in range(data.draw(st.integers(1, 4), label="purchases")):
        pid = uuid.uuid4().hex[:12]
        date = f"2026-11-29T{data.draw(st.sampled_from(HOURS), label='time')}"
        lines = [
            line(
                i + 1,
                data.draw(st.sampled_from(GOODS)),
                f"{data.draw(st.integers(1, 30000)) / 100:.2f}",
                str(data.draw(st.integers(1, 4))),
            )
            for i in range(data.draw(st.integers(1, 4), label="lines"))
        ]
        cheque = {"number": pid, "date": date, "lines": lines}
        calc = reg.step(pid, "Calculate", date, identifier=ident, cheque=cheque)
        assert calc["code"] == "Ok"
        available = calc["availableAmount"]
        held = Decimal(0)
        # drawn whatever the server says, so the examples do not depend on earlier ones
        share = data.draw(st.integers(0, 100), label="percent of available to pay")
        want = (available * share / 100).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
        if want > 0:
            paid = reg.step(
                pid, "Bonus/Payment", date, identifier=ident, cheque=cheque, amount=want
            )
            assert paid["code"] == "Ok"
            reg.model -= paid["amount"]
            held += paid["amount"]
        end = data.draw(
            st.sampled_from(["confirm", "cancel", "cancel-after-discount"]), label="end"
        )
        if end != "cancel":
            assert reg.step(pid, "Bonus", date, identifier=ident, cheque=cheque)["code"] == "Ok"
        if end == "confirm":
            done = reg.step(pid, "Confirm", date)
            reg.model += done["accruedAmount"]
            confirmed.append((pid, lines))
        else:
            assert reg.step(pid, "Cancel", date)["code"] == "Ok"
            reg.model += held
        ledger = api.ledger()
        assert ledger["balance"] == reg.model
        _invariant(ledger)

    for pid, lines in confirmed:
        if not data.draw(st.booleans(), label="refund"):
            continue
        back = [
            x | {"quantity": Decimal(1), "amount": x["price"]}
            for x in lines
            if data.draw(st.booleans(), label="line back")
        ] or lines
        refund = reg.step(
            uuid.uuid4().hex[:12],
            "Refund",
            "2026-11-30T12:00:00",
            cheque={"number": "R", "date": "2026-11-30T12:00:00", "lines": back},
            refundPurchaseId=pid,
        )
        assert refund["code"] == "Ok", refund
        reg.model += refund["amount"] + refund["accruedAmount"]
        assert api.ledger()["balance"] == reg.model

    before = api.ledger()
    duplicates = api.status()["duplicates"]
    picks = data.draw(st.lists(st.integers(0, 10**6), max_size=5), label="retries")
    retries = [reg.sent[i % len(reg.sent)] for i in picks]
    for path, raw, first in retries:
        assert api.raw(path, raw).content == first
    assert api.ledger() == before
    assert api.status()["duplicates"] == duplicates + len(retries)
    _invariant(before)
