"""The emulator's admin calls: HTTP JSON on loopback, on a port of its own.

GET  /registrar/paper       the paper log: {"lines": [{kind, text, font}], "text": "..."}
GET  /registrar/documents   closed receipts and every fiscal document (shift reports too)
GET  /registrar/state       mode, submode, shift, receipt, faults pending, where it is served
POST /registrar/faults      a fault object (or a list): {"kind": "error", "command": "0x80",
                            "code": 107}; {"kind": "silence", "count": 3}; {"kind": "paper_out"}
POST /registrar/faults/clear   lift every fault
POST /registrar/settings    {"stray_ff": true}: send 0xFF after the host's ACK over TCP
POST /registrar/reset       a factory-fresh device: shift closed, paper blank, no faults

Standard library only, like the processing sandbox; it listens on loopback and nowhere
else, because it can change what a fiscal device does.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from sandbox.registrar.faults import Fault, FaultSpecError

if TYPE_CHECKING:
    from sandbox.registrar.emulator import RegistrarEmulator

log = logging.getLogger("posbridge.sandbox.registrar")

ROOT = "/registrar/"
MAX_BODY = 64 * 1024
LOOPBACK = "127.0.0.1"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, emulator: RegistrarEmulator) -> None:
        self.emulator = emulator
        super().__init__((LOOPBACK, port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("admin %s", format % args)

    def do_GET(self) -> None:
        emu = self.server.emulator
        route = self.path.split("?", 1)[0]
        if route == ROOT + "paper":
            lines = [line.as_json() for line in emu.paper]
            self._send(200, {"lines": lines, "text": emu.paper_text()})
        elif route == ROOT + "documents":
            self._send(200, {"documents": emu.documents, "fiscal_documents": emu.fiscal_documents})
        elif route == ROOT + "state":
            self._send(200, {**emu.state_json(), "endpoints": emu.endpoints})
        else:
            self._send(404, {"error": f"no such view {route}; see {ROOT}paper, documents, state"})

    def do_POST(self) -> None:
        emu = self.server.emulator
        route = self.path.split("?", 1)[0]
        try:
            body = self._body()
            if route == ROOT + "faults":
                specs = body if isinstance(body, list) else [body]
                faults = [Fault.from_json(spec) for spec in specs]
                for fault in faults:
                    emu.inject(fault)
                self._send(200, {"faults": emu.pending_faults()})
            elif route == ROOT + "faults/clear":
                emu.clear_faults()
                self._send(200, {"faults": emu.pending_faults()})
            elif route == ROOT + "settings":
                if not isinstance(body, dict) or not isinstance(body.get("stray_ff"), bool):
                    raise FaultSpecError('settings take {"stray_ff": true|false}')
                emu.stray_ff = body["stray_ff"]
                self._send(200, {"stray_ff": emu.stray_ff})
            elif route == ROOT + "reset":
                emu.reset()
                self._send(200, emu.state_json())
            else:
                self._send(404, {"error": f"no such call {route}"})
        except (FaultSpecError, ValueError) as bad:
            self._send(400, {"error": str(bad)})

    def _body(self) -> Any:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ValueError("Content-Length is not a number") from None
        if length > MAX_BODY:
            raise ValueError(f"body over {MAX_BODY} bytes")
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except json.JSONDecodeError as bad:
            raise ValueError(f"body is not JSON: {bad.msg} at {bad.pos}") from None

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class AdminServer:
    """Serves the admin calls of one emulator until stopped."""

    def __init__(self, emulator: RegistrarEmulator, port: int = 0) -> None:
        self._server = _Server(port, emulator)
        self.port: int = self._server.server_address[1]
        self.url = f"http://{LOOPBACK}:{self.port}{ROOT}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="registrar-admin", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
