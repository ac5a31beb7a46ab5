"""Scan classification against a corpus from public sources, plus random input."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.barcodes import (
    GS,
    BarcodeSettings,
    LoyaltyRule,
    UnusableInput,
    classify,
    decode_escapes,
)

DATA = Path(__file__).parent / "data"
CORPUS = json.loads((DATA / "barcodes.json").read_text())["cases"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("case", CORPUS, ids=[c["raw"][:30] for c in CORPUS])
def test_corpus(case: dict[str, str]) -> None:
    result = classify(decode_escapes(case["raw"])).to_json()
    for key, expected in case.items():
        if key == "raw":
            continue
        value = result.get(key)
        if isinstance(value, Decimal):
            value = str(value)
        assert value == expected, (key, result)


def test_gs_is_kept_in_marking_text() -> None:
    raw = "010460406000600021N4N57RSCBUZTQ" + GS + "93abcd"
    result = classify(raw)
    assert result.text == raw and result.text.count(GS) == 1


def test_serial_containing_91_is_not_cut() -> None:
    """A serial with "91"/"92" inside and GS present: biip's AI table, not a digit search."""
    raw = "010460406000600021AB91CD92EF91G" + GS + "91ffd0" + GS + "92" + "x" * 44
    result = classify(raw).to_json()
    assert result["serial"] == "AB91CD92EF91G" and result["key_id"] == "ffd0"


def test_configurable_loyalty_rules() -> None:
    settings = BarcodeSettings(
        loyalty=[LoyaltyRule(prefix="LC", length=10, check="none", symbology="]C0")],
        weight_templates=[],
    )
    assert classify("]C0LC12345678", settings).kind == "loyalty_card"
    assert classify("]E0LC12345678", settings).kind == "unknown"  # other symbology
    assert classify("2775000000012", settings).kind == "gtin"  # default range replaced
    luhn = BarcodeSettings(loyalty=[LoyaltyRule(prefix="6", length=16, check="luhn")])
    assert classify("6011111111111117", luhn).kind == "loyalty_card"
    assert classify("6011111111111118", luhn).kind == "unknown"


def test_bad_template_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="13 characters"):
        BarcodeSettings(weight_templates=["22PPPPWWC"])


def test_drivers_corpus_classifies_without_error() -> None:
    corpus = json.loads((ROOT / "tests/drivers/corpus/scans.json").read_text())["scans"]
    for scan in corpus:
        if scan["wire"].strip():
            assert classify(scan["wire"]).kind in {
                "loyalty_card", "gtin", "weight_item", "marking_code", "unknown"
            }


@given(st.text(max_size=120))
def test_any_text_classifies_or_is_unusable(text: str) -> None:
    try:
        result = classify(text)
    except UnusableInput:
        return
    assert result.kind in {"loyalty_card", "gtin", "weight_item", "marking_code", "unknown"}
    json.dumps(result.to_json(), default=str)


def decode(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", "--config", "/nonexistent-ok", "decode", *args],
        capture_output=True, text=True, cwd=ROOT,
    )


def test_cli_decode_barcode_json() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "decode", "barcode", r"]d201046040600060002131\x1d93abcd"],
        capture_output=True, text=True, cwd=ROOT, env={"POSBRIDGE_CONFIG": "/nonexistent", "PATH": ""},
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["kind"] == "marking_code" and data["symbology"] == "]d2"
    assert data["text"] == "010460406000600021" + "31" + GS + "93abcd"


def test_cli_decode_masks_cards_and_rejects_empty() -> None:
    env = {"POSBRIDGE_CONFIG": "/nonexistent", "PATH": ""}
    cmd = [sys.executable, "-m", "bridge.cli", "decode"]
    out = subprocess.run([*cmd, "barcode", "2775000000012"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert json.loads(out.stdout)["text"] == "277500***0012"
    out = subprocess.run([*cmd, "barcode", "2775000000012", "--unmasked"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert json.loads(out.stdout)["card"] == "2775000000012"
    out = subprocess.run([*cmd, "barcode", r"\r\n"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert out.returncode == 2 and "unusable" in out.stderr


def test_cli_decode_track() -> None:
    env = {"POSBRIDGE_CONFIG": "/nonexistent", "PATH": ""}
    cmd = [sys.executable, "-m", "bridge.cli", "decode", "track"]
    swipe = "%B4111111111111111^DOE/JOHN^2512101?;4111111111111111=2512101?"
    out = subprocess.run([*cmd, swipe], capture_output=True, text=True, cwd=ROOT, env=env)
    data = json.loads(out.stdout)
    assert data["number"] == "411111******1111" and data["tracks"] == {"1": "ok", "2": "ok", "3": "absent"}
    out = subprocess.run([*cmd, "%E?;4111111111111111=2512?"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert json.loads(out.stdout)["tracks"]["1"] == "error"
    out = subprocess.run([*cmd, "garbage"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert out.returncode == 2 and "unusable swipe" in out.stderr
