"""Loyalty cards: a card's bonus balance, asked of processing (or the journal, offline)."""

from __future__ import annotations

from fastapi import APIRouter

from bridge.api.models import BalanceOut
from bridge.api.problems import Json
from bridge.api.routes.deps import ERRORS, RegisterDep, in_turn
from bridge.loyalty.offline import LocalResponse
from bridge.loyalty.protocol import Identifier, Operation, mask_card
from bridge.service.cheque import ChequeError

router = APIRouter()


@router.get("/v1/cards/{number}/balance", response_model=BalanceOut, responses=ERRORS)
async def balance(register: RegisterDep, number: str) -> Json:
    if not (4 <= len(number) <= 64 and number.isascii() and number.isalnum()):
        raise ChequeError("bad_card", "a card number is 4-64 letters or digits", 422)
    oc = register.offline
    request = oc.prepare(Operation.BALANCE, identifier=Identifier(value=number))
    response = await in_turn(register, lambda: oc.send(request))
    return Json(
        {
            "card": mask_card(number),
            "balance": response.balance,
            "offline": isinstance(response, LocalResponse),
            "cashierMessage": response.cashier_message,
        }
    )
