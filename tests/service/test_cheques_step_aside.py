"""Two calls for one cheque in the register's turn at once (a till that sent confirm
twice): the first steps aside for its journal append while holding the cheque; the
second must wait for the cheque out of the turn, or the first could never take the turn
back to finish.  Real service, real sandbox."""

from __future__ import annotations

from pathlib import Path

from sandbox.server import SandboxServer
from tests.conftest import admin
from tests.service.cheque_helpers import ACTIVE, MILK, SOAP, body, running


def test_two_confirms_of_one_cheque_in_the_turn_both_finish(
    tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    with running(tmp_path, sandbox_server) as (svc, api):
        cheque_id = body(api.post("/v1/cheques", json={"card": ACTIVE, "lines": [MILK, SOAP]}))[
            "id"
        ]
        assert body(api.post(f"/v1/cheques/{cheque_id}/calculate"))["state"] == "calculated"
        book = svc.register.book
        cheque = book.get(cheque_id)
        turn = svc.register.offline.client.exclusive()
        gate = turn.submit(lambda: None)
        gate.result(10)
        first = turn.submit(lambda: book.confirm(cheque))
        second = turn.submit(lambda: book.confirm(cheque))
        assert first.result(20).state == "confirmed"  # the old lock-in-the-turn hung here
        assert second.result(20).state == "confirmed"
        purchase_id = body(api.get(f"/v1/cheques/{cheque_id}"))["purchaseId"]
    assert admin(sandbox_server, f"purchases/{purchase_id}")["status"] == "confirmed"
    assert admin(sandbox_server, "status")["overlaps"] == 0
