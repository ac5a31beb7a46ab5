"""The loyalty block of a register cheque, for the POS (text and ESC/POS) or our printer."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from bridge.receipts.loyalty_block import LoyaltyBlock, LoyaltyState
from bridge.receipts.render import loyalty_outputs

if TYPE_CHECKING:
    from bridge.config import Config
    from bridge.service.cheque import RegisterCheque
    from drivers.printer.document import Receipt


def block_for(cheque: RegisterCheque) -> LoyaltyBlock:
    if cheque.card is None:
        state = LoyaltyState.ANONYMOUS
    elif cheque.card_blocked:
        state = LoyaltyState.BLOCKED
    elif cheque.queued:
        state = LoyaltyState.OFFLINE
    else:
        state = LoyaltyState.NORMAL
    return LoyaltyBlock.for_card(
        state,
        cheque.card,
        balance_before=cheque.balance_before,
        balance_after=cheque.balance_after,
        accrued=cheque.accrued or Decimal(0),
        redeemed=cheque.redeemed,
        cheque_message=cheque.cheque_message,
    )


def loyalty_receipt(cheque: RegisterCheque, config: Config) -> tuple[list[str], bytes]:
    """Text lines and ESC/POS bytes, for a POS that prints on its own (fiscal) printer."""
    return loyalty_outputs(block_for(cheque), config)


def loyalty_document(cheque: RegisterCheque, config: Config) -> Receipt:
    """The block as a document for our printer, cut after it."""
    return block_for(cheque).to_receipt(config.receipt.language).cut()
