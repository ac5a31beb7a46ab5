"""Run a scripted loyalty purchase against the bundled sandbox and check every step.

Until the service lands this is the foundation demo: it starts the processing sandbox
on loopback, then plays what a register does for one customer (balance, purchase with
bonus redemption, confirm) and a blocked card, narrating each step.  Exit code 0 only
if every step did what it should.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from decimal import Decimal

DEMO_CARD = "2775000000012"
BLOCKED_CARD = "2775000000036"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pay", default="50.00", help="bonuses to redeem (default 50.00)")


def demo_cheque() -> dict[str, object]:
    now = datetime.now().replace(microsecond=0).isoformat()
    return {
        "number": "DEMO-1",
        "date": now,
        "lines": [
            {
                "position": 1,
                "goodsId": "1001",
                "barcode": "4600000000015",
                "name": "Milk 3.2% 1 l",
                "price": "89.90",
                "quantity": "2",
                "amount": "179.80",
            },
            {
                "position": 2,
                "goodsId": "2001",
                "barcode": "4600000000039",
                "name": "Rye bread 500 g",
                "price": "55.00",
                "quantity": "1",
                "amount": "55.00",
            },
            {
                "position": 3,
                "goodsId": "4001",
                "barcode": "2000000000015",
                "name": "Apples, per kg",
                "price": "120.00",
                "quantity": "1.234",
                "amount": "148.08",
            },
        ],
    }


def run(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from bridge.commands.purchase import show
    from bridge.loyalty import errors
    from bridge.loyalty.client import LoyaltyClient
    from bridge.loyalty.protocol import Cheque, Identifier, mask_card
    from bridge.loyalty.purchase import run_purchase
    from sandbox.server import SandboxServer

    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(f"  [{'ok' if ok else 'FAIL'}] {what}")
        if not ok:
            failures.append(what)

    pay = Decimal(args.pay)
    with tempfile.TemporaryDirectory(prefix="posbridge-demo-") as tmp:
        work = Path(tmp)
        with SandboxServer(work / "sandbox.db") as server:
            print(f"1. processing sandbox listening at {server.url}")
            with LoyaltyClient(
                server.url, "register-1", "secret-1", lock_file=work / "processing.lock"
            ) as client:
                print(f"2. customer presents card {mask_card(DEMO_CARD)}")
                before = client.balance(DEMO_CARD).balance
                print(f"   balance: {before}")
                check(before == Decimal("500.00"), "opening balance is 500.00")

                cheque = Cheque.model_validate(demo_cheque())
                print(
                    f"3. cheque {cheque.number}: {len(cheque.lines)} lines, total {cheque.total()}"
                )
                print(f"   calculate, redeem {pay}, discount, confirm:")
                result = run_purchase(client, cheque, Identifier(value=DEMO_CARD), pay)
                show(result, DEMO_CARD, as_json=False)
                check(result.redeemed == pay, f"{pay} bonuses redeemed")
                check(result.accrued > 0, "bonuses accrued on the money paid")
                after = client.balance(DEMO_CARD).balance
                expected = (before or Decimal(0)) - pay + result.accrued
                check(
                    after == expected, f"balance now {after} = {before} - {pay} + {result.accrued}"
                )

                print(f"4. another customer presents blocked card {mask_card(BLOCKED_CARD)}")
                try:
                    client.balance(BLOCKED_CARD)
                    check(False, "blocked card is refused")
                except errors.CardBlocked as exc:
                    print(f"   cashier sees: {exc.cashier_text}")
                    check(exc.cashier_text == "Card is blocked", "cashier sees 'Card is blocked'")

            status = server.status()
            check(status["overlaps"] == 0, "processing saw no overlapping requests")
    print("demo " + ("passed" if not failures else f"FAILED: {len(failures)} step(s)"))
    return 0 if not failures else 1
