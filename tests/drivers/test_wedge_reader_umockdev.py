"""EvdevWedge (what the service runs for a HID scanner) on an emulated keyboard wedge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from evdev import ecodes

try:
    from tests.drivers import umockdev_helpers as mock
except ImportError:  # tests/drivers is not a package: pytest put its folder on sys.path
    import umockdev_helpers as mock  # type: ignore[no-redef,import-not-found]

pytestmark = pytest.mark.umockdev
ROOT = Path(__file__).resolve().parents[2]


def test_scan_then_unplug_goes_offline(tb: Any) -> None:
    keyboard = mock.plug_keyboard(tb)
    env = dict(os.environ, PYTHONPATH=str(ROOT), UMOCKDEV_DIR=tb.get_root_dir())
    child = subprocess.Popen(
        [sys.executable, mock.__file__, "evdev-wedge", keyboard.devnode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None and child.stdin is not None
    try:
        assert json.loads(child.stdout.readline()) == {"power": "online"}
        digits = [ecodes.KEY_4, ecodes.KEY_6, ecodes.KEY_0, ecodes.KEY_0, ecodes.KEY_1]
        os.write(keyboard.fd, mock.key_strokes([*digits, ecodes.KEY_ENTER]))
        assert json.loads(child.stdout.readline()) == {"scan": "46001"}
        mock.unplug_keyboard(tb, keyboard)
        assert json.loads(child.stdout.readline()) == {"power": "offline"}
        child.stdin.write("stop\n")
        child.stdin.flush()
        assert json.loads(child.stdout.readline()) == {"stopped": True}
    finally:
        child.kill()
        child.wait()
