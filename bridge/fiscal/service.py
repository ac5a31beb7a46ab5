"""The register's fiscal side: the desk of its registrar, made on the first print.

A register without a registrar never opens the fiscal records nor loads the desk; the
endpoint then answers 409 `no_registrar` with what to add to the config.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

CLOSE_WAIT = 5.0  # seconds a stopping service waits for a fiscal print to end

if TYPE_CHECKING:
    from bridge.config import Config
    from bridge.fiscal.desk import FiscalDesk, Registrar
    from bridge.fiscal.sale import FiscalRequest
    from bridge.service.cheque import RegisterCheque


class FiscalService:
    def __init__(self, config: Config, registrar: Registrar | None = None) -> None:
        """`registrar` overrides the config's (tests with a device the config cannot name)."""
        self.config = config
        self._registrar = registrar
        self._desk: FiscalDesk | None = None
        self._lock = threading.Lock()

    def desk(self) -> FiscalDesk:
        # lazy: the desk, its records and the registrar's driver load with the first
        # print; a register without a registrar never carries them (~0.7 MB)
        from bridge.fiscal.desk import FiscalDesk, FiscalPrintError
        from bridge.fiscal.records import FiscalStore, FiscalStoreError
        from bridge.fiscal.registrar import NoRegistrar, registrar_for

        with self._lock:
            if self._desk is None:
                try:
                    registrar = self._registrar or registrar_for(self.config)
                except NoRegistrar as exc:
                    raise FiscalPrintError("no_registrar", str(exc), state=None) from None
                try:
                    store = FiscalStore(self.config.cheques_path())
                except FiscalStoreError as exc:
                    raise FiscalPrintError(
                        "fiscal_records_unavailable", str(exc), status=503, state=None
                    ) from None
                self._desk = FiscalDesk(registrar, store, language=self.config.receipt.language)
            return self._desk

    def print_cheque(self, cheque: RegisterCheque, request: FiscalRequest) -> dict[str, Any]:
        return self.desk().print_cheque(cheque, request)

    def close(self, timeout: float = CLOSE_WAIT) -> None:
        """Close the records once a print under way has ended (its record must be written);
        past `timeout` they are left to the process's exit, which loses nothing written."""
        with self._lock:
            desk, self._desk = self._desk, None
        if desk is not None and desk.lock.acquire(timeout=timeout):
            try:
                desk.store.close()
            finally:
                desk.lock.release()
