"""Scans and swipes as real keyboards and scanners send them, through the running service.

A pty scanner and a pty card reader -> service -> SSE events and the open cheque.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from bridge.loyalty.protocol import loads
from bridge.server import Service
from tests.drivers.pty_helpers import Pty
from tests.service.conftest import TOKEN
from tests.service.sse import SseReader

Wired = tuple[Service, SseReader, httpx.Client, Pty, Pty]


@pytest.fixture
def wired(make_service: Callable[..., Service]) -> Iterator[Wired]:
    with Pty() as scanner, Pty() as msr:
        svc = make_service(
            devices=[
                {
                    "name": "scanner",
                    "kind": "scanner",
                    "connection": "serial",
                    "port": scanner.path,
                },
                {"name": "msr", "kind": "card_reader", "connection": "serial", "port": msr.path},
            ]
        )
        sse = SseReader(f"{svc.url}/v1/events", TOKEN)
        api = httpx.Client(base_url=svc.url, headers={"X-Posbridge-Token": TOKEN}, timeout=10)
        for name in ("scanner", "msr"):
            _wait_online(sse, api, name)
        yield svc, sse, api, scanner, msr
        api.close()
        sse.close()


def _wait_online(sse: SseReader, api: httpx.Client, name: str) -> None:
    status = api.get("/v1/status").json()
    if any(d["name"] == name and d["power"] == "online" for d in status["devices"]):
        return
    while True:
        event = sse.next("device_status")
        if event["device"] == name and event["power"] == "online":
            return


def test_upc_e_expands_and_a_refused_code_says_why(wired: Wired) -> None:
    _svc, sse, _api, scanner, _msr = wired
    scanner.send(b"04252614\r")
    event = sse.next("scan")
    assert event["kind"] == "gtin" and event["gtin"] == "00042100005264"
    scanner.send(b"4600000000016\r")
    event = sse.next("scan")
    assert event["kind"] == "unknown" and event["reason"] == "check digit should be 5"
    assert event["text"] == "4600000000016"  # not Luhn-valid, so not a card number: as scanned


def test_an_unknown_scan_that_is_a_card_number_is_masked(wired: Wired) -> None:
    _svc, sse, _api, scanner, _msr = wired
    scanner.send(b"4111111111111111\r")
    event = sse.next("scan")
    assert event["kind"] == "unknown" and event["text"] == "4111********1111"
    assert "4111111111111111" not in str(event)


def test_incomplete_scan_reaches_status_and_events_without_its_bytes(wired: Wired) -> None:
    _svc, sse, api, scanner, _msr = wired
    scanner.send(b";4111111111111111=2512101?")  # no CR
    event = sse.next("device_error")
    assert (
        event["device"] == "scanner" and "incomplete scan discarded: 26 bytes" in event["message"]
    )
    [dev] = [d for d in api.get("/v1/status").json()["devices"] if d["name"] == "scanner"]
    assert dev["lastError"] == event["message"]
    assert "4111" not in dev["lastError"] and "2512" not in dev["lastError"]


def test_russian_layout_swipe_attaches_the_card(wired: Wired) -> None:
    _svc, sse, api, _scanner, msr = wired
    cheque = loads(api.post("/v1/cheques", json={}).content)
    msr.send("ж7000000000017=4912,\r".encode())
    swipe = sse.next("swipe")
    assert swipe["card"] == "70*******0017" and swipe["tracks"]["2"] == "ok"
    assert sse.next("card_attached")["chequeId"] == cheque["id"]
    assert loads(api.get(f"/v1/cheques/{cheque['id']}").content)["card"] == "70*******0017"
