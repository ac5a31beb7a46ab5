"""Run the whole test suite: the plain tier, then the tier that needs umockdev.

umockdev works by LD_PRELOAD, so its tests run in a second pytest under
`umockdev-wrapper`; everything else runs without it.  A tier whose stand-in is missing
on this machine is skipped with the reason printed; the exit code is non-zero if any
tier failed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

PYTEST = [sys.executable, "-m", "pytest"]


def main() -> int:
    extra = sys.argv[1:]
    codes = [subprocess.call([*PYTEST, "-m", "not umockdev", *extra])]
    wrapper = shutil.which("umockdev-wrapper")
    has_gi = subprocess.call([sys.executable, "-c", "import gi"], stderr=subprocess.DEVNULL) == 0
    if wrapper and has_gi:
        print("\n=== umockdev tier (USB printer, evdev scanner, udev hotplug) ===", flush=True)
        code = subprocess.call([wrapper, *PYTEST, "-m", "umockdev", *extra])
        codes.append(0 if code == 5 else code)  # 5: no tests selected
    else:
        why = "umockdev-wrapper not installed" if not wrapper else "PyGObject (gi) not installed"
        print(f"\n=== umockdev tier SKIPPED: {why} (see tools/stand-ins.sh) ===", flush=True)
        if os.environ.get("POSBRIDGE_REQUIRE_STAND_INS"):
            print("POSBRIDGE_REQUIRE_STAND_INS is set: a skipped tier is a failure", flush=True)
            codes.append(1)
    return max(codes)


if __name__ == "__main__":
    raise SystemExit(main())
