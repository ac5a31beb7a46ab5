"""EvdevInputTransport's refusals, which need no input device at all."""

from __future__ import annotations

from pathlib import Path

import pytest
from evdev import ecodes

from drivers.transport import TransportClosed, TransportError
from drivers.transport.evdev_input import EvdevInputTransport, KeyEvent, is_keyboard_like


def test_missing_node_is_closed_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(TransportClosed, match="event0: no such input device"):
        EvdevInputTransport(str(tmp_path / "event0")).open()


def test_a_file_that_is_no_input_device_is_named(tmp_path: Path) -> None:
    path = tmp_path / "not-an-input-device"
    path.write_bytes(b"")
    transport = EvdevInputTransport(str(path))
    with pytest.raises(TransportError, match="not-an-input-device: cannot open"):
        transport.open()
    assert not transport.is_open


def test_bytes_api_points_at_key_events() -> None:
    wedge = EvdevInputTransport("/dev/input/event0")
    with pytest.raises(TransportError, match="use read_key_events"):
        wedge.read()
    with pytest.raises(TransportError, match="cannot be written to"):
        wedge.write(b"x")
    with pytest.raises(TransportClosed, match="closed"):
        wedge.read_key_events(0)
    wedge.close()  # idempotent on a never-opened transport
    assert repr(wedge) == "EvdevInputTransport('input:/dev/input/event0', open=False)"


def test_keyboard_like_means_digits_and_enter() -> None:
    digits = [getattr(ecodes, f"KEY_{d}") for d in range(10)]
    assert is_keyboard_like({ecodes.EV_KEY: [*digits, ecodes.KEY_ENTER]})
    assert not is_keyboard_like({ecodes.EV_KEY: digits})
    assert not is_keyboard_like({ecodes.EV_KEY: [ecodes.KEY_POWER]})
    assert not is_keyboard_like({ecodes.EV_REL: [0, 1]})


def test_key_event_is_a_small_value() -> None:
    event = KeyEvent(ecodes.KEY_1, KeyEvent.PRESS, 1.5)
    assert event == KeyEvent(2, 1, 1.5) and hash(event) == hash(KeyEvent(2, 1, 1.5))
