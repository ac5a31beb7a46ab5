"""Run the contract's purchase sequence for one cheque.

Calculate, optional payment (redemption), discount, confirm.

FILE.json holds one cheque in the contract's `cheque` shape: number, date (local, no
offset), lines with position, goodsId, barcode, name, price, quantity, amount.
Exit codes: 0 ok, 1 refused by processing, 2 usage or config error, 3 unreachable.
"""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

from bridge.commands import UsageError

if TYPE_CHECKING:
    from bridge.loyalty.protocol import Cheque
    from bridge.loyalty.purchase import PurchaseResult


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--card", metavar="N", help="loyalty card number (omit: anonymous)")
    parser.add_argument("--cheque", metavar="FILE.json", required=True, help="the cheque")
    parser.add_argument("--pay", metavar="AMOUNT", help="bonuses to redeem, e.g. 50.00")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def load_cheque(path: str) -> Cheque:
    # lazy: see run
    from pydantic import ValidationError

    from bridge.config import describe_error
    from bridge.loyalty.protocol import Cheque, loads

    try:
        data = loads(Path(path).read_bytes())
    except OSError as exc:
        raise UsageError(f"cannot read cheque file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"cheque file {path} is not valid JSON: {exc}") from None
    if isinstance(data, dict) and "cheque" in data:
        data = data["cheque"]
    if not isinstance(data, dict):
        raise UsageError(
            f"cheque file {path}: expected a JSON object with number, date and"
            " lines (see `posbridge purchase --help`)"
        )
    try:
        cheque = Cheque.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'cheque'}: {describe_error(e)}"
            for e in exc.errors()
        )
        raise UsageError(f"cheque file {path}: {problems}") from None
    lines = data.get("lines")
    for i, line in enumerate(lines if isinstance(lines, list) else []):
        for key in ("price", "amount", "discount"):
            value = line.get(key) if isinstance(line, dict) else None
            if value is not None and _places(value) > 2:
                raise UsageError(
                    f"cheque file {path}: lines.{i}.{key}: {value} has more than"
                    " 2 decimal places; money is roubles and kopecks, e.g. 89.90"
                )
    return cheque


def _places(value: object) -> int:
    try:
        exponent = Decimal(str(value).strip()).normalize().as_tuple().exponent
    except (InvalidOperation, ValueError):
        return 0
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def run(args: argparse.Namespace) -> int:
    # lazy, here and in the helpers ("see run"): config, client and protocol pull in pydantic
    # and httpx; the CLI imports this module for its parser, other commands' cold start skips
    from bridge import config
    from bridge.commands._cards import checked_card
    from bridge.loyalty.client import LoyaltyClient
    from bridge.loyalty.protocol import Identifier
    from bridge.loyalty.purchase import run_purchase

    pay: Decimal | None = None
    if args.pay is not None:
        try:
            pay = Decimal(args.pay)
        except InvalidOperation:
            raise UsageError(f"--pay {args.pay!r} is not an amount such as 50.00") from None
        if not pay.is_finite() or pay <= 0:
            raise UsageError(f"--pay {args.pay!r} must be a positive amount")
        if _places(args.pay) > 2:
            raise UsageError(
                f"--pay {args.pay!r} has more than 2 decimal places; give roubles"
                " and kopecks, e.g. 50.25"
            )
    cheque = load_cheque(args.cheque)
    cfg = config.load(args.config)
    # --card '' is a mistake, not a wish for an anonymous purchase (that is: no --card)
    card = None if args.card is None else checked_card(args.card, cfg.barcodes, "--card")
    args.card = card
    ident = Identifier(value=card) if card else None
    if pay and ident is None:
        raise UsageError("--pay needs --card: bonuses are redeemed from a card")
    with LoyaltyClient.from_settings(cfg.processing) as client:
        result = run_purchase(client, cheque, ident, pay)
    show(result, args.card, as_json=args.json)
    return 0


def show(result: PurchaseResult, card: str | None, as_json: bool) -> None:
    # lazy: see run
    from bridge.commands._output import print_json
    from bridge.loyalty.protocol import mask_card

    masked = mask_card(card) if card else None
    if as_json:
        print_json(
            {
                "purchaseId": result.purchase_id,
                "card": masked,
                "total": result.total,
                "discount": result.discount,
                "redeemed": result.redeemed,
                "accrued": result.accrued,
                "balance": result.balance,
                "cashierMessage": result.cashier_message,
                "chequeMessage": result.cheque_message,
            }
        )
        return
    rows = [
        ("purchase", result.purchase_id),
        ("card", masked or "(anonymous)"),
        ("cheque total", f"{result.total:.2f}"),
        ("discount", f"{result.discount:.2f}"),
        ("bonuses redeemed", f"{result.redeemed:.2f}"),
        ("bonuses accrued", f"{result.accrued:.2f}"),
        ("balance now", "-" if result.balance is None else f"{result.balance:.2f}"),
    ]
    if result.cashier_message:
        rows.append(("cashier message", result.cashier_message))
    if result.cheque_message:
        rows.append(("cheque message", result.cheque_message))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
