"""Fiscal receipts: a confirmed cheque printed on the registrar, loyalty lines inside.

A fiscal print takes seconds of serial traffic: it runs on the register's local threads
(`locally`), never in the loyalty turn, which the till's next cheque needs.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import Field

from bridge.api.models import ApiModel, Problem
from bridge.api.problems import Json, problem
from bridge.api.routes.deps import ERRORS, RegisterDep, locally
from drivers.fiscal.base import DocumentState, FiscalPayment, PaymentKind, TaxRate

router = APIRouter()

PaymentAmount = Annotated[Decimal, Field(gt=0, le=Decimal("1e9"), max_digits=14, decimal_places=2)]


class FiscalPaymentIn(ApiModel):
    kind: PaymentKind = Field(description="cash, electronic (card), prepaid, credit or other")
    amount: PaymentAmount


class FiscalLineIn(ApiModel):
    position: int = Field(ge=1, le=500, description="the cheque's line, 1-based")
    tax: TaxRate | None = Field(default=None, description="else the registrar's default_tax")
    payment_method: int | None = Field(
        default=None, ge=1, le=7, description="признак способа расчёта; 4 = full payment"
    )
    payment_object: int | None = Field(
        default=None, ge=1, le=26, description="признак предмета расчёта; 1 = commodity"
    )


class FiscalIn(ApiModel):
    payments: list[FiscalPaymentIn] = Field(
        min_length=1,
        max_length=16,
        description="what the customer paid; only cash may exceed the sum (the change)",
    )
    lines: list[FiscalLineIn] = Field(
        default_factory=list, max_length=500, description="per-line tax and payment method"
    )


class FiscalOut(ApiModel):
    cheque_id: str
    registrar: str
    state: DocumentState = Field(description="closed: the fiscal document exists")
    document_number: int = Field(description="fiscal document number (ФД)")
    fiscal_sign: str = Field(description="fiscal sign (ФП/ФПД), decimal digits")
    change: Decimal
    lines: list[str] = Field(description="the loyalty lines printed inside the receipt")
    replayed: bool = Field(description="true: printed before, this is the same answer again")


class FiscalProblem(Problem):
    document_state: str | None = Field(
        default=None, description="not_opened, open, closed, cancelled; null: unknown"
    )
    device_error: str | None = None
    device_code: int | None = None


@router.post(
    "/v1/cheques/{cheque_id}/fiscal",
    response_model=FiscalOut,
    responses={**ERRORS, 409: {"model": FiscalProblem}, 503: {"model": FiscalProblem}},
)
async def print_fiscal(register: RegisterDep, cheque_id: str, body: FiscalIn) -> Any:
    """Print the confirmed cheque as a fiscal sale receipt; the answer carries the fiscal
    document number and sign.  Idempotent: a retry never makes a second document."""

    def work() -> Any:
        # lazy: the fiscal desk and sale (~0.7 MB) load with the first print, so a register
        # without a registrar never carries them; this route then answers `no_registrar`
        from bridge.fiscal.desk import FiscalPrintError
        from bridge.fiscal.sale import FiscalRequest, LineFiscal, SaleError

        cheque = register.book.get(cheque_id)
        request = FiscalRequest(
            payments=[FiscalPayment(p.kind, p.amount) for p in body.payments],
            lines={
                ln.position: LineFiscal(ln.tax, ln.payment_method, ln.payment_object)
                for ln in body.lines
            },
        )
        try:
            return Json(register.fiscal.print_cheque(cheque, request))
        except SaleError as exc:
            return problem(422, exc.code, str(exc), str(exc), documentState="not_opened")
        except FiscalPrintError as exc:
            return problem(exc.status, exc.code, str(exc), exc.cashier, **exc.extra())

    return await locally(register, work)
