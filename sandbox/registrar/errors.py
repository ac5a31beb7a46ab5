"""The device error codes the emulator answers with, as the vendor's protocol numbers them.

Cover open has no code of its own on these devices: a print fails with 0x6B (no receipt
paper) and the short status (0x10) shows the lid up (flag bit 10); a driver tells the two
apart by reading the status, as the vendor's JavaPOS driver does.
"""

from __future__ import annotations

from enum import IntEnum


class DeviceError(IntEnum):
    OK = 0x00
    FN_FAILURE = 0x03  # ФН: Ошибка ФН
    FN_NO_DATA = 0x08  # ФН: Нет запрошенных данных
    FN_STORAGE_FULL = 0x14  # ФН: Исчерпан ресурс хранения
    BAD_PARAMETERS = 0x33  # Некорректные параметры в команде
    NOT_SUPPORTED = 0x37  # Команда не поддерживается в данной реализации
    PAYMENT_SHORT = 0x45  # Сумма всех типов оплаты меньше итога чека
    SHIFT_OVER_24H = 0x4E  # Смена превысила 24 часа
    WRONG_PASSWORD = 0x4F  # Неверный пароль
    WAIT_CONTINUE = 0x58  # Ожидание команды продолжения печати
    FN_LINK = 0x67  # Ошибка связи с ФП (ФН): the FN is missing or does not answer
    NO_RECEIPT_PAPER = 0x6B  # Нет чековой ленты (also the answer when the cover is open)
    WRONG_SUBMODE = 0x72  # Команда не поддерживается в данном подрежиме
    WRONG_MODE = 0x73  # Команда не поддерживается в данном режиме
    ZERO_TOTAL = 0x8E  # Нулевой итог чека


class CommandError(Exception):
    """A command refused with a device error code; the answer carries only the code."""

    def __init__(self, code: int, why: str = "") -> None:
        super().__init__(f"0x{code:02X} {why}".strip())
        self.code = code
