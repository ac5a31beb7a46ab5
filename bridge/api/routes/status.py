"""What the register is doing: its status, and the Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from bridge.api.models import StatusOut
from bridge.api.problems import Json
from bridge.api.routes.deps import ERRORS, RegisterDep, locally
from bridge.metrics import CONTENT_TYPE

router = APIRouter()


@router.get("/v1/status", response_model=StatusOut, responses=ERRORS)
async def status(register: RegisterDep) -> Json:
    return Json(await locally(register, register.status))  # the journal's counts: SQLite


@router.get("/metrics", responses=ERRORS, response_class=Response, include_in_schema=True)
async def metrics(register: RegisterDep) -> Response:
    """Prometheus text: requests by operation and outcome, latency, journal, devices."""
    text = await locally(register, register.metrics.render)
    return Response(text, media_type=CONTENT_TYPE)
