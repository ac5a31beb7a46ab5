"""Whole receipts for `posbridge receipt preview`: a built-in sample per scenario, or a JSON file.

The samples go through the same builders the register uses (a `PurchaseResult`, a
queued purchase, a `CardBlocked` refusal), so the preview shows what a till would print.
A JSON description names its fields in camelCase like the processing contract; its
`cheque` has the contract's cheque shape, so a cheque file made for `posbridge purchase`
can be reused by adding a `loyalty` object.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from bridge.loyalty.errors import CardBlocked
from bridge.loyalty.protocol import Cheque, ChequeLine, Money, ProcessingResponse
from bridge.loyalty.purchase import PurchaseResult
from bridge.receipts.loyalty_block import LoyaltyBlock, LoyaltyState, normal_card, scrub_card
from bridge.receipts.texts import money_text, texts_for
from drivers.printer.document import Receipt

Scenario = Literal["normal", "offline", "blocked", "anonymous"]
SCENARIOS: tuple[str, ...] = ("normal", "offline", "blocked", "anonymous")
SAMPLE_CARD = "2775000123456789"  # a made-up 16-digit card; the preview shows it masked
SAMPLE_QR = "t=20261129T1500&s=369.30&fn=9999078900004312&i=77&fp=1234567890&n=1"

_GOODS = {
    "ru": [
        ("Молоко 3,2% 1 л", "89.90", "2"),
        ("Хлеб бородинский нарезка 400 г", "54.50", "1"),
        ("Средство для мытья посуды «Капля» лимон, 900 мл", "150.00", "1"),
    ],
    "en": [
        ("Milk 3.2% 1 l", "89.90", "2"),
        ("Rye bread, sliced, 400 g", "54.50", "1"),
        ("Dish soap 'Drop' lemon, 900 ml", "150.00", "1"),
    ],
}
_HEADER = {
    "ru": ["ООО «Ромашка»", "Магазин №5, ул. Ленина, 1"],
    "en": ["Daisy Ltd", "Shop 5, 1 Main Street"],
}
_MESSAGE = {
    "ru": "Поздравляем! За молочную продукцию начислены двойные бонусы. Акция действует "
    "до 31.12.2026 во всех магазинах сети. Подробнее: https://example.com/loyalty/promo",
    "en": "Congratulations! Dairy products earned you double bonuses. The offer runs until "
    "31.12.2026 in all our shops. Details: https://example.com/loyalty/promo",
}


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )


class LoyaltyDescription(_Model):
    state: Scenario = "normal"
    card: str | None = Field(default=None, min_length=1, max_length=64)
    balance_before: Money | None = None
    balance_after: Money | None = None
    accrued: Money = Field(default=Decimal(0), ge=0)
    redeemed: Money = Field(default=Decimal(0), ge=0)
    cheque_message: str | None = Field(default=None, max_length=4000)

    def __repr__(self) -> str:  # the card is never shown in full, also not in errors
        return f"LoyaltyDescription(state={self.state!r}, card=<masked>)"

    def block(self) -> LoyaltyBlock:
        return LoyaltyBlock.for_card(
            self.state,
            self.card,
            balance_before=self.balance_before,
            balance_after=self.balance_after,
            accrued=self.accrued,
            redeemed=self.redeemed,
            cheque_message=self.cheque_message,
        )


class BarcodeDescription(_Model):
    data: str = Field(min_length=1, max_length=253)
    symbology: str = "EAN13"


class ReceiptDescription(_Model):
    """What `--from-json FILE` holds."""

    header: list[str] = Field(default_factory=list, max_length=20)
    cheque: Cheque | None = None
    discount: Money = Field(default=Decimal(0), ge=0)
    loyalty: LoyaltyDescription | None = None
    qr: str | None = Field(default=None, min_length=1, max_length=1000)
    barcodes: list[BarcodeDescription] = Field(default_factory=list, max_length=10)

    @field_validator("header")
    @classmethod
    def _short_lines(cls, lines: list[str]) -> list[str]:
        for line in lines:
            if len(line) > 200:
                raise ValueError("header lines must be at most 200 characters")
        return lines


def cheque_receipt(
    language: str,
    *,
    header: list[str],
    cheque: Cheque | None,
    discount: Decimal,
    block: LoyaltyBlock | None,
    qr: str | None,
    barcodes: Sequence[tuple[str, str]] = (),
) -> Receipt:
    texts = texts_for(language)
    receipt = Receipt()
    for heading in header:
        receipt.text(heading, align="center")
    if cheque is not None:
        receipt.double(texts.receipt)
        receipt.text(f"{texts.number} {cheque.number}   {cheque.date:%d.%m.%Y %H:%M}")
        receipt.rule()
        for item in cheque.lines:
            receipt.text(f"{item.position}. {item.name}")
            quantity = format(item.quantity.normalize(), "f")
            receipt.pair(
                f"{quantity} x {money_text(item.price, texts)}", money_text(item.amount, texts)
            )
        receipt.rule()
        total = cheque.total()
        receipt.pair(texts.total, money_text(total, texts))
        if discount:
            receipt.pair(texts.discount, money_text(discount, texts))
        redeemed = block.redeemed if block is not None else Decimal(0)
        receipt.pair(texts.to_pay, money_text(total - discount - redeemed, texts), bold=True)
    if block is not None:
        block.add_to(receipt, language)
    for data, symbology in barcodes:
        receipt.barcode(data, symbology)
    if qr:
        receipt.qr(qr)
    if cheque is not None:
        receipt.text(texts.thanks, align="center")
    return receipt.cut()


def from_description(description: ReceiptDescription, language: str) -> Receipt:
    """The described receipt; the loyalty card is masked wherever else it was written too."""
    loyalty = description.loyalty
    card = normal_card(loyalty.card) if loyalty is not None else None

    def scrub(text: str) -> str:
        return scrub_card(text, card)

    cheque = description.cheque
    if cheque is not None and card:
        lines = [item.model_copy(update={"name": scrub(item.name)}) for item in cheque.lines]
        cheque = cheque.model_copy(update={"lines": lines})
    return cheque_receipt(
        language,
        header=[scrub(line) for line in description.header],
        cheque=cheque,
        discount=description.discount,
        block=loyalty.block() if loyalty is not None else None,
        qr=scrub(description.qr) if description.qr else None,
        barcodes=[(scrub(code.data), code.symbology) for code in description.barcodes],
    )


def sample_cheque(language: str) -> Cheque:
    lines = [
        ChequeLine(
            position=i,
            goods_id=f"10{i:02d}",
            name=name,
            price=Decimal(price),
            quantity=Decimal(quantity),
            amount=Decimal(price) * Decimal(quantity),
        )
        for i, (name, price, quantity) in enumerate(_GOODS[language], start=1)
    ]
    return Cheque(number="77", date=datetime(2026, 11, 29, 15, 0), lines=lines)


def sample_block(scenario: str, language: str) -> LoyaltyBlock:
    """The scenario's block, made the way the register makes it."""
    result = PurchaseResult(
        purchase_id="sample",
        total=Decimal("384.30"),
        discount=Decimal("15.00"),
        redeemed=Decimal("100.00"),
        accrued=Decimal("36.93"),
        balance=Decimal("1186.93"),
        cashier_message=None,
        cheque_message=_MESSAGE[language],
    )
    if scenario == "normal":
        return LoyaltyBlock.from_purchase(result, SAMPLE_CARD, balance_before=Decimal("1250.00"))
    if scenario == "anonymous":
        return LoyaltyBlock.from_purchase(result, None)
    if scenario == "offline":
        queued = PurchaseResult(
            purchase_id="sample",
            total=result.total,
            discount=Decimal(0),
            redeemed=Decimal(0),
            accrued=Decimal(0),
            balance=None,
            cashier_message=None,
            cheque_message=None,
            queued=True,
        )
        return LoyaltyBlock.from_purchase(queued, SAMPLE_CARD)
    if scenario == "blocked":
        refusal = ProcessingResponse(code="CardBlocked", error_message="Card is blocked")
        return LoyaltyBlock.from_error(CardBlocked(refusal), SAMPLE_CARD)
    raise ValueError(f"scenario {scenario!r}: use one of {', '.join(SCENARIOS)}")


def sample_receipt(scenario: str, language: str) -> Receipt:
    block = sample_block(scenario, language)
    discount = Decimal("15.00") if block.state is LoyaltyState.NORMAL else Decimal(0)
    return cheque_receipt(
        language,
        header=_HEADER[language],
        cheque=sample_cheque(language),
        discount=discount,
        block=block,
        qr=SAMPLE_QR,
    )
