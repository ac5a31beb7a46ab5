"""Technician tools on stand-in devices: test-print to a pty and to emupos, scan-test."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.commands.test_print import PANGRAM_RU
from tests.drivers.pty_helpers import Pty

ROOT = Path(__file__).resolve().parents[1]


def cfg_with(tmp_path: Path, devices: str) -> Path:
    path = tmp_path / "posbridge.toml"
    path.write_text(
        '[processing]\nurl = "http://127.0.0.1:9/x"\nlogin = "a"\npassword = "b"\n' + devices
    )
    return path


def drain(fd: int) -> bytes:
    out = b""
    while select.select([fd], [], [], 0.2)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the driver closed the slave and everything was read
            break
        if not chunk:
            break
        out += chunk
    return out


def test_test_print_to_a_serial_printer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Pty() as printer:
        cfg = cfg_with(
            tmp_path,
            f'[[devices]]\nname = "receipt"\nkind = "printer"\n'
            f'connection = "serial"\nport = "{printer.path}"\n'
            f'profile = "TM-T88III"\npaper_mm = 80\n',
        )
        assert main(["--config", str(cfg), "test-print"]) == 0
        data = drain(printer.master)
    out = capsys.readouterr().out
    assert "test page sent to receipt" in out
    for word in PANGRAM_RU.split():  # wrapped to the paper width, each word intact in CP866
        assert word.encode("cp866") in data, word
    reset = data.index(b"\x1b@")
    assert data[reset + 2 : reset + 4] == b"\x1bt"  # code page pinned right after ESC @
    assert b"\x1dk" in data and b"\x1d(k" in data and b"\x1dV" in data


def test_test_print_unknown_printer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = cfg_with(tmp_path, "")
    assert main(["--config", str(cfg), "test-print", "nope"]) == 2
    assert "no printer named 'nope'" in capsys.readouterr().err


def test_test_print_read_back_by_emupos(tmp_path: Path) -> None:
    from tests.drivers.emupos_helpers import running_emupos, zbar_decode

    for emu in running_emupos(tmp_path / "emu"):
        cfg = cfg_with(
            tmp_path,
            f'[[devices]]\nname = "receipt"\nkind = "printer"\n'
            f'connection = "tcp"\nhost = "127.0.0.1"\n'
            f'tcp_port = {emu.tcp_port}\nprofile = "TM-T88III"\n',
        )
        assert main(["--config", str(cfg), "test-print"]) == 0
        emu.wait_event("printer.job.completed")
        (receipt_id,) = emu.receipts_completed()
        text = emu.receipt_text(receipt_id)
        assert "Съешь же ещё этих мягких французских булок" in text.replace("\n", " ")
        codes = zbar_decode(emu.receipt_png(receipt_id, tmp_path / "page.png"))
        assert "EAN-13:4600000000015" in codes
        assert "QR-Code:https://example.org/posbridge-test" in codes
        assert not emu.unknown_commands()


def test_scan_test_shows_classified_scans(tmp_path: Path) -> None:
    with Pty() as scanner, Pty() as msr:
        cfg = cfg_with(
            tmp_path,
            f'[[devices]]\nname = "scanner"\nkind = "scanner"\n'
            f'connection = "serial"\nport = "{scanner.path}"\n'
            f'[[devices]]\nname = "msr"\nkind = "card_reader"\n'
            f'connection = "serial"\nport = "{msr.path}"\n',
        )
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bridge",
                "--config",
                str(cfg),
                "scan-test",
                "--count",
                "4",
                "--json",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None and proc.stdout is not None
        assert "watching" in proc.stderr.readline()
        lines = []
        online = 0
        while online < 2:  # both ports opened by the readers
            event = json.loads(proc.stdout.readline())
            online += event["event"] == "status" and event["power"] == "online"
        scanner.send(b"]E04600000000015\r")
        scanner.send(b"2775000000012\r")
        msr.send(b";2775000000050=2912?\r")
        scanner.send(b"4111111111111111\r")  # a payment card scanned by mistake: unknown
        out, _ = proc.communicate(timeout=30)
        lines = [json.loads(x) for x in out.splitlines()]
    scans = [x for x in lines if x["event"] in ("scan", "swipe")]
    kinds = [x.get("kind") for x in scans if x["event"] == "scan"]
    assert kinds == ["gtin", "loyalty_card", "unknown"]
    assert any(x["event"] == "swipe" and x["card"] == "27*******0050" for x in scans)
    assert "2775000000012" not in out and "2775000000050" not in out
    assert "4111111111111111" not in out and "4111********1111" in out
