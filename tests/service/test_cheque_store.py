"""Open cheques are never forgotten while they hold bonuses (issue 11, section 1): they
survive other sales, graceful and kill -9 restarts, and are cancelled when abandoned."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from bridge.cli import main
from bridge.config import ChequeSettings
from bridge.loyalty.client import LoyaltyClient
from bridge.loyalty.protocol import Cheque, ChequeLine, Identifier, Operation, local_now
from bridge.loyalty.purchase import Purchase
from bridge.service.cheque import Line, RegisterCheque
from bridge.service.cheque_store import ChequeStore, record, restore
from sandbox.server import SandboxServer
from tests.conftest import LOGIN, PASSWORD
from tests.net import free_port
from tests.service.cheque_helpers import (
    ACTIVE,
    MILK,
    SOAP,
    body,
    held,
    open_and_pay,
    running,
    sell,
)
from tests.service.conftest import TOKEN
from tests.service.sse import SseReader

ROOT = Path(__file__).resolve().parents[2]


def test_a_cheque_holding_bonuses_outlives_200_other_sales(
    tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    with running(tmp_path, sandbox_server) as (_, api):
        cid = open_and_pay(api)
        assert held(sandbox_server) == Decimal("50.00")
        for _ in range(200):
            sell(api, None, [SOAP])
        r = api.get(f"/v1/cheques/{cid}")
        assert r.status_code == 200 and body(r)["state"] == "calculated"
        assert body(r)["redeemed"] == Decimal("50.00")
        r = api.post(f"/v1/cheques/{cid}/cancel")
        assert r.status_code == 200 and body(r)["state"] == "cancelled"
        assert held(sandbox_server) == Decimal("0.00")


def test_a_graceful_restart_keeps_open_cheques_and_their_purchase(
    tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    with running(tmp_path, sandbox_server) as (_, api):
        held_id = open_and_pay(api)
        plain = body(api.post("/v1/cheques", json={"card": ACTIVE, "lines": [MILK]}))["id"]
        api.post(f"/v1/cheques/{plain}/lines", json={"lines": [SOAP]})
        before = body(api.get(f"/v1/cheques/{held_id}"))
    with running(tmp_path, sandbox_server) as (_, api):
        r = api.get(f"/v1/cheques/{held_id}")
        assert r.status_code == 200, r.text
        assert body(r) == before  # state, lines, card, payments, purchase id
        assert body(api.get(f"/v1/cheques/{plain}"))["total"] == Decimal("329.80")
        r = api.post(f"/v1/cheques/{held_id}/cancel")
        assert r.status_code == 200, r.text
        assert held(sandbox_server) == Decimal("0.00")
        done = body(api.post(f"/v1/cheques/{plain}/confirm"))
        assert done["state"] == "confirmed" and done["accrued"] > 0
    path = tmp_path / "cheques.sqlite"  # beside the journal, holding card numbers: 0600
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        assert not extra.exists() or stat.S_IMODE(extra.stat().st_mode) == 0o600


def _service_process(tmp_path: Path, sandbox: SandboxServer, port: int) -> subprocess.Popen[str]:
    cfg = tmp_path / "posbridge.toml"
    cfg.write_text(
        f'[processing]\nurl = "{sandbox.url}"\nlogin = "{LOGIN}"\npassword = "{PASSWORD}"\n'
        f'lock_file = "{tmp_path / "lock"}"\n[journal]\npath = "{tmp_path / "j.sqlite"}"\n'
        f'[api]\nport = {port}\ntoken = "{TOKEN}"\n'
    )
    cfg.chmod(0o600)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge", "--config", str(cfg), "--log-level", "INFO", "run"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    ready = threading.Event()

    def drain() -> None:  # read stderr to its end, so the child never blocks on it
        assert proc.stderr is not None
        for line in proc.stderr:
            if "Uvicorn running" in line or "Application startup" in line or "running on" in line:
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    assert ready.wait(30) and proc.poll() is None, "the service did not start"
    return proc


def test_a_kill_9_keeps_open_cheques(tmp_path: Path, sandbox_server: SandboxServer) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    headers = {"X-Posbridge-Token": TOKEN}
    proc = _service_process(tmp_path, sandbox_server, port)
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as api:
            cid = open_and_pay(api)
        assert held(sandbox_server) == Decimal("50.00")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(20)
    proc = _service_process(tmp_path, sandbox_server, port)
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as api:
            r = api.get(f"/v1/cheques/{cid}")
            assert r.status_code == 200, r.text
            assert body(r)["state"] == "calculated" and body(r)["redeemed"] == Decimal("50.00")
            r = api.post(f"/v1/cheques/{cid}/cancel")
            assert r.status_code == 200 and body(r)["state"] == "cancelled", r.text
        assert held(sandbox_server) == Decimal("0.00")
    finally:
        proc.terminate()
        proc.wait(20)


def test_past_the_cap_opening_a_cheque_is_429(
    tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    with running(tmp_path, sandbox_server, max_open=3) as (_, api):
        ids = [body(api.post("/v1/cheques", json={"lines": [MILK]}))["id"] for _ in range(3)]
        r = api.post("/v1/cheques", json={"lines": [MILK]})
        assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
        assert (
            body(r)["code"] == "too_many_open_cheques" and body(r)["title"] == "Too many requests"
        )
        api.post(f"/v1/cheques/{ids[0]}/cancel")  # a closed cheque frees its place
        assert api.post("/v1/cheques", json={"lines": [MILK]}).status_code == 201


def test_status_shows_open_cheques_against_the_cap(
    tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    with running(tmp_path, sandbox_server, max_open=5) as (_, api):
        open_and_pay(api, pay="10")
        api.post("/v1/cheques", json={"lines": [MILK]})
        cheques = body(api.get("/v1/status"))["cheques"]
        assert cheques["open"] == 2 and cheques["maxOpen"] == 5
        assert cheques["holdingBonuses"] == 1
        assert cheques["oldestUntouchedSeconds"] is not None


def test_expiry_gives_held_bonuses_back_even_when_processing_is_offline(
    tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    with running(tmp_path, sandbox_server, expire_hours=12) as (svc, api):
        book = svc.register.book
        cid = open_and_pay(api)
        fresh = body(api.post("/v1/cheques", json={"lines": [MILK]}))["id"]
        book.get(fresh).touched_at = time.time() + 11 * 3600  # worked on an hour before
        sandbox_server.stop()
        expired = book.expire(now=time.time() + 12 * 3600 + 1)
        assert [c.id for c in expired] == [cid]
        got = body(api.get(f"/v1/cheques/{cid}"))
        assert got["state"] == "cancelled" and got["queued"]
        assert body(api.get(f"/v1/cheques/{fresh}"))["state"] == "open"
        sandbox_server.start()
        report = svc.register.offline.drain()
        assert report.stopped is None and not report.rejected
        assert held(sandbox_server) == Decimal("0.00")


def test_abandoned_cheques_are_cancelled_on_time_by_the_service(
    tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    """The service's own sweeper (no call from us): a tiny expiry, waited for as an event."""
    with running(tmp_path, sandbox_server, expire_hours=0.001) as (svc, api):
        cid = open_and_pay(api)
        cancelled = threading.Event()
        book = svc.register.book
        original = book.cancel

        def watched(cheque: RegisterCheque, expired: bool = False) -> RegisterCheque:
            out = original(cheque, expired)
            if cheque.id == cid:
                cancelled.set()
            return out

        book.cancel = watched  # type: ignore[method-assign]
        assert cancelled.wait(30)
        assert body(api.get(f"/v1/cheques/{cid}"))["state"] == "cancelled"
        assert held(sandbox_server) == Decimal("0.00")


def test_shift_close_cancels_every_open_cheque(
    tmp_path: Path, sandbox_server: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with running(tmp_path, sandbox_server) as (svc, api):
        held_id = open_and_pay(api)
        plain = body(api.post("/v1/cheques", json={"lines": [MILK]}))["id"]
        done = sell(api, ACTIVE)["id"]
        cfg = tmp_path / "posbridge.toml"
        cfg.write_text(
            f'[processing]\nurl = "{sandbox_server.url}"\nlogin = "{LOGIN}"\n'
            f'password = "{PASSWORD}"\nlock_file = "{tmp_path / "processing.lock"}"\n'
            f'[journal]\npath = "{tmp_path / "journal.sqlite"}"\n'
            f'[api]\nport = {svc.config.api.port}\ntoken = "{TOKEN}"\n'
        )
        cfg.chmod(0o600)
        events = SseReader(f"{svc.url}/v1/events", TOKEN)
        try:
            assert main(["--config", str(cfg), "shift", "close"]) == 0
            told = {events.next("cheque_expired")["chequeId"] for _ in range(2)}
        finally:
            events.close()
        assert told == {held_id, plain}
        out = capsys.readouterr().out
        assert "2 open cheque(s) cancelled" in out
        for cid in (held_id, plain):
            assert body(api.get(f"/v1/cheques/{cid}"))["state"] == "cancelled"
        assert body(api.get(f"/v1/cheques/{done}"))["state"] == "confirmed"
        assert held(sandbox_server) == Decimal("0.00")
        assert main(["--config", str(cfg), "shift", "close", "--json"]) == 0
        assert '"cancelled":0' in capsys.readouterr().out


def test_shift_close_says_so_when_the_service_is_not_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "posbridge.toml"
    cfg.write_text(
        '[processing]\nurl = "http://127.0.0.1:9/publicapi"\nlogin = "x"\npassword = "y"\n'
        f'[api]\nport = {free_port()}\ntoken = "{TOKEN}"\n'
    )
    cfg.chmod(0o600)
    assert main(["--config", str(cfg), "shift", "close"]) == 3
    err = capsys.readouterr().err
    assert "not reachable" in err and "Traceback" not in err and TOKEN not in err


def test_repeated_appends_cannot_pass_the_line_cap(
    tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    line = {"goodsId": "9", "name": "Nail", "price": "1.00"}
    with running(tmp_path, sandbox_server) as (_, api):
        cid = body(api.post("/v1/cheques", json={"lines": [line] * 300}))["id"]
        r = api.post(f"/v1/cheques/{cid}/lines", json={"lines": [line] * 300})
        assert r.status_code == 422 and body(r)["code"] == "too_many_lines"
        assert len(body(api.get(f"/v1/cheques/{cid}"))["lines"]) == 300
        r = api.post(f"/v1/cheques/{cid}/lines", json={"lines": [line] * 200})
        assert r.status_code == 200 and len(body(r)["lines"]) == 500
        r = api.post(f"/v1/cheques/{cid}/lines", json={"lines": [line]})
        assert r.status_code == 422 and body(r)["code"] == "too_many_lines"
        api.post(f"/v1/cheques/{cid}/calculate")
        assert body(api.post(f"/v1/cheques/{cid}/confirm"))["state"] == "confirmed"
        r = api.post(
            f"/v1/cheques/{cid}/refund", json={"lines": [{"position": 500, "quantity": 1}]}
        )
        assert r.status_code == 200 and body(r)["amount"] == Decimal("1.00"), r.text


def test_the_record_keeps_a_purchase_s_step_requests_byte_for_byte(
    tmp_path: Path, client: LoyaltyClient
) -> None:
    """A confirm after a restart resends the very request stored before it (same ids)."""
    store = ChequeStore(tmp_path / "cheques.sqlite")
    cheque = RegisterCheque(
        id="c1",
        number="7",
        opened_at=local_now(),
        card=ACTIVE,
        lines=[Line("1001", "Milk", Decimal("89.90"), Decimal(2), Decimal("179.80"))],
    )
    purchase = Purchase(client, cheque.wire(), Identifier(value=ACTIVE))
    discount = client.prepare(
        Operation.DISCOUNT,
        purchase_id=purchase.purchase_id,
        identifier=purchase.identifier,
        cheque=cheque.wire(),
    )
    purchase._pending[f"discount:{purchase._digest()}"] = discount
    purchase.payments.append(("op-1", Decimal("50.00")))
    cheque.purchase, cheque.redeemed, cheque.state = purchase, Decimal("50.00"), "calculated"
    store.save(cheque)
    (data,) = store.open_records()
    back = restore(data, lambda _: client)
    assert back.purchase is not None and record(back) == record(cheque)
    again = back.purchase.step_request("discount")
    assert again is not None and again.operation_id == discount.operation_id
    assert again.payload() == discount.payload() and again.path == discount.path
    assert back.purchase._digest() == purchase._digest()  # the same key finds it again
    assert back.purchase.redeemed == Decimal("50.00")
    assert isinstance(back.wire(), Cheque) and back.wire().lines[0] == ChequeLine(
        position=1,
        goods_id="1001",
        name="Milk",
        price=Decimal("89.90"),
        quantity=Decimal(2),
        amount=Decimal("179.80"),
    )
    store.close()


def test_cheque_settings_defaults() -> None:
    s = ChequeSettings()
    assert (s.max_open, s.expire_hours, s.path) == (200, 12.0, None)


def test_a_full_cheque_file_refuses_the_cheque_with_a_clear_problem(
    tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    line = {"goodsId": "9", "name": "Nail " * 40, "price": "1.00"}
    with running(tmp_path, sandbox_server) as (svc, api):
        store = svc.register.book.store
        with store._lock:  # SQLite's own "database or disk is full", on demand
            pages = store._db.execute("PRAGMA page_count").fetchone()[0]
            store._db.execute(f"PRAGMA max_page_count={pages}")
        r = api.post("/v1/cheques", json={"card": ACTIVE, "lines": [line] * 300})
        assert r.status_code == 503, r.text
        assert body(r)["code"] == "journal_unavailable" and "disk full" in body(r)["detail"]
        assert svc.register.book.open_count() == 0  # nothing kept that is not on disk
        with store._lock:
            store._db.execute("PRAGMA max_page_count=1073741823")
        assert api.post("/v1/cheques", json={"lines": [line] * 300}).status_code == 201


def test_a_cheque_path_that_cannot_be_used_is_one_line_at_start(
    tmp_path: Path, sandbox_server: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "posbridge.toml"
    cfg.write_text(
        f'[processing]\nurl = "{sandbox_server.url}"\nlogin = "{LOGIN}"\n'
        f'password = "{PASSWORD}"\nlock_file = "{tmp_path / "lock"}"\n'
        f'[journal]\npath = "{tmp_path / "journal.sqlite"}"\n'
        f'[cheques]\npath = "{tmp_path}"\n'  # a directory
        f'[api]\nport = {free_port()}\ntoken = "{TOKEN}"\n'
    )
    cfg.chmod(0o600)
    assert main(["--config", str(cfg), "run"]) == 2
    err = capsys.readouterr().err
    # caught with the config, as `config check` catches it
    assert f"cheques.path: {tmp_path} is a directory" in err and "Traceback" not in err


def test_closed_cheques_leave_memory_but_not_the_file(
    tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    with running(tmp_path, sandbox_server) as (svc, api):
        book = svc.register.book
        book._keep = 2  # the most recent closed cheques kept in memory
        first = sell(api, ACTIVE, [MILK])
        for _ in range(3):
            sell(api, None, [SOAP])
        assert first["id"] not in book._closed
        again = api.get(f"/v1/cheques/{first['id']}")  # read back from the file
        assert again.status_code == 200 and body(again) == first
        r = api.post(f"/v1/cheques/{first['id']}/refund")
        assert r.status_code == 200 and body(r)["amount"] == Decimal("179.80"), r.text
        assert len(book._closed) == 2
        book.store.prune(14 * 86400, now=time.time() + 15 * 86400)  # past keep_closed_days
        book._closed.clear()
        assert api.get(f"/v1/cheques/{first['id']}").status_code == 404
