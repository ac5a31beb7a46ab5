"""Devices to POS: pty scanner and card reader -> service -> SSE events and the open cheque."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from bridge.loyalty.protocol import loads
from bridge.server import Service
from tests.drivers.pty_helpers import Pty
from tests.service.conftest import TOKEN
from tests.service.sse import SseReader


@pytest.fixture
def ptys() -> Iterator[tuple[Pty, Pty]]:
    with Pty() as scanner, Pty() as msr:
        yield scanner, msr


@pytest.fixture
def wired(
    make_service: Callable[..., Service], ptys: tuple[Pty, Pty]
) -> Iterator[tuple[Service, SseReader, Pty, Pty]]:
    scanner, msr = ptys
    svc = make_service(
        devices=[
            {"name": "scanner", "kind": "scanner", "connection": "serial", "port": scanner.path},
            {"name": "msr", "kind": "card_reader", "connection": "serial", "port": msr.path},
        ]
    )
    sse = SseReader(f"{svc.url}/v1/events", TOKEN)
    yield svc, sse, scanner, msr
    sse.close()


def wait_online(sse: SseReader, name: str, svc: Service) -> None:
    status = httpx.get(f"{svc.url}/v1/status", headers={"X-Posbridge-Token": TOKEN}).json()
    if any(d["name"] == name and d["power"] == "online" for d in status["devices"]):
        return
    while True:
        event = sse.next("device_status")
        if event["device"] == name and event["power"] == "online":
            return


def test_scans_are_classified_and_cards_attach(wired: tuple[Service, SseReader, Pty, Pty]) -> None:
    svc, sse, scanner, _msr = wired
    api = httpx.Client(base_url=svc.url, headers={"X-Posbridge-Token": TOKEN}, timeout=10)
    cheque = loads(api.post("/v1/cheques", json={}).content)
    wait_online(sse, "scanner", svc)
    scanner.send(b"]E04600000000015\r")
    event = sse.next("scan")
    assert event["kind"] == "gtin" and event["gtin"] == "04600000000015"
    assert event["symbology"] == "]E0" and event["device"] == "scanner"
    scanner.send(b"]d2010460406000600021N4N57RSCBUZTQ\x1d93abcd\r")
    event = sse.next("scan")
    assert event["kind"] == "marking_code" and "\x1d" in event["text"]
    scanner.send(b"2775000000012\r")
    event = sse.next("scan")
    assert event["kind"] == "loyalty_card" and event["text"] == "27*******0012"
    attached = sse.next("card_attached")
    assert attached["chequeId"] == cheque["id"] and attached["card"] == "27*******0012"
    view = loads(api.get(f"/v1/cheques/{cheque['id']}").content)
    assert view["card"] == "27*******0012"


def test_swipe_attaches_card_masked(wired: tuple[Service, SseReader, Pty, Pty]) -> None:
    svc, sse, _scanner, msr = wired
    api = httpx.Client(base_url=svc.url, headers={"X-Posbridge-Token": TOKEN}, timeout=10)
    cheque = loads(api.post("/v1/cheques", json={}).content)
    wait_online(sse, "msr", svc)
    msr.send(b";2775000000050=2912?\r")
    swipe = sse.next("swipe")
    assert swipe["card"] == "27*******0050" and swipe["tracks"]["2"] == "ok"
    assert "2775000000050" not in str(swipe)
    assert sse.next("card_attached")["chequeId"] == cheque["id"]


def test_unplugged_scanner_goes_offline_and_the_rest_works(
    wired: tuple[Service, SseReader, Pty, Pty],
) -> None:
    svc, sse, scanner, _msr = wired
    wait_online(sse, "scanner", svc)
    scanner.unplug()
    while True:
        event = sse.next("device_status")
        if event["device"] == "scanner" and event["power"] == "offline":
            break
    api = httpx.Client(base_url=svc.url, headers={"X-Posbridge-Token": TOKEN}, timeout=10)
    status = loads(api.get("/v1/status").content)
    assert {d["name"]: d["power"] for d in status["devices"]}["scanner"] == "offline"
    assert api.post("/v1/cheques", json={}).status_code == 201


def test_service_starts_with_a_missing_device(make_service: Callable[..., Service]) -> None:
    svc = make_service(
        devices=[
            {
                "name": "ghost",
                "kind": "scanner",
                "connection": "serial",
                "port": "/dev/nonexistent-tty",
            },
        ]
    )
    status = httpx.get(f"{svc.url}/v1/status", headers={"X-Posbridge-Token": TOKEN}).json()
    assert status["devices"][0]["name"] == "ghost"
    assert status["devices"][0]["power"] in ("offline", "unknown")
