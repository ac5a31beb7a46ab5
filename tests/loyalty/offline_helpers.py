"""Purchases and waits shared by the offline tests."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from bridge.loyalty.offline import Connectivity, OfflineClient
from bridge.loyalty.protocol import Cheque, ChequeLine, Identifier

GOODS = [
    ("1001", "Milk", "89.90"),
    ("1002", "Kefir", "74.50"),
    ("2001", "Rye bread", "55.00"),
    ("3001", "Cigarettes", "200.00"),
    ("4001", "Apples, per kg", "120.00"),
    ("5001", "Dish soap", "150.00"),
    ("9999", "Unknown item", "10.00"),
]
CARDS = ["2775000000012", "2775000000029", "2775000000050", "2775000000067", None]


def make_cheque(rng: random.Random, number: int, when: datetime) -> Cheque:
    lines = []
    for pos in range(1, rng.randint(1, 4) + 1):
        goods, name, price = rng.choice(GOODS)
        qty = Decimal(rng.choice(["1", "2", "3", "0.755", "1.250"]))
        amount = (Decimal(price) * qty).quantize(Decimal("0.01"))
        lines.append(
            ChequeLine(
                position=pos,
                goods_id=goods,
                name=name,
                price=Decimal(price),
                quantity=qty,
                amount=amount,
            )
        )
    return Cheque(number=str(number), date=when, lines=lines)


def shift(seed: int, n: int) -> list[tuple[Cheque, Identifier | None, datetime, bool]]:
    """n purchases: (cheque, card, local time, cancelled?) - deterministic for a seed.

    Times run through a day, across the morning and the night offers, so the
    original operationDate visibly matters to the ledger.
    """
    rng = random.Random(seed)
    start = datetime(2026, 11, 29, 8, 0, 0)
    out = []
    for i in range(n):
        when = start + timedelta(minutes=11 * i)
        card = rng.choice(CARDS)
        ident = Identifier(value=card) if card else None
        out.append((make_cheque(rng, i + 1, when), ident, when, rng.random() < 0.1))
    return out


def when_online(oc: OfflineClient) -> threading.Event:
    """An event set when the offline client reaches ONLINE (tests wait on it, no polling)."""
    reached = threading.Event()
    previous = oc.on_change

    def changed(state: Connectivity) -> None:
        if previous is not None:
            previous(state)
        if state is Connectivity.ONLINE:
            reached.set()

    oc.on_change = changed
    return reached


def wait_until(
    predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Poll a condition that offers no event to wait on (kernel state), with a deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
