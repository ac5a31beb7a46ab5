"""Framing, AIM identifiers and the scan corpus, with property tests for arbitrary input."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import biip
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import ean

from drivers.scanner.aim import split_aim
from drivers.scanner.framing import Frame, Framer, suffix_from_name
from drivers.scanner.scan import ScanOptions, make_scan

CORPUS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "corpus" / "scans.json").read_text("utf-8")
)["scans"]


def frames_of(framer: Framer, chunks: list[bytes], t0: float = 0.0) -> list[bytes]:
    out: list[Frame] = []
    for i, chunk in enumerate(chunks):
        out += framer.feed(chunk, t0 + i * 0.001)  # all well inside the idle timeout
    return [f.data for f in out if f.terminated]


def test_one_scan_split_across_reads() -> None:
    assert frames_of(Framer(b"\r"), [b"4006", b"3813", b"33931", b"\r"]) == [b"4006381333931"]


def test_crlf_suffix_split_between_cr_and_lf() -> None:
    assert frames_of(Framer(b"\r\n"), [b"ABC\r", b"\nDEF\r", b"\n"]) == [b"ABC", b"DEF"]


def test_glued_scans_in_one_read_each_with_suffix() -> None:
    assert frames_of(Framer(b"\t"), [b"A1\tB2\tC3\tD"]) == [b"A1", b"B2", b"C3"]


def test_lf_after_cr_on_a_cr_setting_is_not_a_scan() -> None:
    assert frames_of(Framer(b"\r"), [b"A\r\nB\r\n"]) == [b"A", b"B"]


def test_lost_suffix_split_by_prefix() -> None:
    framer = Framer(b"\r", prefix=b"\x02")
    got = framer.feed(b"\x02AAA\x02BBB\r", 0.0)
    assert [(f.data, f.terminated) for f in got] == [(b"\x02AAA", False), (b"\x02BBB", True)]


def test_idle_gap_ends_scan_without_suffix() -> None:
    framer = Framer(None, idle_timeout=0.05)
    assert framer.feed(b"12345", 1.0) == []
    assert framer.poll(1.02) == []
    [frame] = framer.poll(1.06)
    assert (frame.data, frame.terminated) == (b"12345", True)


def test_idle_gap_with_suffix_marks_incomplete() -> None:
    framer = Framer(b"\r", idle_timeout=0.05)
    framer.feed(b"4006", 1.0)
    [frame] = framer.poll(1.2)
    assert (frame.data, frame.terminated) == (b"4006", False)
    assert framer.pending == b""


def test_new_bytes_after_gap_cut_the_stale_partial() -> None:
    framer = Framer(b"\r", idle_timeout=0.05)
    framer.feed(b"OLD", 1.0)
    got = framer.feed(b"NEW\r", 2.0)
    assert [(f.data, f.terminated) for f in got] == [(b"OLD", False), (b"NEW", True)]


def test_runaway_input_is_cut_at_max_length() -> None:
    framer = Framer(b"\r", max_length=10)
    [frame] = framer.feed(b"x" * 11, 0.0)
    assert not frame.terminated and len(frame.data) == 11


def test_suffix_names() -> None:
    assert suffix_from_name("crlf") == b"\r\n"
    assert suffix_from_name("NONE") is None
    with pytest.raises(ValueError, match="unknown scanner suffix 'CRCR'"):
        suffix_from_name("CRCR")


@pytest.mark.parametrize("bad", [{"suffix": b""}, {"idle_timeout": 0}, {"max_length": 0}])
def test_bad_framer_settings(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="scanner"):
        Framer(**bad)


@pytest.mark.parametrize("entry", CORPUS, ids=lambda e: repr(e["wire"])[:40])
def test_corpus_scan(entry: dict[str, Any]) -> None:
    wire = entry["wire"].encode("latin-1")
    [data] = frames_of(Framer(b"\r\n"), [wire + b"\r\n"])
    scan = make_scan(data, "scanner0", ScanOptions())
    assert scan.raw == wire
    assert scan.symbology == entry["symbology"]
    assert scan.text == entry["text"]
    check = entry["check"]
    if check == "ean":
        assert ean.is_valid(scan.text)
    elif check == "gs1":  # an independent GS1 parser agrees, GS separators included
        result = biip.parse(f"{scan.symbology}{scan.text}")
        assert result.gs1_message is not None
        assert result.gs1_message.value == scan.text
        # each GS ends a variable-length field, so there is one more element than GS
        assert len(result.gs1_message.element_strings) >= scan.text.count("\x1d") + 1
    elif check == "broken":  # delivered unchanged; rejecting it is the POS's business
        assert not ean.is_valid(scan.text)
        result = biip.parse(f"{scan.symbology}{scan.text}")
        assert result.gtin is None and result.gs1_message is None


def test_latin1_not_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LC_ALL", "ru_RU.KOI8-R")
    scan = make_scan(b"caf\xe9\x1d\xff", "s", ScanOptions())
    assert scan.text == "café\x1dÿ"


def test_prefix_stripped_then_aim() -> None:
    scan = make_scan(b"\x02]E04006381333931", "s", ScanOptions(prefix=b"\x02"))
    assert (scan.symbology, scan.text) == ("]E0", "4006381333931")


def test_aim_off_keeps_identifier() -> None:
    scan = make_scan(b"]E04006381333931", "s", ScanOptions(aim=False))
    assert (scan.symbology, scan.text) == (None, "]E04006381333931")


def test_aim_names() -> None:
    assert split_aim("]d2\x1d01").name == "GS1_DATAMATRIX"
    assert split_aim("]A0X").name == "CODE_39"
    assert split_aim("]C").symbology is None  # modifier missing: not an identifier
    assert split_aim("]Y1Adata").symbology == "]Y1A"  # system expansion: 1 + 1 modifiers
    assert split_aim("]Y9").symbology is None  # promises 10 modifier characters


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.lists(st.integers(0, 200), max_size=8))
def test_framer_any_bytes_any_split_loses_nothing(data: bytes, cuts: list[int]) -> None:
    """Whatever the split, frames plus what is pending give back every byte but suffixes."""
    framer = Framer(b"\r\n", prefix=b"\x02")
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    frames: list[Frame] = []
    for i, chunk in enumerate(chunks):
        frames += framer.feed(chunk, i * 0.001)
    assert b"".join(f.data for f in frames) + framer.pending == data.replace(b"\r\n", b"")
    for frame in frames:
        make_scan(frame.data, "s", ScanOptions(prefix=b"\x02"))  # never raises


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_split_aim_never_raises_and_never_loses_text(text: str) -> None:
    split = split_aim(text)
    assert (split.symbology or "") + split.data == text
