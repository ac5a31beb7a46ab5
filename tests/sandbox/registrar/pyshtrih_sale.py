"""Run by test_pyshtrih.py under .venv-pyshtrih (Python 3.9): pyshtrih drives the emulator.

Plays an unmodified third-party POS through a sale on the emulator's pty and prints what
pyshtrih understood of each answer as one JSON object, for the test to compare with the
emulator's own paper log and documents.  Keep it Python 3.9 and stdlib + pyshtrih only.
"""

import json
import sys

import pyshtrih


def main(port: str) -> None:
    device = pyshtrih.ShtrihM01F(port=port, baudrate=115200)
    device.connect()  # ENQ handshake, then 0xFC (device type)
    out = {"name": device.name}
    state = device.state()  # 0x10
    out["mode"] = state["Режим ФР"].num
    out["submode"] = state["Подрежим ФР"].num
    full = device.full_state()  # 0x11
    out["serial"] = full["Заводской номер"]
    device.print_string("pyshtrih: строка")  # 0x17
    device.open_check(0)  # 0x8D
    out["mode_in_receipt"] = device.state()["Режим ФР"].num
    device.sale(("Молоко", 2000, 8990))  # 0x80: 2.000 x 89.90
    device.print_string("Бонусов начислено: 18")
    closed = device.close_check(20000)  # 0x85: 200.00 cash
    out["change"] = closed["Сдача"]
    fn = device.fs_state()  # 0xFF01
    out["last_document"] = fn["Номер последнего ФД"]
    device.cut()  # 0x25
    out["mode_after"] = device.state()["Режим ФР"].num
    device.disconnect()
    print(json.dumps(out, ensure_ascii=False, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
