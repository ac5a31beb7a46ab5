"""EvdevInputTransport against an emulated keyboard-wedge scanner: real python-evdev."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from evdev import ecodes

try:
    from tests.drivers import umockdev_helpers as mock
except ImportError:  # tests/drivers is not a package: pytest put its folder on sys.path
    import umockdev_helpers as mock  # type: ignore[no-redef,import-not-found]

pytestmark = pytest.mark.umockdev

BARCODE = [ecodes.KEY_4, ecodes.KEY_0, ecodes.KEY_0, ecodes.KEY_6, ecodes.KEY_ENTER]


@pytest.fixture
def keyboard(tb: Any) -> mock.Plugged:
    return mock.plug_keyboard(tb)


def codes(answer: dict[str, Any]) -> list[tuple[int, int]]:
    return [(int(code), int(value)) for code, value, _when in answer["events"]]


def test_grabbed_key_events_are_read(keyboard: mock.Plugged) -> None:
    handler, fd, node = keyboard.handler, keyboard.fd, keyboard.devnode
    with mock.EvdevReaderProcess(node) as reader:
        assert reader.opened == {"name": "Honeywell Imaging Scanner"}
        assert handler.grab_calls == [1] and handler.grabbed_by is not None
        before = time.time()
        os.write(fd, mock.key_strokes(BARCODE))
        answer = reader.command("keys")
        assert answer["is_open"] is True
        assert codes(answer) == [(c, v) for c in BARCODE for v in (1, 0)]
        assert all(before - 1 <= when <= time.time() + 1 for _c, _v, when in answer["events"])
        assert reader.command("keys 0.1") == {"events": [], "is_open": True}  # nothing typed
        assert reader.command("close") == {"closed": True}
    assert handler.grab_calls == [1, 0]  # released on close
    assert handler.grabbed_by is None


def test_a_scan_reaches_the_wedge_scanner_device(keyboard: mock.Plugged) -> None:
    digits = [ecodes.KEY_4, ecodes.KEY_6, ecodes.KEY_0, ecodes.KEY_0, ecodes.KEY_0]
    with mock.EvdevReaderProcess(keyboard.devnode) as reader:
        os.write(keyboard.fd, mock.key_strokes([*digits, ecodes.KEY_ENTER]))
        assert reader.command("scan") == {"scans": ["46000"]}


def test_second_reader_is_refused_while_grabbed(keyboard: mock.Plugged) -> None:
    handler, node = keyboard.handler, keyboard.devnode
    with mock.EvdevReaderProcess(node) as first:
        assert "name" in first.opened
        with mock.EvdevReaderProcess(node) as second:
            assert second.opened == {
                "error": "TransportError",
                "message": f"input:{node}: 'Honeywell Imaging Scanner' is grabbed "
                "by another program",
            }
    with mock.EvdevReaderProcess(node) as again:
        assert again.opened == {"name": "Honeywell Imaging Scanner"}
    assert handler.grab_calls == [1, 1, 0, 1, 0]


def test_not_keyboard_like_device_is_refused(tb: Any) -> None:
    keyboard = mock.plug_keyboard(tb, name="Power Button", keys=[ecodes.KEY_POWER])
    handler, node = keyboard.handler, keyboard.devnode
    with mock.EvdevReaderProcess(node) as reader:
        assert reader.opened == {
            "error": "TransportError",
            "message": f"input:{node}: 'Power Button' is not keyboard-like "
            "(no digit and Enter keys)",
        }
    assert handler.grab_calls == []  # refused before grabbing anything


def test_unplug_raises_transport_closed(tb: Any, keyboard: mock.Plugged) -> None:
    node = keyboard.devnode
    with mock.EvdevReaderProcess(node) as reader:
        mock.unplug_keyboard(tb, keyboard)
        assert reader.command("keys") == {
            "events": [],
            "error": "TransportClosed",
            "message": f"input:{node}: input device unplugged",
            "is_open": False,
        }
