"""`test-print` and `doctor` on a registrar: the real emulator over a pty and over TCP."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.doctor import run_checks
from sandbox.registrar.emulator import RegistrarEmulator
from sandbox.registrar.faults import Fault
from sandbox.server import SandboxServer
from tests.test_doctor import verdicts, write_cfg


def registrar_toml(*, port: str | None = None, tcp: int | None = None) -> str:
    where = (
        f'connection = "serial"\nport = "{port}"\n'
        if port
        else f'connection = "tcp"\nhost = "127.0.0.1"\ntcp_port = {tcp}\n'
    )
    return f'[[devices]]\nname = "kkt"\nkind = "registrar"\n{where}'


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_test_print_on_a_registrar_is_a_non_fiscal_page(
    tmp_path: Path, sandbox_server: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with RegistrarEmulator() as emulator:
        devices = registrar_toml(port=emulator.start_pty())
        cfg = write_cfg(tmp_path, sandbox_server.url, devices=devices)
        assert main(["--config", str(cfg), "test-print"]) == 0
        paper = emulator.paper_text()
        assert emulator.fiscal_documents == []  # not a fiscal document of any kind
    out = capsys.readouterr().out
    assert "non-fiscal test page sent to registrar kkt: 48 columns" in out
    assert "НЕФИСКАЛЬНЫЙ ДОКУМЕНТ" in paper and "Съешь же ещё" in paper
    assert "КАССОВЫЙ ЧЕК" not in paper
    assert "48:" + "1234567890"[:4] in paper and "cut" in paper


def test_test_print_on_an_absent_registrar_says_so_in_one_line(
    tmp_path: Path, sandbox_server: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_cfg(tmp_path, sandbox_server.url, devices=registrar_toml(tcp=closed_port()))
    assert main(["--config", str(cfg), "test-print", "kkt"]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("posbridge test-print: registrar kkt (tcp 127.0.0.1:")
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def _registrar_verdicts(tmp_path: Path, sandbox: SandboxServer, port: int) -> dict[str, str]:
    cfg = write_cfg(tmp_path, sandbox.url, devices=registrar_toml(tcp=port))
    return {k: v for k, v in verdicts(run_checks(str(cfg))).items() if "kkt" in k}


def test_doctor_on_a_healthy_registrar(tmp_path: Path, sandbox_server: SandboxServer) -> None:
    with RegistrarEmulator() as emulator:
        v = _registrar_verdicts(tmp_path, sandbox_server, emulator.start_tcp())
        assert emulator.paper_text() == ""  # status commands only
    assert v == {
        "device kkt answers": "pass",
        "device kkt shift": "pass",
        "device kkt FN": "pass",
        "device kkt paper": "pass",
    }


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        (Fault.shift_over_24h(), "device kkt shift"),
        (Fault.fn_missing(), "device kkt FN"),
        (Fault.fn_full(), "device kkt FN"),
        (Fault.paper_out(), "device kkt paper"),
        (Fault.cover_open(), "device kkt paper"),
    ],
)
def test_doctor_reports_what_stops_receipts(
    tmp_path: Path, sandbox_server: SandboxServer, fault: Fault, check: str
) -> None:
    with RegistrarEmulator() as emulator:
        emulator.inject(fault)
        v = _registrar_verdicts(tmp_path, sandbox_server, emulator.start_tcp())
    assert v["device kkt answers"] == "pass" and v[check] == "fail", v


def test_doctor_on_an_absent_registrar(tmp_path: Path, sandbox_server: SandboxServer) -> None:
    v = _registrar_verdicts(tmp_path, sandbox_server, closed_port())
    assert v["device kkt answers"] == "fail"
    assert v["device kkt shift"] == v["device kkt FN"] == v["device kkt paper"] == "skip"
