"""Ask processing for a card's bonus balance (waits its turn behind the running service)."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("card", metavar="CARD", help="card number (or phone with --phone)")
    parser.add_argument("--phone", action="store_true", help="CARD is a phone number")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    # lazy: config, client and protocol pull in pydantic and httpx; the CLI imports this
    # module for its parser, and other commands' cold start skips them
    from bridge import config
    from bridge.commands._cards import checked_card, checked_phone
    from bridge.commands._output import print_json
    from bridge.loyalty.client import LoyaltyClient
    from bridge.loyalty.protocol import Identifier, mask_card

    cfg = config.load(args.config)
    value = checked_phone(args.card) if args.phone else checked_card(args.card, cfg.barcodes)
    ident = Identifier(type="Phone" if args.phone else "CardNumber", value=value)
    with LoyaltyClient.from_settings(cfg.processing) as client:
        response = client.balance(ident)
    if args.json:
        print_json(
            {
                "card": mask_card(args.card),
                "balance": response.balance,
                "cashierMessage": response.cashier_message,
            }
        )
    else:
        # processing may leave the balance out (docs/answers.md): say so, not "None"
        shown = "unknown" if response.balance is None else response.balance
        print(f"card {mask_card(args.card)}: balance {shown}")
        if response.cashier_message:
            print(response.cashier_message)
    return 0
