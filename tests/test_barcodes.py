"""Scan classification against a corpus from public sources, plus random input."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from biip.upc import Upc
from hypothesis import given
from hypothesis import strategies as st
from stdnum import ean

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
                "loyalty_card",
                "gtin",
                "weight_item",
                "marking_code",
                "unknown",
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
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def test_cli_decode_barcode_json() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bridge.cli",
            "decode",
            "barcode",
            r"]d201046040600060002131\x1d93abcd",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"POSBRIDGE_CONFIG": "/nonexistent", "PATH": ""},
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["kind"] == "marking_code" and data["symbology"] == "]d2"
    assert data["text"] == "010460406000600021" + "31" + GS + "93abcd"


def test_cli_decode_masks_cards_and_rejects_empty() -> None:
    env = {"POSBRIDGE_CONFIG": "/nonexistent", "PATH": ""}
    cmd = [sys.executable, "-m", "bridge.cli", "decode"]
    out = subprocess.run(
        [*cmd, "barcode", "2775000000012"], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert json.loads(out.stdout)["text"] == "27*******0012"
    out = subprocess.run(
        [*cmd, "barcode", "2775000000012", "--unmasked"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert json.loads(out.stdout)["card"] == "2775000000012"
    out = subprocess.run(
        [*cmd, "barcode", r"\r\n"], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert out.returncode == 2 and "unusable" in out.stderr


def test_cli_decode_track() -> None:
    env = {"POSBRIDGE_CONFIG": "/nonexistent", "PATH": ""}
    cmd = [sys.executable, "-m", "bridge.cli", "decode", "track"]
    swipe = "%B4111111111111111^DOE/JOHN^2512101?;4111111111111111=2512101?"
    out = subprocess.run([*cmd, swipe], capture_output=True, text=True, cwd=ROOT, env=env)
    data = json.loads(out.stdout)
    assert data["number"] == "4111********1111" and data["tracks"] == {
        "1": "ok",
        "2": "ok",
        "3": "absent",
    }
    out = subprocess.run(
        [*cmd, "%E?;4111111111111111=2512?"], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert json.loads(out.stdout)["tracks"]["1"] == "error"
    out = subprocess.run([*cmd, "garbage"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert out.returncode == 2 and "unusable swipe" in out.stderr


def test_upc_e_without_aim_id_expands_when_ean8_check_fails() -> None:
    """`04252614` is a valid UPC-E whose check digit fails EAN-8."""
    result = classify("04252614").to_json()
    assert result["kind"] == "gtin" and result["gtin"] == "00042100005264"
    assert result["upc_a"] == "042100005264" and "reason" not in result


def test_a_valid_ean8_stays_ean8_even_when_it_reads_as_upc_e() -> None:
    """Both check digits valid: EAN-8 wins (the symbology Russian goods carry)."""
    both = next(
        c
        for c in (f"0{n:06d}" for n in range(10**6))
        if ean.is_valid(c + ean.calc_check_digit(c))
        and Upc.parse(c).as_upc_a()[-1] == ean.calc_check_digit(c)
    )
    code = both + ean.calc_check_digit(both)
    result = classify(code).to_json()
    assert result["kind"] == "gtin" and result["gtin"] == code.zfill(14)
    assert "upc_e" not in result
    assert classify("]E0" + code).to_json()["upc_e"] == code  # the scanner said UPC-E


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("4006381333932", "check digit should be 1"),
        ("04252617", "check digit should be 0 (EAN-8) or 4 (UPC-E)"),
        ("]E004252617", "UPC-E: check digit should be 4"),
        ("2425261", "UPC-E: number system should be 0 or 1, not 2"),
        ("2775000000013", "loyalty range 2775: check digit should be 2"),
        ("01046040600060", "check digit should be 9"),
        ("0104604060006001215N4N579192RSC91ffd092" + "B" * 44, "GTIN check digit should be 0"),
        (
            "]C101095011015300031714070410AB-123",
            "GS1 data without a marking serial (21) and crypto tail (91+92 or 93)",
        ),
        (
            "4111111111111111",
            "16 digits: no GTIN, loyalty range or weight template has that length",
        ),
        ("hello world", "matches no rule: not a loyalty card, GTIN, weight item or marking code"),
    ],
)
def test_a_refused_code_says_why(raw: str, reason: str) -> None:
    result = classify(raw).to_json()
    assert result["kind"] == "unknown" and result["reason"] == reason


def test_luhn_loyalty_range_says_which_check_digit() -> None:
    luhn = BarcodeSettings(loyalty=[LoyaltyRule(prefix="6", length=16, check="luhn")])
    assert classify("6011111111111118", luhn).to_json()["reason"] == (
        "loyalty range 6: Luhn check digit should be 7"
    )


@given(st.text(alphabet="0123456789", min_size=1, max_size=24))
def test_every_unknown_digit_string_has_a_reason(digits: str) -> None:
    result = classify(digits).to_json()
    assert result["kind"] != "unknown" or result["reason"]


def test_cli_decode_barcode_reason_and_masked_unknown_card() -> None:
    env = {"POSBRIDGE_CONFIG": "/nonexistent", "PATH": ""}
    cmd = [sys.executable, "-m", "bridge.cli", "decode", "barcode"]
    out = subprocess.run([*cmd, "4006381333932"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert json.loads(out.stdout)["reason"] == "check digit should be 1"
    out = subprocess.run([*cmd, "04252614"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert json.loads(out.stdout)["gtin"] == "00042100005264"
    out = subprocess.run(
        [*cmd, "4111111111111111"], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert json.loads(out.stdout)["text"] == "4111********1111"
    assert "4111111111111111" not in out.stdout
    out = subprocess.run(
        [*cmd, "4111111111111111", "--unmasked"], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert json.loads(out.stdout)["text"] == "4111111111111111"


def test_cli_decode_track_typed_under_a_russian_layout() -> None:
    env = {"POSBRIDGE_CONFIG": "/nonexistent", "PATH": ""}
    cmd = [sys.executable, "-m", "bridge.cli", "decode", "track"]
    out = subprocess.run(
        [*cmd, "ж7000000000017=4912,"], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["number"] == "70*******0017" and data["expiry"] == "4912"
    assert data["tracks"]["2"] == "ok" and data["layoutRepaired"] is True
    out = subprocess.run(
        [*cmd, "ж7000000000017=4912,", "--unmasked"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert json.loads(out.stdout)["number"] == "7000000000017"
