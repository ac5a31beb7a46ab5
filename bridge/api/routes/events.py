"""The register's event stream for the POS (Server-Sent Events)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from bridge.api.routes.deps import ERRORS, RegisterDep
from bridge.loyalty.protocol import dumps
from bridge.service.events import CLOSED

router = APIRouter()
KEEP_ALIVE = 15.0  # seconds without an event before a comment line keeps the stream open


@router.get("/v1/events", responses=ERRORS, response_class=StreamingResponse)
async def events(register: RegisterDep) -> StreamingResponse:
    """Server-Sent Events: scans (classified), swipes (masked), device status, connectivity."""
    sub = register.events.subscribe()

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b": posbridge events\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(sub.get(), timeout=KEEP_ALIVE)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if event is CLOSED:
                    return
                yield (
                    f"id: {event['id']}\nevent: {event['type']}\ndata: ".encode()
                    + dumps(event, floats=True)
                    + b"\n\n"
                )
        finally:
            sub.close()

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )
