"""The loyalty block: built from real purchase outcomes, laid out for 32/42/48 columns, ru/en.

The ESC/POS bytes are decoded with Python's own cp866 codec here; emupos reads them back as a
printer would in test_emupos.py.
"""

from __future__ import annotations

import re
from dataclasses import fields
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.config import DeviceSettings, parse_device
from bridge.loyalty.errors import CardBlocked, CardNotFound, ConnectFailed
from bridge.loyalty.offline import OFFLINE_NOTICE, LocalResponse
from bridge.loyalty.protocol import ProcessingResponse
from bridge.loyalty.purchase import PurchaseResult
from bridge.receipts.loyalty_block import LoyaltyBlock, LoyaltyBlockError, LoyaltyState
from bridge.receipts.render import (
    ReceiptRenderError,
    escpos_bytes,
    loyalty_outputs,
    render_target,
    rows,
    unprintable,
)
from bridge.receipts.sample import SAMPLE_CARD, SCENARIOS, sample_block, sample_receipt
from bridge.receipts.texts import TEXTS, money_text, texts_for
from drivers.printer.document import clean_text, render_text

LANGUAGES = ["ru", "en"]
WIDTHS = [32, 42, 48]
CARD = "4600123456789012"
MASKED = "4600********9012"


def result(**changes: object) -> PurchaseResult:
    values: dict[str, object] = {
        "purchase_id": "p-1",
        "total": Decimal("384.30"),
        "discount": Decimal("15.00"),
        "redeemed": Decimal("100.00"),
        "accrued": Decimal("36.93"),
        "balance": Decimal("1186.93"),
        "cashier_message": None,
        "cheque_message": "Double bonuses for dairy",
        "queued": False,
    }
    values.update(changes)
    return PurchaseResult(**values)  # type: ignore[arg-type]


def no_card_digits(text: str, card: str = CARD) -> None:
    assert card not in text
    assert card not in re.sub(r"[^0-9]", "", text)  # not even split by spaces or line breaks


# --- the matrix ---------------------------------------------------------------------------


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_fits_and_says_what_it_must(
    scenario: str, language: str, columns: int
) -> None:
    texts = texts_for(language)
    block = sample_block(scenario, language)
    lines = render_text(block.to_receipt(language), columns)
    whole = render_text(sample_receipt(scenario, language), columns)
    for line in [*lines, *whole]:
        assert len(line) <= columns, (line, len(line))
    joined = " ".join(" ".join(lines).split())
    assert texts.title in joined
    if scenario == "anonymous":
        assert texts.card not in [line.split()[0] for line in lines if line]
        assert " ".join(texts.anonymous.split()) in joined
    else:
        card_line = next(line for line in lines if line.startswith(texts.card + " "))
        assert card_line.endswith("2775********6789") and len(card_line) == columns
    if scenario == "normal":
        amounts = {
            texts.balance_before: money_text(Decimal("1250"), texts),
            texts.redeemed: money_text(Decimal("100"), texts),
            texts.accrued: money_text(Decimal("36.93"), texts),
            texts.balance_after: money_text(Decimal("1186.93"), texts),
        }
        for label, amount in amounts.items():
            assert any(line.startswith(label) and line.endswith(amount) for line in lines), label
    if scenario == "offline":
        assert " ".join(texts.offline.split()) in joined
        assert texts.accrued not in joined and texts.balance_after not in joined
    if scenario == "blocked":
        assert texts.blocked in lines
        assert texts.accrued not in joined
    for line in whole:
        no_card_digits(line, SAMPLE_CARD)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_escpos_bytes_decode_back_with_cp866(scenario: str, language: str) -> None:
    target = render_target(42)
    receipt = sample_receipt(scenario, language)
    data = escpos_bytes(receipt, target)
    assert data.startswith(b"\x1b@\x1bt\x11")  # ESC @ then ESC t 17 (CP866 on the default)
    decoded = data.decode("cp866")
    for row in rows(receipt, 42):
        if row.text.strip() and not row.code and set(row.text) != {"="}:
            assert row.text.strip() in decoded, row
    if language == "ru":
        assert "ПРОГРАММА ЛОЯЛЬНОСТИ".encode("cp866") in data
        assert "ПРОГРАММА".encode() not in data  # not UTF-8 behind the printer's back
    assert SAMPLE_CARD.encode() not in data
    assert SAMPLE_CARD not in re.sub(r"[^0-9]", "", decoded)
    assert unprintable(render_text(receipt, 42), "cp866") == []


def test_all_texts_are_printable_in_cp866() -> None:
    for language, texts in TEXTS.items():
        for item in fields(texts):
            value = getattr(texts, item.name)
            clean_text(value).encode("cp866")  # raises if a character is missing
            assert unprintable([value], "cp866") == [], (language, item.name)


def test_texts_agree_with_what_the_cashier_is_told() -> None:
    assert TEXTS["en"].offline == OFFLINE_NOTICE
    blocked = CardBlocked(ProcessingResponse(code="CardBlocked"))
    assert TEXTS["en"].blocked == blocked.cashier_text == "Card is blocked"
    assert TEXTS["ru"].blocked == "Карта заблокирована"


def test_unknown_language_is_named() -> None:
    with pytest.raises(ValueError, match="'de'.*ru, en"):
        texts_for("de")
    with pytest.raises(ValueError, match="'de'"):
        LoyaltyBlock.for_card("anonymous", None).to_receipt("de")


# --- builders -----------------------------------------------------------------------------


def test_from_purchase_normal() -> None:
    block = LoyaltyBlock.from_purchase(result(), CARD, balance_before=Decimal("1250.00"))
    assert block == LoyaltyBlock(
        LoyaltyState.NORMAL,
        MASKED,
        Decimal("1250.00"),
        Decimal("1186.93"),
        Decimal("36.93"),
        Decimal("100.00"),
        "Double bonuses for dairy",
    )


def test_from_purchase_queued_is_offline_without_amounts_processing_did_not_give() -> None:
    block = LoyaltyBlock.from_purchase(result(queued=True, balance=None), CARD, Decimal("5"))
    assert block.state is LoyaltyState.OFFLINE
    assert (block.balance_before, block.balance_after, block.accrued) == (
        Decimal("5"),
        None,
        Decimal(0),
    )


def test_from_purchase_without_card_is_anonymous() -> None:
    block = LoyaltyBlock.from_purchase(result(), None)
    assert block.state is LoyaltyState.ANONYMOUS and block.card is None
    assert block.cheque_message == "Double bonuses for dairy"


def test_from_local_response_queued_and_offline() -> None:
    for local in ("queued", "offline"):
        response = LocalResponse(code="Ok", local=local, cheque_message=None)
        block = LoyaltyBlock.from_outcome(response, CARD, Decimal("10.00"))
        assert block.state is LoyaltyState.OFFLINE and block.card == MASKED
        assert block.balance_before == Decimal("10.00") and block.balance_after is None


def test_from_processing_response() -> None:
    response = ProcessingResponse.model_validate(
        {"code": "Ok", "balance": "150.5", "accruedAmount": "12.345", "chequeMessage": "Hi"}
    )
    block = LoyaltyBlock.from_outcome(response, CARD)
    assert block.state is LoyaltyState.NORMAL
    assert block.balance_after == Decimal("150.5") and block.accrued == Decimal("12.345")
    lines = render_text(block.to_receipt("en"), 32)
    assert "Balance after" in lines[-3] and lines[-3].endswith("150.50")
    assert lines[-4].endswith("12.35")  # half up, two decimals


def test_from_errors() -> None:
    blocked = CardBlocked(ProcessingResponse(code="CardBlocked", cheque_message=f"card {CARD}"))
    block = LoyaltyBlock.from_outcome(blocked, CARD)
    assert block.state is LoyaltyState.BLOCKED and block.cheque_message == f"card {MASKED}"
    assert LoyaltyBlock.from_outcome(ConnectFailed("refused"), CARD).state is LoyaltyState.OFFLINE
    with pytest.raises(LoyaltyBlockError, match="CardNotFound"):
        LoyaltyBlock.from_outcome(CardNotFound(ProcessingResponse(code="CardNotFound")), CARD)
    assert LoyaltyBlock.from_outcome(None, None).state is LoyaltyState.ANONYMOUS


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"card": CARD}, "card must be masked"),
        ({"accrued": 1.5}, "accrued must be a Decimal, got float"),
        ({"balance_after": 10.0}, "balance_after must be a Decimal, got float"),
        ({"redeemed": Decimal("-1")}, "redeemed must not be negative"),
        ({"balance_before": Decimal("NaN")}, "balance_before must be a finite"),
        ({"card": None}, "normal loyalty block needs a card"),
        ({"state": "normal"}, "state 'normal'"),
    ],
)
def test_bad_values_are_named(changes: dict[str, object], named: str) -> None:
    values: dict[str, object] = {"state": LoyaltyState.NORMAL, "card": MASKED}
    values.update(changes)
    with pytest.raises(LoyaltyBlockError, match=named):
        LoyaltyBlock(**values)  # type: ignore[arg-type]
    with pytest.raises(LoyaltyBlockError, match="state 'vip'"):
        LoyaltyBlock.for_card("vip", CARD)


def test_money_is_decimal_with_two_places() -> None:
    ru, en = TEXTS["ru"], TEXTS["en"]
    assert money_text(Decimal("1234567.005"), ru) == "1 234 567,01"
    assert money_text(Decimal("1234567.005"), en) == "1,234,567.01"
    assert money_text(Decimal("0"), ru) == "0,00" and money_text(Decimal("-5.5"), en) == "-5.50"
    with pytest.raises(TypeError, match="float"):
        money_text(1.5, ru)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        money_text(Decimal("Infinity"), ru)


# --- the card number ----------------------------------------------------------------------


def test_card_is_masked_in_text_bytes_and_repr_even_when_processing_echoes_it() -> None:
    message = f"Card {CARD}; also 4600 1234 5678 9012 and 4600-1234-5678-9012"
    block = LoyaltyBlock.from_purchase(result(cheque_message=message), CARD)
    receipt = block.to_receipt("ru")
    for columns in WIDTHS:
        for line in render_text(receipt, columns):
            no_card_digits(line)
        no_card_digits("".join(render_text(receipt, columns)))
    data = escpos_bytes(receipt, render_target(48))
    no_card_digits(data.decode("cp866"))
    no_card_digits(repr(block))
    assert block.cheque_message is not None and block.cheque_message.count(MASKED) == 3


@settings(max_examples=60, deadline=None)
@given(
    card=st.from_regex(r"\A[0-9]{13,19}\Z"),
    message=st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300),
    columns=st.sampled_from(WIDTHS),
    language=st.sampled_from(LANGUAGES),
)
def test_any_message_fits_and_never_reveals_the_card(
    card: str, message: str, columns: int, language: str
) -> None:
    block = LoyaltyBlock.from_purchase(
        result(cheque_message=f"{message} {card} {message}"), card, Decimal("99.99")
    )
    receipt = block.to_receipt(language)
    lines = render_text(receipt, columns)
    assert all(len(line) <= columns for line in lines)
    assert card not in "".join(lines).replace(" ", "")
    assert card.encode() not in escpos_bytes(receipt, render_target(columns))


# --- wrapping -----------------------------------------------------------------------------


@pytest.mark.parametrize("columns", WIDTHS)
def test_long_cheque_message_is_word_wrapped_and_long_words_split(columns: int) -> None:
    word = "Суперакция" * 8  # 80 letters, longer than any paper
    message = f"Спасибо, что вы с нами! {word} До встречи в магазине у дома."
    block = LoyaltyBlock.from_purchase(result(cheque_message=message), CARD)
    lines = render_text(block.to_receipt("ru"), columns)
    start = next(i for i, line in enumerate(lines) if line.startswith("Спасибо"))
    end = next(i for i in range(start, len(lines)) if set(lines[i]) == {"="})
    wrapped = lines[start:end]
    assert all(0 < len(line) <= columns for line in wrapped)
    assert "".join(wrapped).replace(" ", "") == message.replace(" ", "")
    assert sum(1 for line in wrapped if line in word) >= len(word) // columns  # split pieces
    assert any(len(line) == columns for line in wrapped if line in word)
    # words other than the long one are never cut
    for line in wrapped:
        for token in line.split():
            assert token in message.split() or token in word


# --- printer settings ---------------------------------------------------------------------


def printer(**fields: object) -> DeviceSettings:
    return parse_device(
        {"name": "front", "kind": "printer", "connection": "tcp", "host": "127.0.0.1", **fields}
    )


def test_code_page_slot_from_profile_or_config_override() -> None:
    assert render_target(48).code_page_slot == 17
    assert render_target(48, printer(profile="TM-T88V")).code_page_slot == 17
    assert render_target(48, printer(codepage_slot=59)).code_page_slot == 59
    block = sample_block("normal", "ru")
    data = block.escpos("ru", render_target(48, printer(codepage_slot=59)))
    assert data.startswith(b"\x1b@\x1bt;")  # slot 59
    assert "Карта".encode("cp866") in data


def test_columns_pick_the_font() -> None:
    assert (render_target(32).font, render_target(42).font, render_target(48).font) == (
        "a",
        "b",
        "a",
    )
    assert render_target(42, printer(paper_mm=80)).font == "a"
    assert render_target(42).columns == 42


def test_bad_printer_settings_are_named() -> None:
    with pytest.raises(
        ReceiptRenderError, match=r"printer front: .*no ESC t slot for CP866; set its codepage_slot"
    ):
        render_target(42, printer(profile="simple"))
    with pytest.raises(ReceiptRenderError, match=r"printer front: unknown printer profile 'X'"):
        render_target(42, printer(profile="X"))
    with pytest.raises(ReceiptRenderError, match=r"printer front: codepage: .*CP9999"):
        render_target(42, printer(codepage="CP9999"))


def test_outputs_follow_the_register_config() -> None:
    from bridge.config import parse

    cfg = parse(
        {
            "processing": {"url": "https://processing.example/api", "login": "r", "password": "p"},
            "receipt": {"language": "en", "columns": 32, "printer": "front"},
            "devices": [
                {
                    "name": "front",
                    "kind": "printer",
                    "connection": "tcp",
                    "host": "127.0.0.1",
                    "paper_mm": 58,
                    "codepage_slot": 59,
                }
            ],
        }
    )
    block = sample_block("offline", "en")
    lines, data = loyalty_outputs(block, cfg)
    assert lines == render_text(block.to_receipt("en"), 32) and max(map(len, lines)) == 32
    assert data.startswith(b"\x1b@\x1bt;\x1bM\x00")  # slot 59, font A for 32 columns
    assert "bonuses will be accrued" in data.decode("cp866")
