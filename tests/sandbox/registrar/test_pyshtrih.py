"""A third-party client (pyshtrih 2.0.6, PyPI) drives the emulator through a sale over a pty.

pyshtrih frames, checks LRCs and parses answers by its own reading of the vendor's
protocol, so a framing or layout mistake that our driver and emulator share would show
here.  It runs in .venv-pyshtrih (Python 3.9; tools/pyshtrih-venv.sh) as a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.registrar import Fault, RegistrarEmulator
from tests.stand_ins import missing

ROOT = Path(__file__).resolve().parents[3]
VENV_PYTHON = ROOT / os.environ.get("PYSHTRIH_VENV", ".venv-pyshtrih") / "bin" / "python"
SCRIPT = Path(__file__).with_name("pyshtrih_sale.py")


@pytest.fixture
def pyshtrih_python() -> Path:
    if not VENV_PYTHON.exists():
        missing("pyshtrih venv absent: run tools/pyshtrih-venv.sh (needs a Python 3.9)")
    probe = subprocess.run(
        [str(VENV_PYTHON), "-c", "import pyshtrih"], capture_output=True, timeout=60
    )
    if probe.returncode != 0:
        missing(f"pyshtrih does not import in .venv-pyshtrih: {probe.stderr.decode()[-200:]}")
    return VENV_PYTHON


def test_pyshtrih_sells_through_the_emulator(
    pyshtrih_python: Path, emulator: RegistrarEmulator
) -> None:
    port = emulator.start_pty()
    run = subprocess.run(
        [str(pyshtrih_python), str(SCRIPT), port], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])

    assert seen["name"] == "ШТРИХ-М-01Ф"
    assert (seen["mode"], seen["submode"]) == (4, 0)
    assert seen["serial"] == emulator.device.identity.serial
    assert seen["mode_in_receipt"] == 8
    assert seen["change"] == 20000 - 17980
    assert seen["mode_after"] == 2

    [doc] = emulator.documents
    assert seen["last_document"] == doc["number"]
    assert doc["items"][0]["name"] == "Молоко"
    assert doc["items"][0]["quantity"] == "2" and doc["total"] == "179.80"
    assert doc["payments"] == {"1": "200.00"} and doc["change"] == "20.20"
    assert doc["messages"] == ["Бонусов начислено: 18"]
    text = emulator.paper_text()
    assert "pyshtrih: строка" in text
    assert text.index("Бонусов начислено: 18") < text.index("ИТОГ")
    assert [line.kind for line in emulator.paper][-2:] == ["cut", "cut"]  # auto, then 0x25


def test_pyshtrih_recovers_through_nak_and_a_bad_lrc(
    pyshtrih_python: Path, emulator: RegistrarEmulator
) -> None:
    emulator.inject(Fault.nak())  # its first frame is refused: pyshtrih sends it again
    emulator.inject(Fault.bad_lrc(2))  # two answers corrupted: NAK, ENQ, the replay
    port = emulator.start_pty()
    run = subprocess.run(
        [str(pyshtrih_python), str(SCRIPT), port], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert emulator.faults.pending() == []  # every fault was met on the way
    [doc] = emulator.documents
    assert doc["total"] == "179.80"
    assert emulator.commands_seen_count(0x80) == 1  # a replayed answer never ran twice


def test_a_missing_venv_skips_here_and_fails_where_stand_ins_are_required(tmp_path: Path) -> None:
    env = {**os.environ, "PYSHTRIH_VENV": str(tmp_path / "no-such-venv")}
    env.pop("POSBRIDGE_REQUIRE_STAND_INS", None)
    argv = [sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider", "-rs",
            "-k", "sells_through"]  # fmt: skip
    relaxed = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert relaxed.returncode == 0, relaxed.stdout[-2000:]
    assert "1 skipped" in relaxed.stdout and "pyshtrih venv absent" in relaxed.stdout
    env["POSBRIDGE_REQUIRE_STAND_INS"] = "1"
    strict = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert strict.returncode == 1
    assert "required stand-in missing: pyshtrih venv absent" in strict.stdout
