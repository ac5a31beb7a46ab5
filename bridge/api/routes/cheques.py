"""Cheques: open, lines, card, the loyalty steps, payment, refund, and the shift's close.

`LANE` holds the till's body-less actions (calculate, confirm, cancel): routes like the
others here, and also what the front door's lane calls, with the register first.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import APIRouter

from bridge.api.models import (
    CardIn,
    ChequeIn,
    ChequeOut,
    LineIn,
    LinesIn,
    PaymentIn,
    Problem,
    RefundIn,
    RefundOut,
)
from bridge.api.problems import Json
from bridge.api.routes.deps import ERRORS, RegisterDep, cheque_json, in_turn, locally
from bridge.service.cheque import ChequeError, Line
from bridge.service.register import Register

router = APIRouter()
ChequeAction = Callable[[Register, str], Coroutine[Any, Any, Json]]


@router.post(
    "/v1/cheques",
    status_code=201,
    response_model=ChequeOut,
    responses={**ERRORS, 429: {"model": Problem}},
)
async def open_cheque(register: RegisterDep, body: ChequeIn) -> Json:
    """Open a cheque; past `cheques.max_open` open ones: 429 `too_many_open_cheques`."""

    def work() -> Json:
        cheque = register.book.open(body.number, body.card, [_line(x) for x in body.lines])
        register.publish_cheque("cheque_opened", cheque)
        return cheque_json(cheque, 201)

    return await locally(register, work)


@router.get("/v1/cheques/{cheque_id}", response_model=ChequeOut, responses=ERRORS)
async def get_cheque(register: RegisterDep, cheque_id: str) -> Json:
    # an older closed cheque is read back from the cheque file
    return await locally(register, lambda: cheque_json(register.book.get(cheque_id)))


@router.post("/v1/cheques/{cheque_id}/lines", response_model=ChequeOut, responses=ERRORS)
async def add_lines(register: RegisterDep, cheque_id: str, body: LinesIn) -> Json:
    def work() -> Json:
        book = register.book
        cheque = book.get(cheque_id)
        book.set_lines(cheque, [_line(x) for x in body.lines], replace=body.replace)
        return cheque_json(cheque)

    return await locally(register, work)


@router.put("/v1/cheques/{cheque_id}/card", response_model=ChequeOut, responses=ERRORS)
async def attach_card(register: RegisterDep, cheque_id: str, body: CardIn) -> Json:
    """Another card starts the cheque's loyalty afresh; refused (409 `redemption_held`)
    while bonuses of the previous card are held: release them first (DELETE payments)."""

    def work() -> Json:
        cheque = register.book.attach_card(body.card, cheque_id)
        if cheque is None:  # not reached: only a card presented with no cheque named finds none
            raise ChequeError("cheque_not_found", f"no cheque {cheque_id}", 404)
        return cheque_json(cheque)

    return await locally(register, work)


async def calculate(register: RegisterDep, cheque_id: str) -> Json:
    """Discount and bonuses available for the cheque as it stands (nothing is booked)."""
    book = register.book
    cheque = book.get(cheque_id)
    return cheque_json(await in_turn(register, lambda: book.calculate(cheque)))


async def confirm(register: RegisterDep, cheque_id: str) -> Json:
    """Book the purchase: accrual and redemption become final (journaled when offline)."""
    book = register.book
    found = book.get(cheque_id)
    cheque = await in_turn(register, lambda: book.confirm(found))
    register.publish_cheque("cheque_confirmed", cheque)
    return cheque_json(cheque)


async def cancel(register: RegisterDep, cheque_id: str) -> Json:
    """Drop the cheque; a redemption already held at processing is given back."""
    book = register.book
    cheque = book.get(cheque_id)
    return cheque_json(await in_turn(register, lambda: book.cancel(cheque)))


# The till's body-less calls: FastAPI routes (so the OpenAPI document has them), served
# by the front door's lane without FastAPI's stack (see bridge.api.front).
LANE: dict[str, ChequeAction] = {"calculate": calculate, "confirm": confirm, "cancel": cancel}
for _action, _handler in LANE.items():
    router.post(
        f"/v1/cheques/{{cheque_id}}/{_action}",
        response_model=ChequeOut,
        responses=ERRORS,
        name=_action,
    )(_handler)


@router.post("/v1/cheques/{cheque_id}/payment", response_model=ChequeOut, responses=ERRORS)
async def payment(register: RegisterDep, cheque_id: str, body: PaymentIn) -> Json:
    book = register.book
    cheque = book.get(cheque_id)
    return cheque_json(await in_turn(register, lambda: book.pay(cheque, body.amount)))


@router.delete("/v1/cheques/{cheque_id}/payments", response_model=ChequeOut, responses=ERRORS)
async def release_payments(register: RegisterDep, cheque_id: str) -> Json:
    """Give back the bonuses held for the cheque (journaled); it stays open, same card."""
    book = register.book
    cheque = book.get(cheque_id)
    return cheque_json(await in_turn(register, lambda: book.release_redemption(cheque)))


@router.post("/v1/cheques/{cheque_id}/refund", response_model=RefundOut, responses=ERRORS)
async def refund(register: RegisterDep, cheque_id: str, body: RefundIn | None = None) -> Json:
    """Refund lines (all that is left when no lines are given); asking for more than is
    left of a line or of the cheque is refused at once (409 `over_refund`)."""
    positions: dict[int, Decimal] | None = None
    if body is not None and body.lines is not None:
        positions = {}
        for ln in body.lines:
            positions[ln.position] = positions.get(ln.position, Decimal(0)) + ln.quantity
    book = register.book
    cheque = book.get(cheque_id)
    return Json(await in_turn(register, lambda: book.refund(cheque, positions)))


@router.post("/v1/shift/close", responses=ERRORS)
async def close_shift(register: RegisterDep) -> Json:
    """Cancel every open cheque (held bonuses given back, through the journal)."""
    # each one announced as `cheque_expired`
    closed = await locally(register, lambda: register.book.expire(everything=True))
    return Json(
        {
            "cancelled": len(closed),
            "queued": sum(1 for c in closed if c.queued),
            "cheques": [c.number for c in closed],
        }
    )


def _line(body: LineIn) -> Line:
    return Line(
        goods_id=body.goods_id,
        name=body.name,
        price=body.price,
        quantity=body.quantity,
        amount=body.line_amount(),
        barcode=body.barcode,
    )
