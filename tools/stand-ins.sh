#!/usr/bin/env bash
# Install the test stand-ins that live outside the project's own venv, as far as this
# machine allows: emupos (printer emulator, own venv, Python >= 3.13), pyshtrih (a
# third-party Shtrih-M client, own venv, Python 3.9) and PyGObject for
# umockdev (needs the system's gobject-introspection and cairo headers).  Whatever cannot
# be had is reported and its tests skip with the reason; CI (root) installs the system
# packages first (.ci/run), so there nothing is skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

bash tools/emupos-venv.sh || echo "stand-ins: emupos unavailable; its tests will skip"
bash tools/pyshtrih-venv.sh || echo "stand-ins: pyshtrih unavailable; its test will skip"

if "$PY" -c "import gi" 2>/dev/null; then
    echo "stand-ins: PyGObject present"
elif command -v pkg-config >/dev/null && pkg-config --exists gobject-introspection-1.0 cairo; then
    "$PY" -m pip install -q "PyGObject<3.51" \
        || echo "stand-ins: PyGObject did not build; umockdev tests will skip"
else
    echo "stand-ins: no gobject-introspection/cairo dev files (apt: libgirepository1.0-dev"\
         "libcairo2-dev pkg-config gir1.2-umockdev-1.0 umockdev); umockdev tests will skip"
fi
exit 0
