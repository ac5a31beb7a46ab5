"""HTTP front of the sandbox: Basic auth, overlap detection, routing, start/stop.

Standard library only (`http.server`), HTTP/1.1 keep-alive with Content-Length, Nagle off:
a benchmark that compares our client with a bare httpx loop against this server must
measure the client, not the server.  `stop()` really closes the listening socket and every
open connection, so a client sees processing go away exactly as it would in a shop.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from pydantic import ValidationError

from bridge.loyalty.protocol import (
    GOODS_IMPORT_PATH,
    REQUEST_MODELS,
    ErrorCode,
    Operation,
    ProcessingResponse,
    dumps,
    encode,
    loads,
    match_path,
)
from sandbox.answers import Outcome, bad_request, describe, error_body
from sandbox.processing import Processing
from sandbox.stats import InFlight, Stats
from sandbox.store import Store

log = logging.getLogger("posbridge.sandbox.server")

API_ROOT = "/publicapi"
ADMIN_ROOT = "/sandbox/"
MAX_BODY = 4 * 1024 * 1024
GOODS_IMPORT = "goods_import"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # tracked here, in the accepting thread, so stop() cannot miss a fresh connection
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        self.socket.close()  # new connects are refused from here on
        with self._open_lock:
            open_now = list(self._open)
        for sock in open_now:  # wakes handler threads blocked reading the next request
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        super().server_close()  # joins the handler threads

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "posbridge-sandbox"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 300

    @property
    def sandbox(self) -> SandboxServer:
        return cast(_HTTPServer, self.server).sandbox

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.client_address[0], *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    # ------------------------------------------------------------------ plumbing

    def _dispatch(self, method: str) -> None:
        try:
            body = self._read_body()
            if body is None:
                return
            self._route(method, body)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:
            log.exception("sandbox failed on %s %s", method, self.path)
            self.close_connection = True
            self._send(500, error_body("internal error of the sandbox (see its log)"))

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self._send(411, error_body("send the body with Content-Length, not Transfer-Encoding"))
            return None
        raw = self.headers.get("Content-Length", "0")
        try:
            length = int(raw)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self._send(400, error_body(f"Content-Length {raw!r} is not a byte count"))
            return None
        if length > MAX_BODY:
            self.close_connection = True
            self._send(413, error_body(f"body of {length} bytes, at most {MAX_BODY}"))
            return None
        body = self.rfile.read(length) if length else b""
        if len(body) < length:  # the client hung up mid-request: nothing to process
            self.close_connection = True
            return None
        return body

    def _send(self, status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route(self, method: str, body: bytes) -> None:
        path = urlsplit(self.path).path
        if path.startswith(API_ROOT + "/"):
            sub = path[len(API_ROOT) :]
            matched = match_path(sub)
            if matched is not None or sub == GOODS_IMPORT_PATH:
                if method != "POST":
                    self._send(405, error_body(f"{sub} takes POST"), [("Allow", "POST")])
                elif matched is not None:
                    op, purchase_id, operation_id = matched
                    self._contract(
                        op.value,
                        lambda reg: self._operation(reg, op, purchase_id, operation_id, body),
                    )
                else:
                    self._contract(GOODS_IMPORT, lambda reg: self._goods_import(body))
                return
        elif path.startswith(ADMIN_ROOT):
            self._admin(method, path[len(ADMIN_ROOT) :])
            return
        self._send(404, error_body(f"no such path: {path}"))

    # ------------------------------------------------------------------ contract

    def _credentials(self) -> tuple[str, str] | None:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic" or not token:
            return None
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode()
            login, sep, password = decoded.partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return (login, password) if sep else None

    def _contract(self, operation: str, run: Callable[[str], Outcome]) -> None:
        sandbox = self.sandbox
        sandbox.stats.request(operation)
        creds = self._credentials()
        status = None if creds is None else sandbox.processing.registers.status(*creds)
        if creds is None or status is None:
            sandbox.stats.answered(401, ErrorCode.SYSTEM_ERROR.value)
            why = "no Basic credentials" if creds is None else "unknown login or wrong password"
            self._send(
                401,
                error_body(f"{why} (register login and password from the partner settings)"),
                [("WWW-Authenticate", 'Basic realm="posbridge-sandbox", charset="UTF-8"')],
            )
            return
        register = creds[0]
        if not sandbox.in_flight.enter(register):
            sandbox.stats.overlap()
            outcome = _refusal(
                ErrorCode.PURCHASE_OPERATION_CONFLICT,
                f"another request of register {register} is still being processed",
            )
        else:
            try:
                sandbox.hold()
                if status == "blocked":
                    outcome = _refusal(ErrorCode.DEVICE_BLOCKED, f"register {register} is blocked")
                else:
                    outcome = run(register)
            finally:
                # released before the answer is written: a client that waits for each answer
                # must never be counted as overlapping itself
                sandbox.in_flight.leave(register)
        sandbox.stats.answered(outcome.status, outcome.code)
        self._send(outcome.status, outcome.body)

    def _operation(
        self,
        register: str,
        op: Operation,
        purchase_id: str | None,
        operation_id: str | None,
        body: bytes,
    ) -> Outcome:
        data = _parse(body)
        if isinstance(data, Outcome):
            return data
        try:
            request = REQUEST_MODELS[op].model_validate(data)
        except ValidationError as exc:
            return bad_request(describe(exc))
        operations = self.sandbox.processing.operations
        return operations.execute(register, op, purchase_id, operation_id, request)

    def _goods_import(self, body: bytes) -> Outcome:
        data = _parse(body)
        if isinstance(data, Outcome):
            return data
        return self.sandbox.processing.catalogue.import_goods(data)

    # ------------------------------------------------------------------ admin

    def _admin(self, method: str, what: str) -> None:
        if not ipaddress.ip_address(self.client_address[0]).is_loopback:
            self._send(403, error_body("the sandbox admin endpoints answer loopback clients only"))
            return
        sandbox = self.sandbox
        name, _, arg = what.partition("/")
        arg = unquote(arg)
        want = "POST" if name == "reset-counters" else "GET"
        if name not in ("status", "ledger", "purchases", "reset-counters"):
            self._send(404, error_body(f"no such path: {ADMIN_ROOT}{what}"))
            return
        if method != want:
            self._send(405, error_body(f"{ADMIN_ROOT}{name} takes {want}"), [("Allow", want)])
            return
        found: dict[str, Any] | None
        if name == "status":
            found = sandbox.status()
        elif name == "reset-counters":
            sandbox.reset_counters()
            found = sandbox.status()
        elif name == "ledger":
            found = sandbox.ledger(arg) if arg else None
        else:
            found = sandbox.purchase(arg) if arg else None
        if found is None:
            self._send(404, error_body(f"no {name[:-1] if name.endswith('s') else name} {arg!r}"))
            return
        self._send(200, dumps(found))


def _parse(body: bytes) -> Any:
    """The JSON body, or a 400 Outcome naming what is wrong with it."""
    try:
        data = loads(body.decode("utf-8"))  # the contract says UTF-8: no encoding sniffing
    except UnicodeDecodeError as exc:
        return bad_request(f"body is not UTF-8: {exc.reason}")
    except (ValueError, RecursionError) as exc:
        return bad_request(f"body is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return bad_request("body must be a JSON object")
    return data


def _refusal(code: ErrorCode, message: str) -> Outcome:
    return Outcome(
        200, code.value, encode(ProcessingResponse(code=code.value, error_message=message))
    )


class SandboxServer:
    """A processing server on a SQLite file; `start()`/`stop()` may be repeated."""

    def __init__(
        self,
        db_path: str | Path,
        seed: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
    ) -> None:
        self.db_path = Path(db_path)
        self.host = host
        self._port = port
        self._latency = float(latency)
        self.stats = Stats()
        self.in_flight = InFlight()
        self._store: Store | None = Store(self.db_path, seed)
        self._processing: Processing | None = Processing(self._store, self.stats)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host  # noqa: S104
        if host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self._port}{API_ROOT}"

    @property
    def processing(self) -> Processing:
        if self._processing is None:
            raise RuntimeError("the sandbox is stopped")
        return self._processing

    def start(self) -> SandboxServer:
        """Listen and serve in a background thread; returns once connections are accepted."""
        with self._lock:
            if self._httpd is not None:
                return self
            if self._store is None:
                self._store = Store(self.db_path)
                self._processing = Processing(self._store, self.stats)
            self._halt.clear()
            httpd = _HTTPServer((self.host, self._port), self)
            self._port = httpd.server_address[1]
            self._thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"sandbox:{self._port}",
                daemon=True,
            )
            self._httpd = httpd
            self._thread.start()
            log.info("sandbox processing listening on %s (db %s)", self.url, self.db_path)
            return self

    def stop(self) -> None:
        """Close the listening socket and every connection; the data stays in the file."""
        with self._lock:
            self._halt.set()
            self._wake.set()
            self._wake = threading.Event()
            httpd, thread = self._httpd, self._thread
            self._httpd = self._thread = None
            if httpd is not None:
                httpd.shutdown()
                httpd.server_close()
            if thread is not None:
                thread.join()
            if self._store is not None:
                self._store.close()
            self._store = self._processing = None

    def request_stop(self) -> None:
        """Ask `serve_forever` to return (safe from a signal handler)."""
        self._halt.set()

    def serve_forever(self) -> None:
        self.start()
        try:
            self._halt.wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ knobs and views

    def set_latency(self, seconds: float) -> None:
        """Change the artificial processing time; requests holding now are released at once."""
        with self._lock:
            self._latency = max(0.0, float(seconds))
            released, self._wake = self._wake, threading.Event()
        released.set()

    def hold(self) -> None:
        """The artificial processing time, cut short by `set_latency` or `stop`."""
        latency, wake = self._latency, self._wake
        if latency > 0 and not self._halt.is_set():
            wake.wait(latency)

    def status(self) -> dict[str, Any]:
        return self.stats.snapshot()

    def reset_counters(self) -> None:
        self.stats.reset()

    def ledger(self, card: str) -> dict[str, Any] | None:
        return self.processing.views.ledger(card)

    def purchase(self, purchase_id: str) -> dict[str, Any] | None:
        return self.processing.views.purchase(purchase_id)

    def inventory(self) -> dict[str, Any]:
        return self.processing.views.inventory()
