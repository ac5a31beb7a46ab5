"""Hotplug on an emulated machine: pyudev enumeration, netlink add/remove, polling."""

from __future__ import annotations

import queue
from typing import Any

import pytest
import pyudev

from drivers.hotplug import Backoff, DeviceMatch, HotplugEvent, HotplugMonitor, find_present
from drivers.transport.usb import UsbId

try:
    from tests.drivers import umockdev_helpers as mock
except ImportError:  # tests/drivers is not a package: pytest put its folder on sys.path
    import umockdev_helpers as mock  # type: ignore[no-redef,import-not-found]

pytestmark = pytest.mark.umockdev

PRINTER = DeviceMatch("usb", usb=UsbId.parse("04b8:0e15:ABC123"))


def test_enumeration_finds_devices_by_usb_id_and_node(tb: Any) -> None:
    context = pyudev.Context()
    assert not find_present(context, PRINTER).present
    mock.plug_printer(tb)
    acm = mock.plug_acm(tb)
    kbd = mock.plug_keyboard(tb)
    found = find_present(context, PRINTER)
    assert (found.present, found.devnode, found.syspath) == (
        True,
        mock.PRINTER_DEVNODE,
        mock.PRINTER_SYSPATH,
    )
    assert not find_present(context, DeviceMatch("usb", usb=UsbId.parse("04b8:0e15:OTHER"))).present
    assert find_present(context, DeviceMatch("tty", usb=UsbId.parse("0c2e:0b62"))).devnode == (
        acm.devnode
    )
    wedge = find_present(context, DeviceMatch("input", usb=UsbId.parse("0c2e:0b61")))
    assert wedge.devnode == kbd.devnode
    assert find_present(context, DeviceMatch("input", devnode=kbd.devnode)).present


def test_udev_add_and_remove_events_reach_the_listener(tb: Any) -> None:
    events: queue.Queue[HotplugEvent] = queue.Queue()
    # polling only every 60 s: what arrives in this test came through netlink
    with HotplugMonitor(backoff=Backoff(60, 60)) as monitor:
        assert monitor.using_udev
        monitor.watch(PRINTER, events.put)
        monitor.watch(DeviceMatch("usb", usb=UsbId.parse("1234:5678")), events.put)
        mock.plug_printer(tb)  # umockdev sends "add" as the kernel does
        added = events.get(timeout=5)
        assert (added.action, added.match, added.source) == ("add", PRINTER, "udev")
        assert (added.devnode, added.syspath) == (mock.PRINTER_DEVNODE, mock.PRINTER_SYSPATH)
        mock.remove(tb, mock.PRINTER_SYSPATH)  # sends "remove" as the kernel does
        removed = events.get(timeout=5)
        assert (removed.action, removed.match, removed.source) == ("remove", PRINTER, "udev")
    assert events.empty()  # the other watched device never showed up


def test_polling_notices_a_device_without_events(tb: Any) -> None:
    events: queue.Queue[HotplugEvent] = queue.Queue()
    with HotplugMonitor(udev=False, backoff=Backoff(0.02, 0.2)) as monitor:
        monitor.watch(PRINTER, events.put)
        printer = mock.plug_printer(tb)  # no uevent: only a sysfs scan can see it
        added = events.get(timeout=5)
        assert (added.action, added.source, added.devnode) == ("add", "poll", mock.PRINTER_DEVNODE)
        mock.unplug_printer(tb, printer)
        assert events.get(timeout=5).action == "remove"
