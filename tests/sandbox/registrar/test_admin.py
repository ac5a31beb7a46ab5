"""The admin calls over real HTTP on loopback: paper, documents, state, faults, reset."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sandbox.registrar import RegistrarEmulator
from tests.sandbox.registrar.wire import RawHost, close_v2, cmd, sale_v2, text_field


@pytest.fixture
def admin(emulator: RegistrarEmulator) -> Iterator[httpx.Client]:
    url = emulator.start_admin(port=0)
    assert url.startswith("http://127.0.0.1:")
    with httpx.Client(base_url=url, timeout=5) as client:
        yield client


def sell(host: RawHost) -> None:
    host.call(cmd(0x8D, b"\x00"))
    host.call(sale_v2("Чай", 1_000_000, 15000))
    host.call(cmd(0x17, b"\x02" + text_field("Баланс: 120")))
    host.call(close_v2(cash=15000))


def test_paper_and_documents(admin: httpx.Client, pty_host: RawHost) -> None:
    sell(pty_host)
    paper = admin.get("paper").json()
    assert "Баланс: 120" in paper["text"]
    assert {"kind": "text", "text": "Баланс: 120", "font": 1} in paper["lines"]
    docs = admin.get("documents").json()
    [receipt] = docs["documents"]
    assert receipt["items"][0]["name"] == "Чай" and receipt["total"] == "150.00"
    assert receipt["messages"] == ["Баланс: 120"]
    assert [d["kind"] for d in docs["fiscal_documents"]] == ["shift_open", "receipt"]


def test_state_names_mode_and_endpoints(
    admin: httpx.Client, emulator: RegistrarEmulator, pty_host: RawHost
) -> None:
    state = admin.get("state").json()
    assert state["mode"] == 4 and state["mode_text"] == "shift closed"
    assert state["endpoints"]["pty"][0]["path"].startswith("/dev/pts/")
    pty_host.call(cmd(0x8D, b"\x00"))
    state = admin.get("state").json()
    assert state["mode"] == 8 and state["receipt_open"] and state["shift_open"]


def test_faults_are_injected_and_cleared(admin: httpx.Client, pty_host: RawHost) -> None:
    answer = admin.post("faults", json={"kind": "error", "command": "0x8D", "code": 107})
    assert answer.status_code == 200
    assert answer.json()["faults"][0]["command"] == "0x8D"
    assert pty_host.call(cmd(0x8D, b"\x00")).error == 107
    listed = admin.post("faults", json=[{"kind": "paper_out"}, {"kind": "cover_open"}]).json()
    assert listed["faults"] == [{"kind": "paper_out"}, {"kind": "cover_open"}]
    state = admin.get("state").json()
    assert state["paper_out"] and state["cover_open"]
    assert admin.post("faults/clear").json() == {"faults": []}
    assert pty_host.call(cmd(0x8D, b"\x00")).error == 0


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"kind": "meteor"}', "unknown fault kind"),
        (b"{not json", "not JSON"),
        (b'{"kind": "error"}', "needs `command`"),
    ],
)
def test_bad_fault_is_a_400_with_the_reason(admin: httpx.Client, body: bytes, words: str) -> None:
    answer = admin.post("faults", content=body)
    assert answer.status_code == 400
    assert words in answer.json()["error"]


def test_stray_ff_setting(admin: httpx.Client, emulator: RegistrarEmulator) -> None:
    assert admin.post("settings", json={"stray_ff": True}).json() == {"stray_ff": True}
    assert emulator.stray_ff is True
    assert admin.post("settings", json={"stray_ff": "yes"}).status_code == 400


def test_reset(admin: httpx.Client, emulator: RegistrarEmulator, pty_host: RawHost) -> None:
    sell(pty_host)
    assert admin.post("reset").json()["mode"] == 4
    assert admin.get("documents").json()["documents"] == []
    assert admin.get("paper").json()["lines"] == []


def test_unknown_path_is_a_404(admin: httpx.Client) -> None:
    assert admin.get("nothing").status_code == 404
    assert admin.post("nothing").status_code == 404


def test_body_size_is_capped(admin: httpx.Client) -> None:
    answer = admin.post("faults", content=b"[" + b"{}," * 40_000 + b"{}]")
    assert answer.status_code == 400 and "body over" in answer.json()["error"]
