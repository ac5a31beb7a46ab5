"""Stop working for a POS client that hung up: its call is not sent to processing.

A till that gave up on a call (its own timeout, the cashier pressed cancel) has been
promised nothing, so a loyalty step still waiting for the register's turn must not be
sent after it left.  `unless_gone` runs a request's handler while a watcher waits on the
connection; at `http.disconnect` it cancels the handler.  A step still queued is then
taken out of the queue (`Sequencer.acall`); one already sent finishes or is journaled.

The handler reads its request through the watcher (bodies are read before, at the front
door), so the two never compete for the connection's messages.

The watcher starts only after `grace` seconds (or when the handler first reads): a call
that gets its turn at once is sent at once, so there is nothing to take back, and a
watcher task per till call cost ~60 us, a twentieth of a loopback sale step.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.types import Message, Receive, Send

log = logging.getLogger("posbridge.api")
T = TypeVar("T")
DISCONNECT: Message = {"type": "http.disconnect"}


async def unless_gone(
    run: Callable[[Receive, Send], Awaitable[T]],
    receive: Receive,
    send: Send,
    what: str,
    grace: float = 0.0,
) -> T | None:
    """`run(receive, send)`, or None when the client hung up before it was done.

    Once the answer has started going out nothing is cancelled: the server reports a
    finished answer as a disconnect too."""
    task = asyncio.current_task()
    if task is None:  # a real check: an assert would vanish under python -O
        raise RuntimeError("unless_gone must run in the request's own asyncio task")
    inbox: list[Message] = []
    arrived = asyncio.Event()
    state = {"running": True, "gone": False}

    async def watch() -> None:
        while True:
            message = await receive()
            inbox.append(message)
            arrived.set()
            if message["type"] == "http.disconnect":
                if state["running"]:
                    state["gone"] = True
                    task.cancel()
                return

    loop = asyncio.get_running_loop()
    watchers: list[asyncio.Task[None]] = []

    def start_watching() -> None:
        if not watchers and state["running"]:
            watchers.append(loop.create_task(watch()))

    async def relayed() -> Message:
        start_watching()
        while not inbox:
            arrived.clear()
            await arrived.wait()
        return inbox[0] if inbox[0]["type"] == "http.disconnect" else inbox.pop(0)

    async def sending(message: Message) -> None:
        state["running"] = False
        await send(message)

    if grace > 0:
        later: asyncio.TimerHandle | None = loop.call_later(grace, start_watching)
    else:
        later = None
        start_watching()
    try:
        return await run(relayed, sending)
    except asyncio.CancelledError:
        if not state["gone"]:
            raise  # not ours: the server is stopping
        task.uncancel()
        log.info("POS client went away before %s got its turn: not sent", what)
        return None
    finally:
        state["running"] = False
        if later is not None:
            later.cancel()
        for watcher in watchers:
            watcher.cancel()
