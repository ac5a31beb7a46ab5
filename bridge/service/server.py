"""The service process: the register plus the POS API under uvicorn.

`run()` is what `posbridge run` does in the main thread (uvicorn handles SIGTERM and
SIGINT there); `start()`/`stop()` run the same thing in a background thread for the
demo and the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from bridge.api.app import create_app
from bridge.api.connections import Guard, connection_cap, protocol_for
from bridge.config import Config
from bridge.loyalty.client import LoyaltyClient
from bridge.service.register import Register


class _Server(uvicorn.Server):
    """uvicorn with a 'listening now' event instead of polling for it."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self.on_exit = on_exit  # run (in a thread of its own) at the first signal

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT stop the service and the process exits 0 (uvicorn's own handler
        re-raises the signal after shutdown, which systemd would log as a kill)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        wanted = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in wanted}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.should_exit:  # a second signal: stop waiting for open connections
            self.force_exit = True
        elif self.on_exit is not None:
            # not in the handler itself: it may have interrupted this thread holding a
            # lock on_exit needs
            threading.Thread(target=self.on_exit, name="posbridge-stopping", daemon=True).start()
        self.should_exit = True


def _settle_heap() -> None:
    """Take what start-up built (FastAPI's routes, pydantic's validators, the config) out
    of the garbage collector's sight: it lives as long as the process.  Without this a
    full collection while serving walks it all; measured here a 90 ms pause in the middle
    of the till's calls, none with it.  Only for the service's own process (`run`): a
    host process that starts a Service in a thread keeps its collector as it was."""
    gc.collect()
    gc.freeze()


class Service:
    def __init__(
        self,
        config: Config,
        token: str,
        *,
        client: LoyaltyClient | None = None,
        devices: bool = True,
    ) -> None:
        self.config = config
        self.register = Register(config, client=client, devices=devices)
        self.app = create_app(self.register, token)
        # the header deadline and the connection cap: see bridge.api.connections
        self.guard = Guard(
            max_connections=connection_cap(config.api.max_connections),
            header_timeout=config.api.header_timeout,
        )
        self._server = _Server(
            uvicorn.Config(
                self.app,
                host=config.api.host,
                port=config.api.port,
                log_config=None,
                http=protocol_for(self.guard),
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=5,
                proxy_headers=False,
                server_header=False,  # loopback only: no proxy to trust
                ws="none",  # no WebSocket endpoint: no WebSocket stack to load (0.7 MB) or expose
            ),
            on_exit=self._stopping,
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self.config.api.host
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.config.api.port}"

    def run(self) -> None:
        self.register.start()
        _settle_heap()
        try:
            self._server.run()
        finally:
            self.register.events.close()
            self.register.stop()

    def start(self, timeout: float = 30.0) -> Service:
        self.register.start()
        self._thread = threading.Thread(target=self._serve, name="posbridge-api", daemon=True)
        self._thread.start()
        if not self._server.ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"the POS API did not start on {self.url}")
        return self

    def _serve(self) -> None:
        asyncio.run(self._server.serve())

    def _stopping(self) -> None:
        """At SIGTERM: the API's open requests must not wait out a stuck processing (the
        graceful shutdown would wait for them), nor event streams hold the exit."""
        self.register.offline.client.stop_sending()
        self.register.events.close()

    def stop(self) -> None:
        self._stopping()
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)
            self._thread = None
        self.register.stop()

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
