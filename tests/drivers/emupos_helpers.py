"""Run emupos (an independent ESC/POS printer emulator) as a subprocess for the printer tests.

emupos needs Python >= 3.13, so it lives in its own venv (tools/emupos-venv.sh makes
`.venv-emupos`).  Each `Emupos` gets its own loopback ports and pty link directory, and a
second small process in that venv follows the emupos event stream (a WebSocket) so tests can
wait for "job completed" and check that nothing we sent was an unknown command.  Readiness is
waited for on the process's own output and events, never by sleeping.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.net import free_port
from tests.stand_ins import missing

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 30.0

# The event follower, run with the emupos venv's Python (it has `websockets`).
_FOLLOWER = """
import sys
from websockets.sync.client import connect
with connect(sys.argv[1], open_timeout=10) as ws:
    print("READY", flush=True)
    for message in ws:
        print(message, flush=True)
"""


def emupos_venv() -> Path:
    return Path(os.environ.get("EMUPOS_VENV", REPO / ".venv-emupos"))


def require_emupos() -> Path:
    """The emupos executable, or skip the test saying how to get it."""
    exe = emupos_venv() / "bin" / "emupos"
    if not exe.exists():
        missing(f"emupos not installed at {exe} (needs Python >= 3.13): run tools/emupos-venv.sh")
    return exe


def require_zbarimg() -> str:
    found = shutil.which("zbarimg")
    if found is None:
        missing("zbarimg not installed (apt-get install zbar-tools)")
    return found


def write_profile(
    path: Path, *, width_dots: int, code_pages: dict[int, str], name: str = "Test printer"
) -> Path:
    """An emupos printer profile (the built-in ones are all 576 dots wide)."""
    pages = "\n".join(f"  {slot}: {page}" for slot, page in code_pages.items())
    path.write_text(
        "type: printer\n"
        f"name: {name}\n"
        "dpi: 203\n"
        f"width_dots: {width_dots}\n"
        "font_a: { width: 12, height: 24 }\n"
        "font_b: { width: 9, height: 17 }\n"
        f"code_pages:\n{pages}\n"
        f"default_code_page: {min(code_pages)}\n"
        "drawer_sensor_open_level: high\n"
        "serial: { baud: 9600, data_bits: 8, parity: none, stop_bits: 1 }\n"
    )
    return path


@dataclass
class Emupos:
    """One emupos process: printer `front` on TCP (and a pty), plus any `extra` printers.

    `extra` maps a device id to a profile (name or file); each gets its own TCP port in
    `ports`, so tests needing several head widths share one emupos start.
    """

    workdir: Path
    profile: str = "epson-tm-t20iii"
    tcp_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    serial: bool = True
    extra: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    _proc: subprocess.Popen[bytes] | None = None
    _follower: subprocess.Popen[bytes] | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)

    device = "front"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/api/v1"

    @property
    def pty_link(self) -> Path:
        return self.workdir / "emupos" / self.device

    def start(self) -> Emupos:
        exe = require_emupos()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ports = {self.device: self.tcp_port}
        devices = [self._device_yaml(self.device, self.profile, self.serial)]
        for device, profile in self.extra.items():
            self.ports[device] = free_port()
            devices.append(self._device_yaml(device, profile, False))
        config = self.workdir / "emupos.yaml"
        config.write_text(
            "schema: 1\n"
            f"api: {{ host: 127.0.0.1, port: {self.api_port} }}\n"
            "devices:\n" + "".join(devices)
        )
        env = {**os.environ, "TMPDIR": str(self.workdir), "COLUMNS": "200", "NO_COLOR": "1"}
        self._proc = subprocess.Popen(
            [str(exe), "run", "--config", str(config)],
            cwd=self.workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._wait_line(self._proc, b"Showing events", "emupos start")
        self._follower = subprocess.Popen(
            [
                str(emupos_venv() / "bin" / "python"),
                "-c",
                _FOLLOWER,
                f"ws://127.0.0.1:{self.api_port}/api/v1/events",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._wait_line(self._follower, b"READY", "emupos event stream")
        threading.Thread(target=self._follow, daemon=True).start()
        return self

    def _device_yaml(self, device: str, profile: str, serial: bool) -> str:
        connections = f"      - tcp: {{ host: 127.0.0.1, port: {self.ports[device]} }}\n"
        if serial:
            connections += "      - serial: { pty: true }\n"
        return (
            f"  - id: {device}\n"
            "    type: printer\n"
            f"    profile: {profile}\n"
            "    job_idle_timeout_ms: 5000\n"
            f"    receipts_dir: {self.workdir / 'receipts'}\n"
            f"    connections:\n{connections}"
        )

    def _wait_line(self, proc: subprocess.Popen[bytes], marker: bytes, what: str) -> None:
        assert proc.stdout is not None
        seen = b""
        deadline = time.monotonic() + READY_TIMEOUT
        while marker not in seen:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([proc.stdout], [], [], max(left, 0))
            if not ready:
                self.stop()
                raise AssertionError(f"{what}: not ready in {READY_TIMEOUT}s; output: {seen!r}")
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                self.stop()
                raise AssertionError(f"{what}: exited early; output: {seen!r}")
            seen += chunk

    def _follow(self) -> None:
        follower = self._follower
        assert follower is not None and follower.stdout is not None
        for line in follower.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()

    def stop(self) -> None:
        for proc in (self._follower, self._proc):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for proc in (self._follower, self._proc):
            if proc is not None and proc.stdout is not None:
                proc.stdout.close()
        self._proc = self._follower = None

    # events ----------------------------------------------------------------------------------
    def wait_event(
        self, kind: str, count: int = 1, timeout: float = 15.0, device: str | None = None
    ) -> list[dict[str, Any]]:
        """Wait until `count` events of `kind` (from `device`, or any) arrived; return them."""

        def matching() -> list[dict[str, Any]]:
            return [
                e for e in self.events if e["type"] == kind and device in (None, e["device_id"])
            ]

        with self._cond:
            self._cond.wait_for(lambda: len(matching()) >= count, timeout)
            found = matching()
        assert len(found) >= count, f"expected {count} {kind} events; all events: {self.events}"
        return found

    def unknown_commands(self, device: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            return [
                e
                for e in self.events
                if e["type"] in ("printer.command.unknown", "printer.codepage.unsupported")
                and device in (None, e["device_id"])
            ]

    def receipts_completed(self, device: str | None = None) -> list[str]:
        with self._cond:
            return [
                str(e["data"]["receipt_id"])
                for e in self.events
                if e["type"] == "printer.job.completed" and device in (None, e["device_id"])
            ]

    # API -------------------------------------------------------------------------------------
    def receipt_text(self, receipt_id: str, device: str | None = None) -> str:
        url = f"{self.api}/devices/{device or self.device}/receipts/{receipt_id}/text"
        return httpx.get(url, timeout=10).raise_for_status().text

    def receipt_png(self, receipt_id: str, path: Path) -> Path:
        url = f"{self.api}/devices/{self.device}/receipts/{receipt_id}/image"
        path.write_bytes(httpx.get(url, timeout=10).raise_for_status().content)
        return path

    def receipts(self) -> list[dict[str, Any]]:
        url = f"{self.api}/devices/{self.device}/receipts"
        result: list[dict[str, Any]] = httpx.get(url, timeout=10).raise_for_status().json()
        return result

    def set_fault(self, fault: str, active: bool) -> None:
        url = f"{self.api}/devices/{self.device}/faults/{fault}"
        response = httpx.put(url, timeout=10) if active else httpx.delete(url, timeout=10)
        response.raise_for_status()


def zbar_decode(png: Path) -> list[str]:
    """What zbarimg reads from a rendered receipt, as 'TYPE:data' strings."""
    result = subprocess.run(
        [require_zbarimg(), "-q", str(png)], capture_output=True, text=True, timeout=60
    )
    return [line for line in result.stdout.splitlines() if line]


def running_emupos(workdir: Path, **options: Any) -> Iterator[Emupos]:
    emu = Emupos(workdir, **options).start()
    try:
        yield emu
    finally:
        emu.stop()
