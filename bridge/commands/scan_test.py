"""Live view of scans and swipes with their classification (card numbers masked).

Opens the configured scanners and card readers (stop the service first: it holds the
ports) and prints one line per event until Ctrl-C, or until --count events.
"""

from __future__ import annotations

import argparse
import queue
import sys

from bridge.commands import UsageError
from drivers.device import DataEvent, ErrorEvent, Event, StatusEvent
from drivers.masking import mask_data, mask_text


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("devices", nargs="*", metavar="NAME", help="devices (default: all)")
    parser.add_argument("--count", type=int, help="stop after this many scans/swipes")
    parser.add_argument("--json", action="store_true", help="one JSON object per event")


def run(args: argparse.Namespace) -> int:
    # lazy: config, barcodes, protocol and the drivers pull in pydantic, biip, pyserial and
    # evdev; the CLI imports this module for its parser, and other commands skip them
    from bridge import config
    from bridge.barcodes import UnusableInput, classify
    from bridge.commands._output import print_json
    from bridge.devices.build import DeviceBuildError, build_driver
    from bridge.loyalty.protocol import mask_card
    from drivers.msr.tracks import CardSwipe
    from drivers.scanner.scan import ScanEvent

    cfg = config.load(args.config)
    chosen = [
        d
        for d in cfg.devices
        if d.kind in ("scanner", "card_reader") and (not args.devices or d.name in args.devices)
    ]
    if not chosen:
        raise UsageError("no scanner or card reader to watch (check [[devices]] and NAME)")
    events: queue.Queue[Event] = queue.Queue()
    try:
        drivers = [build_driver(d) for d in chosen]
    except DeviceBuildError as exc:
        raise UsageError(str(exc)) from None
    devices = [driver.device for driver in drivers]
    feeders = [driver.feeder for driver in drivers if driver.feeder is not None]
    for device in devices:
        device.add_listener(events.put)
        device.open()
        device.claim()
        device.enable()
    for feeder in feeders:  # keyboard wedges: the feeder reads the evdev node into the decoder
        feeder.start()
    print(
        f"watching {', '.join(d.name for d in chosen)}; scan or swipe (Ctrl-C to stop)",
        file=sys.stderr,
        flush=True,
    )
    seen = 0
    try:
        while args.count is None or seen < args.count:
            event = events.get()
            line: dict[str, object]
            if isinstance(event, DataEvent) and isinstance(event.data, ScanEvent):
                raw = (event.data.symbology or "") + event.data.text
                try:
                    line = {
                        "device": event.device,
                        "event": "scan",
                        **classify(raw, cfg.barcodes).to_json(),
                    }
                except UnusableInput as exc:
                    line = {"device": event.device, "event": "error", "message": str(exc)}
                if line.get("kind") == "loyalty_card":
                    line["text"] = line["card"] = mask_card(str(line["text"]))
                elif line.get("kind") == "unknown":
                    line = mask_data(line)  # an unclassified scan may be a payment card
                seen += 1
            elif isinstance(event, DataEvent) and isinstance(event.data, CardSwipe):
                swipe = event.data
                line = {
                    "device": event.device,
                    "event": "swipe",
                    "card": swipe.masked_number,
                    "tracks": {str(n): swipe.status(n).value for n in (1, 2, 3)},
                }
                seen += 1
            elif isinstance(event, StatusEvent):
                line = {"device": event.device, "event": "status", "power": event.power.value}
            elif isinstance(event, ErrorEvent):
                line = {
                    "device": event.device,
                    "event": "error",
                    "message": mask_text(event.message),
                }
            else:
                continue
            if args.json:
                print_json(line)
            else:
                rest = " ".join(
                    f"{k}={v!r}" for k, v in line.items() if k not in ("device", "event")
                )
                print(f"{line['device']:<10} {line['event']:<6} {rest}")
            sys.stdout.flush()
    finally:
        for feeder in feeders:
            feeder.stop()
        for device in devices:
            device.close()
    return 0
