"""POST /v1/cheques/{id}/fiscal end to end: the real service, the real processing sandbox
over loopback, and the real Shtrih-M emulator over TCP as the registrar.

What the POS relies on: the number and sign in the answer, the loyalty lines inside the
receipt, every registrar error answered with where the fiscal document is (and never
left open), and a retry that never makes a second fiscal document.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.fiscal.records import FiscalRecord, FiscalStore, Stage
from bridge.loyalty.protocol import loads
from bridge.server import Service
from drivers.fiscal.base import FiscalItem, FiscalPayment, PaymentKind, TaxSystem
from drivers.fiscal.shtrih.printer import ShtrihFiscalPrinter
from drivers.transport.tcp import TcpTransport
from sandbox.registrar.emulator import RegistrarEmulator
from sandbox.registrar.faults import Fault
from sandbox.server import SandboxServer
from tests.fiscal.conftest import Till
from tests.service.conftest import TOKEN, service_config
from tests.service.test_api import ACTIVE, sell

LOYALTY_TITLE = "ПРОГРАММА ЛОЯЛЬНОСТИ"
CASH_400 = {"payments": [{"kind": "cash", "amount": "400.00"}]}
SALE_V2, CLOSE_V2 = 0xFF46, 0xFF45


def fiscal(till: Till, cheque_id: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    r = till.api.post(f"/v1/cheques/{cheque_id}/fiscal", json=body or CASH_400)
    return r.status_code, loads(r.content)


def client(svc: Service) -> httpx.Client:
    return httpx.Client(base_url=svc.url, headers={"X-Posbridge-Token": TOKEN}, timeout=60)


def receipts_on_paper(emulator: RegistrarEmulator) -> int:
    return emulator.paper_text().count(LOYALTY_TITLE)


def test_sale_printed_with_the_loyalty_lines_inside(
    till: Till, emulator: RegistrarEmulator
) -> None:
    out = sell(till.api, ACTIVE, pay="50")
    body = {
        "payments": [
            {"kind": "other", "amount": "50.00"},  # the bonuses, as the POS books them
            {"kind": "electronic", "amount": "200.00"},
            {"kind": "cash", "amount": "100.00"},
        ],
        "lines": [{"position": 1, "tax": "vat10"}, {"position": 2, "paymentObject": 1}],
    }
    status, answer = fiscal(till, out["id"], body)
    assert status == 200, answer
    assert answer["state"] == "closed" and not answer["replayed"]
    assert isinstance(answer["documentNumber"], int) and answer["fiscalSign"].isdigit()
    [doc] = emulator.documents
    assert doc["number"] == answer["documentNumber"] and doc["sign"] == answer["fiscalSign"]
    assert [i["name"] for i in doc["items"]] == ["Milk 3.2% 1 l", "Dish soap"]
    assert sum(Decimal(i["amount"]) for i in doc["items"]) == Decimal("329.80")
    assert doc["items"][0]["tax"] != doc["items"][1]["tax"]  # vat10, then the default
    assert sorted(Decimal(v) for v in doc["payments"].values()) == [
        Decimal("50.00"),
        Decimal("100.00"),
        Decimal("200.00"),
    ]
    assert Decimal(doc["change"]) == answer["change"] == Decimal("20.20")
    # the loyalty block is inside the receipt, as printed messages, at the device's width
    assert doc["messages"] == answer["lines"]
    text = "\n".join(answer["lines"])
    assert LOYALTY_TITLE in text and "27*******0012" in text and ACTIVE not in text
    balance = f"{out['balanceAfter']:.2f}".replace(".", ",")
    assert balance in text.replace(" ", "")
    assert all(len(line) <= 48 for line in answer["lines"])
    paper = emulator.paper_text()
    assert paper.index(LOYALTY_TITLE) < paper.rindex("ИТОГ")  # before the total


def test_a_retry_answers_the_same_and_prints_nothing(
    till: Till, emulator: RegistrarEmulator
) -> None:
    out = sell(till.api, ACTIVE)
    first = fiscal(till, out["id"])[1]
    till.restart()  # even from a new process: the record is on disk
    status, again = fiscal(till, out["id"])
    assert status == 200 and again["replayed"]
    assert (again["documentNumber"], again["fiscalSign"], again["lines"]) == (
        first["documentNumber"],
        first["fiscalSign"],
        first["lines"],
    )
    assert len(emulator.documents) == 1 and receipts_on_paper(emulator) == 1


def test_only_a_confirmed_cheque_is_printed(till: Till, emulator: RegistrarEmulator) -> None:
    line = {"goodsId": "1", "name": "x", "price": "1"}
    r = till.api.post("/v1/cheques", json={"card": ACTIVE, "lines": [line]})
    status, problem = fiscal(till, loads(r.content)["id"])
    assert status == 409 and problem["code"] == "not_confirmed"
    assert emulator.documents == [] and emulator.paper_text() == ""


def test_payments_must_cover_the_sum(till: Till, emulator: RegistrarEmulator) -> None:
    out = sell(till.api, ACTIVE)
    status, problem = fiscal(till, out["id"], {"payments": [{"kind": "cash", "amount": "10"}]})
    assert status == 422 and problem["code"] == "payments_short"
    assert "329.80" in problem["detail"] and emulator.paper_text() == ""
    status, problem = fiscal(
        till, out["id"], {"payments": [{"kind": "electronic", "amount": "500"}]}
    )
    assert status == 422 and problem["code"] == "payments_over"
    assert fiscal(till, out["id"])[0] == 200  # nothing was recorded against the cheque


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault.paper_out(), "registrar_paper_out"),
        (Fault.cover_open(), "registrar_cover_open"),
        (Fault.shift_over_24h(), "registrar_shift_expired"),
        (Fault.fn_full(), "registrar_fn_full"),
        (Fault.fn_missing(), "registrar_fn_missing"),
    ],
)
def test_device_conditions_refuse_before_a_receipt_is_opened(
    till: Till, emulator: RegistrarEmulator, fault: Fault, code: str
) -> None:
    out = sell(till.api, ACTIVE)
    emulator.inject(fault)
    status, problem = fiscal(till, out["id"])
    assert status == 409, problem
    assert problem["code"] == code and problem["documentState"] == "not_opened"
    assert problem["cashierMessage"] and problem["deviceError"]
    assert emulator.documents == [] and not emulator.state_json()["receipt_open"]
    # the loyalty side is untouched: the cheque stays confirmed
    assert loads(till.api.get(f"/v1/cheques/{out['id']}").content)["state"] == "confirmed"
    emulator.clear_faults()
    if fault.kind == "shift_over_24h":  # the cashier closes the expired shift (Z report)
        emulator.reset()
    status, answer = fiscal(till, out["id"])
    assert status == 200, answer
    assert len(emulator.documents) == 1 and receipts_on_paper(emulator) == 1


def test_a_device_error_mid_receipt_cancels_it(till: Till, emulator: RegistrarEmulator) -> None:
    out = sell(till.api, ACTIVE)
    emulator.inject(Fault.error(SALE_V2, 0x33))  # the first line, in the open receipt
    status, problem = fiscal(till, out["id"])
    assert status == 409 and problem["code"] == "registrar_error", problem
    assert problem["documentState"] == "cancelled" and problem["deviceCode"] == 0x33
    assert "cancelled" in problem["cashierMessage"]
    assert emulator.documents == [] and not emulator.state_json()["receipt_open"]
    emulator.clear_faults()
    assert fiscal(till, out["id"])[0] == 200
    assert len(emulator.documents) == 1


def test_error_on_the_close_cancels_and_the_retry_prints_once(
    till: Till, emulator: RegistrarEmulator
) -> None:
    out = sell(till.api, ACTIVE)
    emulator.inject(Fault.error(CLOSE_V2, 0x45))
    status, problem = fiscal(till, out["id"])
    assert status == 409 and problem["documentState"] == "cancelled", problem
    assert emulator.documents == [] and not emulator.state_json()["receipt_open"]
    assert fiscal(till, out["id"])[0] == 200
    assert len(emulator.documents) == 1


def test_a_silent_registrar_is_unreachable_not_opened(
    till: Till, emulator: RegistrarEmulator
) -> None:
    out = sell(till.api, ACTIVE)
    emulator.inject(Fault.silence(1000))
    status, problem = fiscal(till, out["id"])
    assert status == 503 and problem["code"] == "registrar_unreachable", problem
    assert problem["documentState"] == "not_opened"
    emulator.clear_faults()
    assert fiscal(till, out["id"])[0] == 200
    assert len(emulator.documents) == 1 and receipts_on_paper(emulator) == 1


def test_offline_loyalty_prints_the_offline_notice_inside(
    till: Till, emulator: RegistrarEmulator, sandbox_server: SandboxServer
) -> None:
    sandbox_server.stop()
    out = sell(till.api, ACTIVE)
    assert out["queued"]
    status, answer = fiscal(till, out["id"])
    assert status == 200, answer
    text = " ".join(" ".join(answer["lines"]).split())
    assert "Нет связи с процессингом" in text and LOYALTY_TITLE in text
    assert emulator.documents[0]["messages"] == answer["lines"]


def _driver(emulator: RegistrarEmulator, port: int) -> ShtrihFiscalPrinter:
    printer = ShtrihFiscalPrinter("kkt", TcpTransport("127.0.0.1", port))
    printer.open()
    return printer


def _one_receipt(printer: ShtrihFiscalPrinter, close: bool) -> None:
    printer.begin_fiscal_receipt()
    printer.print_rec_item(FiscalItem("Milk", Decimal(1), Decimal("10"), Decimal("10")))
    printer.print_rec_message(LOYALTY_TITLE)
    if close:
        printer.end_fiscal_receipt([FiscalPayment(PaymentKind.CASH, Decimal(10))], TaxSystem.OSN)


def test_retry_after_a_crash_mid_print_cancels_then_prints_once(
    tmp_path: Path, sandbox_server: SandboxServer, emulator: RegistrarEmulator
) -> None:
    """What a process killed mid-print leaves: a `printing` record and a receipt open on
    the device.  The retry cancels that receipt before printing the only document."""
    port = emulator.start_tcp()
    till = Till(tmp_path, sandbox_server, port)
    try:
        out = sell(till.api, ACTIVE)
        till.stop()
        store = FiscalStore(till.config.cheques_path())
        store.put(FiscalRecord(out["id"], Stage.PRINTING, "kkt", attempts=1))
        store.close()
        half = _driver(emulator, port)
        _one_receipt(half, close=False)
        half.close()
        assert emulator.state_json()["receipt_open"]
        till.restart()
        status, answer = fiscal(till, out["id"])
        assert status == 200, answer
        assert len(emulator.documents) == 1
        assert emulator.documents[0]["number"] == answer["documentNumber"]
        assert "ЧЕК АННУЛИРОВАН" in emulator.paper_text()  # the half receipt was cancelled
    finally:
        till.stop()


def test_retry_after_a_crash_after_the_close_adopts_the_document(
    tmp_path: Path, sandbox_server: SandboxServer, emulator: RegistrarEmulator
) -> None:
    """The close went through, the process died before it wrote the answer down: the
    retry finds the document by the device's last number and prints nothing."""
    port = emulator.start_tcp()
    till = Till(tmp_path, sandbox_server, port)
    try:
        first = sell(till.api, ACTIVE)
        assert fiscal(till, first["id"])[0] == 200  # a document before: the baseline
        out = sell(till.api, ACTIVE)
        till.stop()
        printer = _driver(emulator, port)
        before = printer.last_document()
        assert before is not None
        status, answer = _crashed_after_close(till, printer, out["id"], before.document_number)
        assert status == 200, answer
        assert answer["documentNumber"] == emulator.documents[-1]["number"]
        assert answer["fiscalSign"] == emulator.documents[-1]["sign"]
        assert len(emulator.documents) == 2  # nothing printed again
    finally:
        till.stop()


def test_a_crash_after_the_first_close_of_a_fresh_fn_is_found_too(
    tmp_path: Path, sandbox_server: SandboxServer, emulator: RegistrarEmulator
) -> None:
    """No receipt on the device before ours: the watermark is its registration report,
    and the receipt after it (past the shift's opening report) is adopted."""
    port = emulator.start_tcp()
    till = Till(tmp_path, sandbox_server, port)
    try:
        out = sell(till.api, ACTIVE)
        till.stop()
        printer = _driver(emulator, port)
        assert printer.last_document() is None  # no receipt to take a number from
        mark = printer.document_watermark()
        status, answer = _crashed_after_close(till, printer, out["id"], mark)
        assert status == 200, answer
        [document] = emulator.documents
        assert (answer["documentNumber"], answer["fiscalSign"]) == (
            document["number"],
            document["sign"],
        )
    finally:
        till.stop()


def _crashed_after_close(
    till: Till, printer: ShtrihFiscalPrinter, cheque_id: str, mark: int | None
) -> tuple[int, Any]:
    """What a process that died right after sending the close leaves: the record at CLOSING
    with the watermark it noted, and the receipt on the device.  Then the retry."""
    store = FiscalStore(till.config.cheques_path())
    store.put(FiscalRecord(cheque_id, Stage.CLOSING, "kkt", attempts=1, last_before=mark))
    store.close()
    _one_receipt(printer, close=True)  # the close the crashed process had sent
    printer.close()
    till.restart()
    return fiscal(till, cheque_id)


def test_no_registrar_configured(tmp_path: Path, sandbox_server: SandboxServer) -> None:
    with Service(service_config(tmp_path, sandbox_server.url), TOKEN) as svc, client(svc) as api:
        out = sell(api, ACTIVE)
        r = api.post(f"/v1/cheques/{out['id']}/fiscal", json=CASH_400)
        assert r.status_code == 409 and loads(r.content)["code"] == "no_registrar"
        assert 'kind = "registrar"' in loads(r.content)["detail"]


def test_concurrent_prints_take_turns_and_never_double(
    till: Till, emulator: RegistrarEmulator
) -> None:
    """Two cheques at once would interleave in one open receipt without the registrar's
    lock; the same cheque twice at once must still make one document."""
    a, b = sell(till.api, ACTIVE), sell(till.api, ACTIVE)
    ids = [a["id"], b["id"], a["id"], b["id"]]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda cid: fiscal(till, cid), ids))
    assert [status for status, _ in answers] == [200] * 4, answers
    numbers: dict[str, set[int]] = {cid: set() for cid in ids}
    for cid, (_, answer) in zip(ids, answers, strict=True):
        numbers[cid].add(answer["documentNumber"])
    assert all(len(n) == 1 for n in numbers.values()) and numbers[a["id"]] != numbers[b["id"]]
    assert len(emulator.documents) == 2 and receipts_on_paper(emulator) == 2
    assert sum(answer["replayed"] for _, answer in answers) == 2


def test_the_endpoint_is_in_the_openapi_document(till: Till) -> None:
    doc = loads(till.api.get("/openapi.json").content)
    op = doc["paths"]["/v1/cheques/{cheque_id}/fiscal"]["post"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/FiscalIn")
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/FiscalOut"
    )
    problem = doc["components"]["schemas"]["FiscalProblem"]["properties"]
    assert {"documentState", "deviceError", "code", "cashierMessage"} <= problem.keys()
    answer = doc["components"]["schemas"]["FiscalOut"]["properties"]
    assert {"documentNumber", "fiscalSign", "state", "lines"} <= answer.keys()


def test_over_a_serial_port_at_the_width_the_device_reports(
    tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    """A 57 mm registrar on a pty: the loyalty lines follow its narrower font."""
    with RegistrarEmulator(line_width=32) as emulator:
        device = {
            "name": "kkt",
            "kind": "registrar",
            "connection": "serial",
            "port": emulator.start_pty(),
            "tax_system": "usn_income",
            "default_tax": "vat10",
        }
        cfg = service_config(tmp_path, sandbox_server.url, devices=[device])
        with Service(cfg, TOKEN) as svc, client(svc) as api:
            out = sell(api, ACTIVE)
            r = api.post(f"/v1/cheques/{out['id']}/fiscal", json=CASH_400)
            assert r.status_code == 200, r.text
            answer = loads(r.content)
        [doc] = emulator.documents
    assert max(len(line) for line in answer["lines"]) == 32
    assert doc["messages"] == answer["lines"] and doc["number"] == answer["documentNumber"]
    assert doc["tax_system"] != 1  # usn_income, not the default osn
    assert {item["tax"] for item in doc["items"]} != {8}  # vat10, not "none"
