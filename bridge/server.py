"""The service process: the register plus the POS API under uvicorn.

`run()` is what `posbridge run` does in the main thread (uvicorn handles SIGTERM and
SIGINT there); `start()`/`stop()` run the same thing in a background thread for the
demo and the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

# modules the service's libraries import and the service never runs: httpx's command line
# (click, and rich and pygments where the dev tools installed them), and pydantic's v1
# layer, which FastAPI imports only to ask whether a route's model is a v1 one; both catch
# the ImportError.  With uvicorn's command line and reloaders (below) ~6.5 MB of the
# service's RSS (bench/service_rss.py)
NEVER_RUN = ("httpx._main", "pydantic.v1")


def _keep_out_unused() -> None:
    """Import what the service runs, not what its libraries import at the top for other
    callers.  A module imported before this (a test process's own use of it) stays as it is.

    uvicorn's package imports its command line (click) and its reloaders (multiprocessing,
    watchfiles) before Config and Server; the service needs only those two, so the package
    is entered without its __init__, and `uvicorn.main` and `uvicorn.run` load the rest on
    first use, as the real package would have them."""
    for name in NEVER_RUN:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: ImportError
    if "uvicorn" in sys.modules:
        return
    spec = importlib.util.find_spec("uvicorn")
    if spec is None or spec.loader is None:
        return  # not installed: the import below says so
    package = importlib.util.module_from_spec(spec)
    sys.modules["uvicorn"] = package
    try:
        # lazy: the package must be in sys.modules, without its __init__, first
        from uvicorn._version import __version__
        from uvicorn.config import Config
        from uvicorn.server import Server
    except BaseException:
        del sys.modules["uvicorn"]
        raise
    package.__version__ = __version__  # type: ignore[attr-defined]
    package.Config = Config  # type: ignore[attr-defined]
    package.Server = Server  # type: ignore[attr-defined]
    package.__getattr__ = _uvicorn_rest  # type: ignore[method-assign]


def _uvicorn_rest(name: str) -> Any:
    """`uvicorn.main`, `uvicorn.run`: the rest of uvicorn's __init__, when first asked for."""
    if name not in ("main", "run"):
        raise AttributeError(f"module 'uvicorn' has no attribute {name!r}")
    # lazy: the command line, for a caller that asks for it (never the service)
    import uvicorn.main as cli  # binds uvicorn.main to the module: rebound below

    package = sys.modules["uvicorn"]
    package.main, package.run = cli.main, cli.run  # type: ignore[attr-defined]
    return getattr(package, name)


_keep_out_unused()

import uvicorn  # noqa: E402 - after the keep-out

from bridge.api.app import create_app  # noqa: E402
from bridge.api.connections import Guard, connection_cap, protocol_for  # noqa: E402
from bridge.config import Config  # noqa: E402
from bridge.loyalty.client import LoyaltyClient  # noqa: E402
from bridge.service.register import Register  # noqa: E402


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


# A thread running Python keeps the sender that processing has just answered waiting for
# the GIL up to the switch interval: 5 ms by default, most of a request's round trip, and
# processing idle all that time.  Measured with 50 tills (bench/concurrency.py): +1-2
# points of processing's busy time at 0.5 ms.  Set for the service's own process only: a
# library must not change it for its host.
SWITCH_INTERVAL = 0.0005


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
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)
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
