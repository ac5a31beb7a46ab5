"""Receipts: the loyalty block for the POS's own receipt, or printed on our printer."""

from __future__ import annotations

import base64

from fastapi import APIRouter

from bridge.api.models import PrintOut, ReceiptIn, ReceiptOut
from bridge.api.problems import Json
from bridge.api.routes.deps import ERRORS, RegisterDep

router = APIRouter()


@router.post("/v1/receipts/loyalty", response_model=ReceiptOut, responses=ERRORS)
def receipt(register: RegisterDep, body: ReceiptIn) -> Json:
    cheque = register.book.get(body.cheque_id)
    lines, escpos = register.loyalty_receipt(cheque)
    return Json(
        {
            "chequeId": cheque.id,
            "columns": register.config.receipt.columns,
            "lines": lines,
            "escposBase64": base64.b64encode(escpos).decode(),
        }
    )


@router.post("/v1/receipts/print", response_model=PrintOut, status_code=202, responses=ERRORS)
def print_receipt(register: RegisterDep, body: ReceiptIn) -> Json:
    job_id, state = register.print_loyalty_receipt(register.book.get(body.cheque_id))
    return Json({"jobId": job_id, "state": state}, status_code=202)
