"""The service notices a USB printer plugged back through udev (umockdev's netlink events)."""

from __future__ import annotations

import queue
from pathlib import Path
from typing import Any

import pytest

from bridge.config import parse
from bridge.service.register import Register

try:
    from tests.drivers import umockdev_helpers as mock
except ImportError:  # pragma: no cover - tests/drivers on sys.path instead
    import umockdev_helpers as mock  # type: ignore[no-redef,import-not-found]

pytestmark = pytest.mark.umockdev


def test_printer_plugged_back_is_announced_and_retried(tb: Any, tmp_path: Path) -> None:
    config = parse(
        {
            "processing": {
                "url": "http://127.0.0.1:9/publicapi",
                "login": "a",
                "password": "b",
                "lock_file": str(tmp_path / "lock"),
            },
            "journal": {"path": str(tmp_path / "journal.sqlite")},
            "devices": [
                {"name": "receipt", "kind": "printer", "connection": "usb", "usb": "04b8:0e15"}
            ],
        }
    )
    register = Register(config)
    seen: queue.Queue[dict[str, Any]] = queue.Queue()
    register.events.publish = lambda kind, /, **data: seen.put({"type": kind, **data}) or {}  # type: ignore[method-assign]
    register.start()
    try:
        assert register.devices is not None and register.devices.hotplug is not None
        mock.plug_printer(tb)
        while True:
            event = seen.get(timeout=10)
            if event["type"] == "device_hotplug":
                break
        assert event == {"type": "device_hotplug", "device": "receipt", "action": "add"}
    finally:
        register.stop()
