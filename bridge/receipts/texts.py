"""Receipt wording in Russian and English, kept as data so a translation is a table edit.

Every string must be printable in CP866 (the tests check): a character outside it prints
as "?" on a Cyrillic till.  Labels are short enough that label and amount share one
32-column line for amounts up to a million.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, get_args

Language = Literal["ru", "en"]
LANGUAGES: tuple[str, ...] = get_args(Language)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Texts:
    # loyalty block
    title: str
    card: str
    balance_before: str
    redeemed: str
    accrued: str
    balance_after: str
    offline: str
    blocked: str
    anonymous: str
    # the sample cheque around it
    receipt: str
    number: str
    total: str
    discount: str
    to_pay: str
    thanks: str
    # money: "1 234,56" in Russian, "1,234.56" in English
    thousands: str
    decimal_point: str


TEXTS: dict[str, Texts] = {
    "ru": Texts(
        title="ПРОГРАММА ЛОЯЛЬНОСТИ",
        card="Карта",
        balance_before="Баланс до покупки",
        redeemed="Списано бонусов",
        accrued="Начислено бонусов",
        balance_after="Баланс после",
        offline="Нет связи с процессингом: бонусы будут начислены после восстановления связи",
        blocked="Карта заблокирована",
        anonymous="Покупка без карты. Предъявите карту лояльности, чтобы копить бонусы",
        # a slip, never titled as a fiscal receipt: only the registrar prints one (54-FZ)
        receipt="ТОВАРНЫЙ ЧЕК",
        number="Чек №",
        total="Итого",
        discount="Скидка",
        to_pay="К оплате",
        thanks="Спасибо за покупку!",
        thousands=" ",
        decimal_point=",",
    ),
    "en": Texts(
        title="LOYALTY PROGRAM",
        card="Card",
        balance_before="Balance before",
        redeemed="Bonuses redeemed",
        accrued="Bonuses accrued",
        balance_after="Balance after",
        offline="Offline: bonuses will be accrued once the connection is restored",
        blocked="Card is blocked",
        anonymous="No loyalty card. Present your card to collect bonuses",
        receipt="SALES SLIP",
        number="Receipt No.",
        total="Total",
        discount="Discount",
        to_pay="To pay",
        thanks="Thank you for your purchase!",
        thousands=",",
        decimal_point=".",
    ),
}


def texts_for(language: str) -> Texts:
    try:
        return TEXTS[language]
    except KeyError:
        raise ValueError(
            f"receipt language {language!r} is not known; use one of {', '.join(TEXTS)}"
        ) from None


def money_text(value: Decimal, texts: Texts) -> str:
    """Two decimals, rounded half up, with the language's separators; a float is refused."""
    if not isinstance(value, Decimal):
        raise TypeError(f"money must be a Decimal, got {type(value).__name__} {value!r}")
    if not value.is_finite():
        raise ValueError(f"money must be a finite amount, got {value}")
    plain = format(value.quantize(CENT, rounding=ROUND_HALF_UP), ",.2f")
    return plain.replace(",", "\0").replace(".", texts.decimal_point).replace("\0", texts.thousands)
