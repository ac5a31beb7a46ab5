"""`RegistrarEmulator`: one emulated Shtrih-M registrar, served on ptys and TCP ports.

Tests and the demo hold this object: they start servers on it, inject faults, and read
the paper and the closed fiscal documents.  Every server shares the one device, as the
serial and network ports of a real registrar do.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from sandbox.registrar.commands import Identity, Registrar
from sandbox.registrar.faults import DEVICE_KINDS, Fault, FaultBook, FaultKind
from sandbox.registrar.paper import Paper, PaperLine
from sandbox.registrar.servers import PtyServer, TcpServer
from sandbox.registrar.state import MODE_TEXT, DeviceState

DEFAULT_TCP_PORT = 7778


class RegistrarEmulator:
    """One emulated device behind any number of ptys and TCP ports, with its faults."""

    def __init__(
        self,
        *,
        password: int = 30,
        admin_password: int = 30,
        line_width: int = 48,
        stray_ff: bool = False,
        auto_cut: bool = True,
        identity: Identity | None = None,
        byte_timeout: float = 0.5,
        ack_timeout: float = 1.0,
    ) -> None:
        if not 16 <= line_width <= 80:
            raise ValueError(f"line_width must be 16..80 characters, got {line_width}")
        self._paper = Paper()
        self.faults = FaultBook()
        self.device = Registrar(
            password=password,
            admin_password=admin_password,
            line_width=line_width,
            paper=self._paper,
            faults=self.faults,
            identity=identity or Identity(),
            auto_cut=auto_cut,
        )
        self.stray_ff = stray_ff  # over TCP: send 0xFF after the host's ACK, as some devices do
        self._byte_timeout = byte_timeout
        self._ack_timeout = ack_timeout
        self._admin: Any = None  # admin.AdminServer, imported lazily (http.server)
        self._ptys: list[PtyServer] = []
        self._tcps: list[TcpServer] = []
        self._lock = threading.Lock()

    # -- servers --------------------------------------------------------------------------

    def start_pty(self, link: str | Path | None = None) -> str:
        """Serve on a new pty; the slave's path (and `link`, a symlink to it, if given)."""
        server = PtyServer(
            self.device.execute,
            self.faults,
            link=Path(link) if link is not None else None,
            byte_timeout=self._byte_timeout,
            ack_timeout=self._ack_timeout,
        )
        with self._lock:
            self._ptys.append(server)
        return server.path

    def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve on TCP (7778 on a real device; 0 picks a free port); the bound port."""
        server = TcpServer(
            self.device.execute,
            self.faults,
            host=host,
            port=port,
            stray_ff=lambda: self.stray_ff,
            byte_timeout=self._byte_timeout,
            ack_timeout=self._ack_timeout,
        )
        with self._lock:
            self._tcps.append(server)
        return server.port

    def start_admin(self, port: int = 0) -> str:
        """Serve the admin calls (HTTP JSON, loopback); their base URL."""
        # lazy: http.server; most tests never start the admin
        from sandbox.registrar.admin import AdminServer

        with self._lock:
            if self._admin is None:
                self._admin = AdminServer(self, port)
            return str(self._admin.url)

    def stop(self) -> None:
        with self._lock:
            servers: list[PtyServer | TcpServer] = [*self._ptys, *self._tcps]
            self._ptys.clear()
            self._tcps.clear()
            admin, self._admin = self._admin, None
        for server in servers:
            server.stop()
        if admin is not None:
            admin.stop()

    @property
    def endpoints(self) -> dict[str, list[Any]]:
        """Where it is served: pty paths (with their symlinks) and TCP ports."""
        with self._lock:
            return {
                "pty": [{"path": p.path, "link": p.link and str(p.link)} for p in self._ptys],
                "tcp": [{"host": t.host, "port": t.port} for t in self._tcps],
            }

    def __enter__(self) -> RegistrarEmulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what was printed -----------------------------------------------------------------

    @property
    def paper(self) -> list[PaperLine]:
        return self._paper.lines()

    def paper_text(self) -> str:
        return self._paper.text()

    @property
    def documents(self) -> list[dict[str, Any]]:
        """Closed fiscal receipts, oldest first (shift reports are in `fiscal_documents`)."""
        return [doc for doc in self.fiscal_documents if doc["kind"] == "receipt"]

    @property
    def fiscal_documents(self) -> list[dict[str, Any]]:
        with self.device.lock:
            return [document.as_json() for document in self.device.state.documents]

    def commands_seen_count(self, code: int) -> int:
        """How many times the device executed `code` (a replayed answer does not count)."""
        with self.device.lock:
            return self.device.commands_seen[code]

    @property
    def state(self) -> DeviceState:
        return self.device.state

    def state_json(self) -> dict[str, Any]:
        with self.device.lock:
            s = self.device.state
            receipt = s.receipt
            return {
                "mode": s.mode,
                "mode_byte": s.mode_byte,
                "submode": s.submode,
                "mode_text": MODE_TEXT.get(s.mode, str(s.mode)),
                "shift_open": s.shift_open,
                "shift_number": s.shift_number,
                "shift_over_24h": s.over_24h(),
                "receipt_open": receipt is not None,
                "receipt_items": len(receipt.items) if receipt is not None else 0,
                "last_document": s.last_document,
                "paper_out": s.paper_out,
                "cover_open": s.cover_open,
                "fn_full": s.fn_full,
                "fn_missing": s.fn_missing,
                "stray_ff": self.stray_ff,
                "faults": self.pending_faults(),
                "line_width": self.device.line_width,
            }

    # -- faults ---------------------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        if fault.kind not in DEVICE_KINDS:
            self.faults.add(fault)
            return
        with self.device.lock:
            s = self.device.state
            if fault.kind is FaultKind.PAPER_OUT:
                s.paper_out = True
            elif fault.kind is FaultKind.COVER_OPEN:
                s.cover_open = True
            elif fault.kind is FaultKind.FN_FULL:
                s.fn_full = True
            elif fault.kind is FaultKind.FN_MISSING:
                s.fn_missing = True
            elif fault.kind is FaultKind.SHIFT_OVER_24H:
                s.expire_shift(datetime.now().replace(microsecond=0))

    def pending_faults(self) -> list[dict[str, Any]]:
        """Device conditions in force, then link and command faults not yet used up."""
        with self.device.lock:
            s = self.device.state
            conditions = (
                (FaultKind.PAPER_OUT, s.paper_out),
                (FaultKind.COVER_OPEN, s.cover_open),
                (FaultKind.SHIFT_OVER_24H, s.shift_expired),
                (FaultKind.FN_FULL, s.fn_full),
                (FaultKind.FN_MISSING, s.fn_missing),
            )
            device = [{"kind": kind.value} for kind, on in conditions if on]
        return device + self.faults.pending()

    def clear_faults(self) -> None:
        """Lift every fault: paper loaded, cover closed, FN back, the shift no longer over 24 h."""
        self.faults.clear()
        with self.device.lock:
            s = self.device.state
            if s.paper_out and s.receipt is not None:
                s.await_continue = True  # paper back inside a document: 0xB0 resumes
            s.paper_out = s.cover_open = s.fn_full = s.fn_missing = False
            s.shift_expired = False

    def reset(self) -> None:
        """A factory-fresh device: shift closed, no documents, blank paper, no faults."""
        self.faults.clear()
        with self.device.lock:
            self.device.state = DeviceState()
            self.device.commands_seen.clear()
            self._paper.clear()
