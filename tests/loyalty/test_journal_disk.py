"""A full disk under the journal: a clear 503, nothing half-done at processing, and the
register resumes by itself once space returns.

The journal lives on a real 8 MB tmpfs filled by a filler file (CI runs as root; elsewhere
the tests skip, or fail where stand-ins are required).
"""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.loyalty.client import LoyaltyClient
from bridge.loyalty.journal import Journal, JournalUnavailable
from bridge.loyalty.offline import OfflineClient
from bridge.loyalty.protocol import Identifier, Operation, loads
from bridge.loyalty.purchase import Purchase
from bridge.server import Service
from sandbox.server import SandboxServer
from tests.conftest import admin
from tests.loyalty.offline_helpers import shift
from tests.service.conftest import TOKEN, service_config
from tests.stand_ins import missing

CARDS = ("2775000000012", "2775000000029", "2775000000050", "2775000000067")
ACTIVE = "2775000000012"


# ---------------------------------------------------------------------- a small real disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0:
        missing("a full disk is tested on an 8 MB tmpfs, which needs root to mount")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        missing(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Take every free byte of the disk with a filler file."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 8, 1):
            chunk = b"\0" * size
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    finally:
        os.close(fd)
    assert os.statvfs(disk).f_bavail == 0
    return filler


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def held(server: SandboxServer) -> dict[str, tuple[Any, Any]]:
    """Per card: bonuses held for a redemption, accrual held for an unconfirmed purchase."""
    out = {}
    for card in CARDS:
        book = admin(server, f"ledger/{card}")
        out[card] = (book["held"], book["pendingAccrual"])
    return out


NOTHING_HELD = {card: (Decimal("0.00"), Decimal("0.00")) for card in CARDS}


def ledger(server: SandboxServer) -> dict[str, tuple[Any, ...]]:
    out = {}
    for card in CARDS:
        book = admin(server, f"ledger/{card}")
        out[card] = (
            book["balance"],
            book["accrued"],
            book["redeemed"],
            book["held"],
            book["pendingAccrual"],
        )
    return out


# ---------------------------------------------------------------------- the journal itself


def test_a_full_disk_is_reported_as_such_and_passes_by_itself(
    small_disk: Path, client: LoyaltyClient
) -> None:
    journal = Journal(small_disk / "journal.sqlite")
    requests = [client.prepare(Operation.CONFIRM, purchase_id=f"p{i}") for i in range(3)]
    journal.append(requests[0])
    filler = fill(small_disk)
    with pytest.raises(JournalUnavailable) as info:
        for request in requests[1:] * 200:  # a few appends may still fit in the WAL
            journal.append(client.prepare(Operation.CONFIRM, purchase_id=request.purchase_id))
    text = str(info.value)
    assert "disk full" in text and str(journal.path) in text
    assert "rollback" not in text  # the old code hid the cause behind this
    assert journal.failure is not None and "disk full" in journal.failure
    assert journal.health()["state"] == "unavailable"
    assert not journal.probe(force=True)
    # a repeat of a step already written needs no space
    assert journal.append(requests[0]).operation_id == requests[0].operation_id
    filler.unlink()
    entry = journal.append(requests[2])  # no restart: the next append just works
    assert entry.operation_id == requests[2].operation_id
    assert journal.failure is None and journal.health()["state"] == "ok"
    journal.close()


# ---------------------------------------------------------------------- the gap


@pytest.fixture
def disk_offline(
    small_disk: Path, make_client: Callable[..., LoyaltyClient]
) -> Iterator[OfflineClient]:
    oc = OfflineClient(
        make_client(), Journal(small_disk / "journal.sqlite"), probe_min=0.01, probe_max=0.05
    )
    yield oc
    oc.stop()
    oc.journal.close()


def test_a_confirm_that_cannot_be_journaled_undoes_what_its_purchase_started(
    small_disk: Path, disk_offline: OfflineClient, sandbox_server: SandboxServer
) -> None:
    """Redemption held and discount sent, then the confirm cannot be journaled: the
    purchase is cancelled at processing, never left discounted with bonuses held."""
    ((cheque, _, _, _),) = shift(21, 1)
    p = Purchase(disk_offline, cheque, Identifier(value=ACTIVE))
    p.calculate()
    p.pay(Decimal("10"))
    p.discount()
    assert held(sandbox_server)[ACTIVE] != (Decimal("0.00"), Decimal("0.00"))
    filler = fill(small_disk)
    with pytest.raises(JournalUnavailable) as info:
        p.confirm()
    assert info.value.undone and "cancelled at processing" in info.value.undone
    assert held(sandbox_server) == NOTHING_HELD
    assert admin(sandbox_server, f"purchases/{p.purchase_id}")["status"] == "canceled"
    filler.unlink()
    again = Purchase(disk_offline, cheque, Identifier(value=ACTIVE))  # the cashier's retry
    again.calculate()
    again.pay(Decimal("10"))
    again.discount()
    assert again.confirm().ok
    assert admin(sandbox_server, "status")["duplicates"] == 0
    assert held(sandbox_server) == NOTHING_HELD


def test_a_cancel_that_cannot_be_journaled_is_sent_live(
    small_disk: Path, disk_offline: OfflineClient, sandbox_server: SandboxServer
) -> None:
    ((cheque, _, _, _),) = shift(22, 1)
    p = Purchase(disk_offline, cheque, Identifier(value=ACTIVE))
    p.calculate()
    p.pay(Decimal("10"))
    fill(small_disk)
    assert p.cancel().ok  # the cashier's cancel still releases the bonuses
    assert held(sandbox_server) == NOTHING_HELD


# ---------------------------------------------------------------------- the service


def plan(n: int) -> list[tuple[str | None, list[dict[str, Any]], str | None]]:
    """A shift: (card, lines, bonuses to pay) per sale, the same for every run."""
    out = []
    for i, (cheque, ident, _, _) in enumerate(shift(23, n)):
        card = ident.value if ident else None
        pay = "10" if card in ("2775000000012", "2775000000050") and i % 3 == 0 else None
        lines = [
            {
                "goodsId": ln.goods_id,
                "name": ln.name,
                "price": str(ln.price),
                "quantity": str(ln.quantity),
                "amount": str(ln.amount),
            }
            for ln in cheque.lines
        ]
        out.append((card, lines, pay))
    return out


class Till:
    """The POS side: every call timed, every answer kept."""

    def __init__(self, api: httpx.Client) -> None:
        self.api = api
        self.waits: list[float] = []

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        start = time.monotonic()
        response = self.api.request(method, path, **kw)
        self.waits.append(time.monotonic() - start)
        assert response.status_code != 500, response.text
        return response

    def ring_up(self, card: str | None, lines: list[dict[str, Any]]) -> httpx.Response:
        return self.call("POST", "/v1/cheques", json={"card": card, "lines": lines})

    def finish(self, cid: str, pay: str | None) -> httpx.Response:
        """calculate, pay, confirm: the first answer that is not a success, or confirm's."""
        r = self.call("POST", f"/v1/cheques/{cid}/calculate")
        if r.status_code != 200:
            return r
        if pay:
            r = self.call("POST", f"/v1/cheques/{cid}/payment", json={"amount": pay})
            if r.status_code != 200:
                return r
        return self.call("POST", f"/v1/cheques/{cid}/confirm")

    def sell(self, card: str | None, lines: list[dict[str, Any]], pay: str | None) -> str:
        r = self.ring_up(card, lines)
        assert r.status_code == 201, r.text
        cid = str(loads(r.content)["id"])
        r = self.finish(cid, pay)
        assert r.status_code == 200, r.text
        return cid


def start_service(where: Path, server: SandboxServer) -> Service:
    return Service(service_config(where, server.url), TOKEN).start()


def test_full_disk_shift_through_the_service(
    small_disk: Path, tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    sales = plan(24)
    before_fill, during = 8, 8

    # the same shift sold online, on its own processing: the ledger to compare with
    with SandboxServer(tmp_path / "reference.db") as reference:
        (tmp_path / "ref").mkdir()
        svc = start_service(tmp_path / "ref", reference)
        try:
            with httpx.Client(
                base_url=svc.url, headers={"X-Posbridge-Token": TOKEN}, timeout=30
            ) as api:
                till = Till(api)
                for card, lines, pay in sales:
                    till.sell(card, lines, pay)
        finally:
            svc.stop()
        online = ledger(reference)

    svc = start_service(small_disk, sandbox_server)
    try:
        with httpx.Client(
            base_url=svc.url, headers={"X-Posbridge-Token": TOKEN}, timeout=30
        ) as api:
            till = Till(api)
            for card, lines, pay in sales[:before_fill]:
                till.sell(card, lines, pay)
            assert loads(api.get("/v1/status").content)["health"] == "ok"

            # half of the next sales are already rung up, calculated and paid by bonuses
            # when the disk fills: a redemption is held at processing for some of them
            open_before: dict[int, str] = {}
            for i in range(before_fill, before_fill + during // 2):
                card, lines, pay = sales[i]
                r = till.ring_up(card, lines)
                cid = str(loads(r.content)["id"])
                assert till.call("POST", f"/v1/cheques/{cid}/calculate").status_code == 200
                if pay:
                    r = till.call("POST", f"/v1/cheques/{cid}/payment", json={"amount": pay})
                    assert r.status_code == 200, r.text
                open_before[i] = cid
            assert held(sandbox_server) != NOTHING_HELD

            filler = fill(small_disk)
            rss_before = peak_rss_mib()
            till.waits.clear()
            refused: list[tuple[int, str | None]] = []
            for i in range(before_fill, before_fill + during):
                card, lines, pay = sales[i]
                cid = open_before.get(i)
                if cid is None:
                    r = till.ring_up(card, lines)
                    cid = str(loads(r.content)["id"]) if r.status_code == 201 else None
                    if cid is not None:
                        r = till.finish(cid, pay)
                else:
                    r = till.call("POST", f"/v1/cheques/{cid}/confirm")
                assert r.status_code == 503, r.text
                problem = loads(r.content)
                assert problem["code"] == "journal_unavailable"
                assert "disk full" in problem["detail"]
                assert problem["cashierMessage"].startswith("Loyalty journal unavailable")
                if i in open_before:  # the purchase was undone: the cheque starts anew
                    assert "cancelled at processing" in (problem["undone"] or "")
                    view = loads(api.get(f"/v1/cheques/{cid}").content)
                    assert view["state"] == "open" and view["redeemed"] == 0
                refused.append((i, cid))
            waits_full = list(till.waits)

            status = loads(api.get("/v1/status").content)
            assert status["health"] == "degraded"
            assert status["journal"]["state"] == "unavailable" and status["journal"]["degraded"]
            metrics = api.get("/metrics").text
            assert "posbridge_journal_degraded 1.0" in metrics
            assert held(sandbox_server) == NOTHING_HELD  # nothing half-done at processing

            filler.unlink()
            # the cashier retries the refused sales, in order: the first append recovers
            for i, cid in refused:
                card, lines, pay = sales[i]
                if cid is None:
                    till.sell(card, lines, pay)
                    continue
                r = till.finish(cid, pay)
                assert r.status_code == 200, r.text
            status = loads(api.get("/v1/status").content)
            assert status["health"] == "ok" and status["journal"]["state"] == "ok"
            assert "posbridge_journal_degraded 0.0" in api.get("/metrics").text
            for card, lines, pay in sales[before_fill + during :]:
                till.sell(card, lines, pay)
    finally:
        svc.stop()

    assert held(sandbox_server) == NOTHING_HELD
    assert ledger(sandbox_server) == online  # 0 lost, 0 doubled
    assert admin(sandbox_server, "status")["duplicates"] == 0
    print(
        f"\nFAULT disk-full: {len(refused)} sales refused with 503; cashier wait max"
        f" {max(waits_full) * 1000:.0f} ms, median"
        f" {sorted(waits_full)[len(waits_full) // 2] * 1000:.0f} ms; peak RSS"
        f" {rss_before:.0f} -> {peak_rss_mib():.0f} MiB (test process); ledger equal"
    )
