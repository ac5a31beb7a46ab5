"""The one card-masking rule, and finding card numbers inside free text."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum import luhn

from drivers.masking import luhn_valid, mask_data, mask_pan, mask_text, shape


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("4222222222222", "42*******2222"),  # 13: 6 shown (was 10: ~100 candidates left)
        ("378282246310005", "378********0005"),  # 15: 7 shown
        ("4111111111111111", "4111********1111"),  # 16: 8 shown
        ("6011000000000000001", "60110**********0001"),  # 19: 9 shown
        ("27750000000000000001", "277500**********0001"),  # 20: the 6 + 4 cap
        ("12345678", "****5678"),
        ("1234", "**34"),
        ("7", "*"),
        ("", ""),
    ],
)
def test_mask_pan(number: str, masked: str) -> None:
    assert mask_pan(number) == masked


@given(st.text(alphabet="0123456789", max_size=40))
def test_never_more_than_half_nor_6_plus_4(number: str) -> None:
    masked = mask_pan(number)
    assert len(masked) == len(number)
    shown = [i for i, c in enumerate(masked) if c != "*"]
    assert len(shown) <= len(number) // 2 and len(shown) <= 10
    head = len(masked) - len(masked.lstrip("0123456789"))
    tail = len(masked) - len(masked.rstrip("0123456789"))
    assert head <= 6 and tail <= 4 and head + tail == len(shown)
    assert all(masked[i] == number[i] for i in shown)


def test_luhn_matches_stdnum() -> None:
    for n in ("4111111111111111", "4111111111111112", "0", "79927398713", "2775000000012"):
        assert luhn_valid(n) == luhn.is_valid(n)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("card 4111111111111111 refused", "card 4111********1111 refused"),
        (";4111111111111111=2512101?", ";4111********1111=2512101?"),
        ("%B4111111111111111^DOE/JOHN^2512101?", "%B4111********1111^DOE/JOHN^2512101?"),
        ("Карта 4111 1111 1111 1111: лимит", "Карта 4111 **** **** 1111: лимит"),
        ("4111-1111-1111-1111", "4111-****-****-1111"),
        ("amex 3782 822463 10005.", "amex 378* ****** *0005."),
        ("qty 12 4111111111111111", "qty 12 4111********1111"),  # a number before it
        ("4111 1111 1111 1111 2 items", "4111 **** **** 1111 2 items"),  # and after it
        ("4222222222222", "42*******2222"),
        ("4111111111111112", "4111111111111112"),  # not Luhn-valid: not a card number
        ("41111111111111111111", "41111111111111111111"),  # 20 digits: not a card number
        ("0104600000000015215N4N57", "0104600000000015215N4N57"),  # 19, not Luhn-valid
        ("2026-12-02 13:20:09 seq=123", "2026-12-02 13:20:09 seq=123"),
        ("", ""),
    ],
)
def test_mask_text(text: str, masked: str) -> None:
    assert mask_text(text) == masked


def pans() -> st.SearchStrategy[str]:
    return (
        st.integers(12, 18)
        .flatmap(lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n))
        .map(lambda body: body + luhn.calc_check_digit(body))
    )


@given(pans(), st.text(max_size=30), st.text(max_size=30), st.sampled_from(["", " ", "-"]))
def test_a_card_number_never_survives(pan: str, before: str, after: str, sep: str) -> None:
    """Whatever surrounds it (but more digits glued on), and grouped by 4 or not."""
    grouped = sep.join(pan[i : i + 4] for i in range(0, len(pan), 4)) if sep else pan
    before = before if not before[-1:].isdigit() else before + "x"
    after = after if not after[:1].isdigit() else "x" + after
    out = mask_text(before + grouped + after)
    assert pan not in re.sub(r"(?<=\d)[ -](?=\d)", "", out)
    assert mask_text(out) == out  # masking twice changes nothing


# uuid4s whose hex groups hold a Luhn-valid 13-19 digit window: masked before UUIDs were kept
UNLUCKY_UUIDS = [
    "910acfc1-0709-4832-8242-8ed4b0394bf8",  # was 910acfc1-0***-****-8242-...: 1 0709 4832 8242
    "b12de428-7654-4964-8938-34f75840860d",
    "52758962-3852-429a-a8c2-b8f580f9cc80",  # a window that starts in the first group
]


@pytest.mark.parametrize("uid", UNLUCKY_UUIDS)
def test_a_uuid_is_kept_whole(uid: str) -> None:
    """Cheque and request ids are UUIDs: the POS matches events to cheques by them."""
    for text in (uid, uid.upper(), f"chequeId={uid},", f'{{"id": "{uid}"}}'):
        assert mask_text(text) == text
    assert mask_data({"chequeId": uid, "ids": [uid]}) == {"chequeId": uid, "ids": [uid]}


@pytest.mark.parametrize("uid", UNLUCKY_UUIDS)
def test_a_card_next_to_a_uuid_is_still_masked(uid: str) -> None:
    text = f"cheque {uid}: card 4111 1111 1111 1111, again 4111111111111111 ({uid})"
    assert mask_text(text) == (
        f"cheque {uid}: card 4111 **** **** 1111, again 4111********1111 ({uid})"
    )


def test_only_the_uuid_shape_is_kept() -> None:
    """Hex glued on, a group too long, or no version or variant nibble: masked as before."""
    for text, masked in (
        ("x910acfc1-0709-4832-8242-8ed4b0394bf8", "x910acfc1-0***-****-8242-8ed4b0394bf8"),
        ("910acfc1-0709-4832-8242-8ed4b0394bf80", "910acfc1-0***-****-8242-8ed4b0394bf80"),
        # version 0, then variant 7
        ("910acfc1-0709-0832-8000-8ed4b0394bf8", "910acfc1-0***-****-8000-8ed4b0394bf8"),
        ("910acfc1-0709-4832-7004-8ed4b0394bf8", "910acfc1-0***-****-7004-8ed4b0394bf8"),
    ):
        assert mask_text(text) == masked


@given(st.uuids(version=4))
def test_no_uuid4_is_ever_changed(uid: uuid.UUID) -> None:
    assert mask_text(str(uid)) == str(uid)
    assert mask_text(f"cheque {uid} confirmed") == f"cheque {uid} confirmed"


def test_mask_data_walks_json() -> None:
    data = {"a": ["x 4111111111111111"], "b": {"c": "4111111111111111"}, "n": 5, "z": None}
    assert mask_data(data) == {
        "a": ["x 4111********1111"],
        "b": {"c": "4111********1111"},
        "n": 5,
        "z": None,
    }


def test_shape_keeps_framing_only() -> None:
    raw = b"%B4111111111111111^DOE/JOHN^2512101?\r\x00"
    assert shape(raw) == "%A9999999999999999^AAA/AAAA^9999999?\\r\\x00"
    assert shape("x" * 100, limit=8) == "AAAAAAAA..."
    printable = shape(bytes(range(32, 127)), limit=200)
    assert {c for c in printable if c.isalnum()} == {"9", "A"}
    assert shape("Иванов 12") == "AAAAAA 99"
