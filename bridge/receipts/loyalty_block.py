"""The loyalty part of a receipt, built from whatever the purchase produced.

The card number is masked the moment it enters a `LoyaltyBlock` (and scrubbed from
processing's chequeMessage, should processing echo it), so nothing downstream - text,
ESC/POS bytes, PNG, logs of the block's repr - can hold the full number.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from bridge.loyalty.errors import CardBlocked, LoyaltyError
from bridge.loyalty.protocol import ProcessingResponse, mask_card
from bridge.receipts.render import escpos_bytes
from bridge.receipts.texts import Texts, money_text, texts_for
from drivers.printer.document import Receipt

if TYPE_CHECKING:
    from bridge.loyalty.purchase import PurchaseResult
    from drivers.printer.profile import RenderTarget


class LoyaltyState(enum.StrEnum):
    NORMAL = "normal"
    OFFLINE = "offline"  # processing unreachable: the purchase is queued in the journal
    BLOCKED = "blocked"
    ANONYMOUS = "anonymous"  # no card presented


class LoyaltyBlockError(ValueError):
    """A loyalty block cannot be made from the given values; the message names the field."""


def normal_card(card: str | None) -> str | None:
    """The card number without the spaces and dashes people type or print between groups."""
    return re.sub(r"[\s-]", "", card) or None if card else None


def scrub_card(text: str, card: str | None) -> str:
    """`text` with the card number masked, also when written in groups ("2775 0001 ...")."""
    if not card or len(card) <= 4:
        return text
    pattern = r"[ \t-]?".join(re.escape(char) for char in card)
    return re.sub(pattern, mask_card(card), text)


def _scrub(text: str | None, card: str | None) -> str | None:
    return scrub_card(text, card) if text else None


def _amount(name: str, value: object, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, Decimal):
        raise LoyaltyBlockError(f"{name} must be a Decimal, got {type(value).__name__} {value!r}")
    if not value.is_finite():
        raise LoyaltyBlockError(f"{name} must be a finite amount, got {value}")


@dataclass(frozen=True)
class LoyaltyBlock:
    """What the customer reads about bonuses; `card` is already masked."""

    state: LoyaltyState
    card: str | None = None
    balance_before: Decimal | None = None
    balance_after: Decimal | None = None
    accrued: Decimal = Decimal(0)
    redeemed: Decimal = Decimal(0)
    cheque_message: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.state, LoyaltyState):
            raise LoyaltyBlockError(f"state {self.state!r}: use one of {', '.join(LoyaltyState)}")
        if self.card is not None and self.card.strip("*") and "*" not in self.card:
            raise LoyaltyBlockError(
                "card must be masked; build the block with for_card() or from_outcome()"
            )
        for name in ("balance_before", "balance_after"):
            _amount(name, getattr(self, name), optional=True)
        for name in ("accrued", "redeemed"):
            _amount(name, getattr(self, name), optional=False)
            if getattr(self, name) < 0:
                raise LoyaltyBlockError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.state in (LoyaltyState.NORMAL, LoyaltyState.OFFLINE, LoyaltyState.BLOCKED) and (
            not self.card
        ):
            raise LoyaltyBlockError(f"a {self.state} loyalty block needs a card number")

    # ------------------------------------------------------------------ builders

    @classmethod
    def for_card(
        cls,
        state: LoyaltyState | str,
        card: str | None,
        *,
        balance_before: Decimal | None = None,
        balance_after: Decimal | None = None,
        accrued: Decimal = Decimal(0),
        redeemed: Decimal = Decimal(0),
        cheque_message: str | None = None,
    ) -> LoyaltyBlock:
        """The one way a full card number enters: it is masked here and scrubbed from the text."""
        try:
            state = LoyaltyState(state)
        except ValueError:
            raise LoyaltyBlockError(
                f"state {state!r}: use one of {', '.join(LoyaltyState)}"
            ) from None
        card = normal_card(card)
        if state is LoyaltyState.ANONYMOUS:
            card = None
        return cls(
            state=state,
            card=mask_card(card) if card else None,
            balance_before=balance_before,
            balance_after=balance_after,
            accrued=accrued,
            redeemed=redeemed,
            cheque_message=_scrub(cheque_message, card),
        )

    @classmethod
    def from_purchase(
        cls, result: PurchaseResult, card: str | None, balance_before: Decimal | None = None
    ) -> LoyaltyBlock:
        if not card:
            return cls.for_card(LoyaltyState.ANONYMOUS, None, cheque_message=result.cheque_message)
        state = LoyaltyState.OFFLINE if result.queued else LoyaltyState.NORMAL
        return cls.for_card(
            state,
            card,
            balance_before=balance_before,
            balance_after=None if result.queued else result.balance,
            accrued=Decimal(0) if result.queued else result.accrued,
            redeemed=result.redeemed,
            cheque_message=result.cheque_message,
        )

    @classmethod
    def from_response(
        cls, response: ProcessingResponse, card: str | None, balance_before: Decimal | None = None
    ) -> LoyaltyBlock:
        """From the last answer of a purchase (confirm), or a register-made `LocalResponse`."""
        local = getattr(response, "local", None)
        if not card:
            message = response.cheque_message
            return cls.for_card(LoyaltyState.ANONYMOUS, None, cheque_message=message)
        if local in ("queued", "offline"):
            return cls.for_card(
                LoyaltyState.OFFLINE,
                card,
                balance_before=balance_before,
                cheque_message=response.cheque_message,
            )
        return cls.for_card(
            LoyaltyState.NORMAL,
            card,
            balance_before=balance_before,
            balance_after=response.balance,
            accrued=response.accrued_amount or Decimal(0),
            redeemed=response.bonus_amount or Decimal(0),
            cheque_message=response.cheque_message,
        )

    @classmethod
    def from_error(cls, error: LoyaltyError, card: str | None) -> LoyaltyBlock:
        """A refused or unreachable purchase: blocked card, or offline; other errors have none."""
        if isinstance(error, CardBlocked):
            return cls.for_card(LoyaltyState.BLOCKED, card, cheque_message=error.cheque_message)
        if error.offline and card:
            return cls.for_card(LoyaltyState.OFFLINE, card)
        raise LoyaltyBlockError(
            f"no loyalty block for {type(error).__name__}: the receipt shows none"
        )

    @classmethod
    def from_outcome(
        cls,
        outcome: PurchaseResult | ProcessingResponse | LoyaltyError | None,
        card: str | None,
        balance_before: Decimal | None = None,
    ) -> LoyaltyBlock:
        if outcome is None:
            return cls.for_card(LoyaltyState.ANONYMOUS, None)
        if isinstance(outcome, LoyaltyError):
            return cls.from_error(outcome, card)
        if isinstance(outcome, ProcessingResponse):
            return cls.from_response(outcome, card, balance_before)
        return cls.from_purchase(outcome, card, balance_before)

    # ------------------------------------------------------------------ layout

    def add_to(self, receipt: Receipt, language: str) -> Receipt:
        """Append this block to `receipt` (our printer prints it as is)."""
        texts = texts_for(language)
        receipt.rule("=").bold(texts.title, align="center")
        if self.card:
            receipt.pair(texts.card, self.card)
        if self.state is LoyaltyState.ANONYMOUS:
            receipt.text(texts.anonymous)
        elif self.state is LoyaltyState.BLOCKED:
            receipt.bold(texts.blocked)
        else:
            self._amounts(receipt, texts)
        if self.state is LoyaltyState.OFFLINE:
            receipt.text(texts.offline)
        if self.cheque_message:
            receipt.text(self.cheque_message)
        return receipt.rule("=")

    def _amounts(self, receipt: Receipt, texts: Texts) -> None:
        if self.balance_before is not None:
            receipt.pair(texts.balance_before, money_text(self.balance_before, texts))
        if self.redeemed or self.state is LoyaltyState.NORMAL:
            receipt.pair(texts.redeemed, money_text(self.redeemed, texts))
        if self.state is LoyaltyState.NORMAL:
            receipt.pair(texts.accrued, money_text(self.accrued, texts))
        if self.balance_after is not None:
            receipt.pair(texts.balance_after, money_text(self.balance_after, texts), bold=True)

    def to_receipt(self, language: str) -> Receipt:
        return self.add_to(Receipt(), language)

    def escpos(self, language: str, target: RenderTarget) -> bytes:
        """ESC @, ESC t with the target's code page slot, then the block in that code page."""
        return escpos_bytes(self.to_receipt(language), target)
