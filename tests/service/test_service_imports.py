"""The service's process loads what it runs: its libraries' command lines, uvicorn's
reloaders and pydantic's v1 layer stay out (bench/service_rss.py: ~6.5 MB of its RSS),
and uvicorn still answers for `uvicorn.main` and `uvicorn.run` if anything asks.

Each check runs in a fresh interpreter: the test process has imported half the world."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNUSED = ("click", "watchfiles", "multiprocessing", "rich", "pygments")


def _run(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()


def test_the_service_module_leaves_the_unused_libraries_out() -> None:
    lines = _run(
        "import sys\n"
        "import bridge.server, bridge.api.app\n"
        "import uvicorn\n"
        f"print('LOADED', sorted({{m.split('.')[0] for m in sys.modules}} & set({UNUSED!r})))\n"
        "print('BLOCKED', sys.modules['httpx._main'], sys.modules['pydantic.v1'])\n"
        "print('UVICORN', uvicorn.Config.__module__, uvicorn.Server.__module__)\n"
    )
    assert lines[0] == "LOADED []", lines
    assert lines[1] == "BLOCKED None None", lines
    assert lines[2] == "UVICORN uvicorn.config uvicorn.server", lines


def test_uvicorn_still_gives_its_command_line_and_run_when_asked() -> None:
    lines = _run(
        "import sys\n"
        "import bridge.server\n"
        "import uvicorn\n"
        "from uvicorn import run\n"
        "cli = sys.modules['uvicorn.main']\n"
        "print(run is cli.run, uvicorn.run is cli.run, uvicorn.main is cli.main)\n"
        "print(type(uvicorn.main).__name__, uvicorn.__version__ == cli.uvicorn.__version__)\n"
    )
    assert lines == ["True True True", "Command True"], lines


def test_a_process_that_imported_uvicorn_first_keeps_it_whole() -> None:
    lines = _run(
        "import uvicorn, sys\n"
        "import bridge.server\n"
        "print('click' in sys.modules, uvicorn.main.__class__.__name__)\n"
    )
    assert lines == ["True Command"], lines
