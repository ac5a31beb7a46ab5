"""Run the whole test suite: the plain tier, then the tiers that need stand-ins.

Stand-ins that cannot be had on this machine (umockdev, emupos, zbar) make their tests
skip with the reason printed; `.ci/run` installs them all so that CI skips nothing.
"""

from __future__ import annotations

import subprocess
import sys


def main() -> int:
    cmd = [sys.executable, "-m", "pytest", *sys.argv[1:]]
    return subprocess.call(cmd)


if __name__ == "__main__":
    raise SystemExit(main())
