"""Hotplug without udev: bounded backoff and presence polling on real files."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import pytest

from drivers.hotplug import Backoff, DeviceMatch, HotplugEvent, HotplugMonitor
from drivers.transport.usb import UsbId


def test_backoff_doubles_to_its_bound_and_resets() -> None:
    backoff = Backoff(initial=0.1, maximum=0.5)
    assert [backoff.next() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    backoff.reset()
    assert backoff.next() == 0.1
    with pytest.raises(ValueError, match="0 < initial <= maximum"):
        Backoff(initial=2.0, maximum=1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"subsystem": "bluetooth", "devnode": "/dev/x"}, "'bluetooth': expected one of"),
        ({"subsystem": "tty"}, "needs a USB VID:PID"),
        ({"subsystem": "tty", "devnode": "ttyACM0"}, "absolute /dev path"),
    ],
)
def test_bad_matches_are_named(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DeviceMatch(**kwargs)  # type: ignore[arg-type]


def test_polling_reports_a_node_appearing_and_vanishing(tmp_path: Path) -> None:
    node = tmp_path / "ttyACM0"
    match = DeviceMatch("tty", devnode=str(node))
    events: queue.Queue[HotplugEvent] = queue.Queue()
    threads = threading.active_count()

    def broken(event: HotplugEvent) -> None:
        raise RuntimeError("a listener that fails must not stop the others")

    with HotplugMonitor(udev=False, backoff=Backoff(0.01, 0.05)) as monitor:
        assert not monitor.using_udev
        monitor.watch(match, broken)
        unwatch = monitor.watch(match, events.put)
        assert not monitor.is_present(match)
        node.write_bytes(b"")
        added = events.get(timeout=5)
        assert (added.action, added.devnode, added.source) == ("add", str(node), "poll")
        node.unlink()
        removed = events.get(timeout=5)
        assert (removed.action, removed.source) == ("remove", "poll")
        unwatch()
        node.write_bytes(b"")
        with pytest.raises(queue.Empty):
            events.get(timeout=0.3)  # no longer watched: nothing more arrives
    assert threading.active_count() == threads  # stop() joined the thread


def test_usb_match_without_the_device_is_absent() -> None:
    match = DeviceMatch("usb", usb=UsbId.parse("04b8:0e15:NO-SUCH-SERIAL"))
    assert not HotplugMonitor(udev=False).is_present(match)
