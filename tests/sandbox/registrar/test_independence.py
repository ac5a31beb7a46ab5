"""The emulator is an independent peer: it imports nothing from drivers/ or bridge/.

Were it to share the driver's framing, a framing bug would be on both sides of the wire
and no test would see it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "sandbox" / "registrar"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_module_of_the_emulator_imports_drivers_or_bridge() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 10
    wrong = [
        f"{path.name}: {name}"
        for path in modules
        for name in sorted(imported_modules(path))
        if name.split(".")[0] in ("drivers", "bridge")
    ]
    assert not wrong, wrong
