"""Receipts: the loyalty block for the POS's own receipt, or printed on our printer."""

from __future__ import annotations

import base64

from fastapi import APIRouter

from bridge.api.models import PrintOut, ReceiptIn, ReceiptOut
from bridge.api.problems import Json
from bridge.api.routes.deps import ERRORS, RegisterDep, locally

router = APIRouter()


@router.post("/v1/receipts/loyalty", response_model=ReceiptOut, responses=ERRORS)
async def receipt(register: RegisterDep, body: ReceiptIn) -> Json:
    def work() -> tuple[str, list[str], bytes]:
        cheque = register.book.get(body.cheque_id)
        return (cheque.id, *register.loyalty_receipt(cheque))

    cheque_id, lines, escpos = await locally(register, work)
    return Json(
        {
            "chequeId": cheque_id,
            "columns": register.config.receipt.columns,
            "lines": lines,
            "escposBase64": base64.b64encode(escpos).decode(),
        }
    )


@router.post("/v1/receipts/print", response_model=PrintOut, status_code=202, responses=ERRORS)
async def print_receipt(register: RegisterDep, body: ReceiptIn) -> Json:
    job_id, state = await locally(
        register, lambda: register.print_loyalty_receipt(register.book.get(body.cheque_id))
    )
    return Json({"jobId": job_id, "state": state}, status_code=202)
