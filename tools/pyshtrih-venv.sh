#!/usr/bin/env bash
# Create .venv-pyshtrih with pyshtrih 2.0.6 (a third-party Shtrih-M client, MIT) pinned in
# tools/pyshtrih-requirements.txt.  The registrar emulator's framing is checked against a
# client we did not write; pyshtrih's dependency unilog breaks on Python >= 3.10, so it
# gets a Python 3.9 venv of its own and the test runs it as a subprocess.  Without a
# Python 3.9 this prints why and exits 0: the test then skips (or fails under
# POSBRIDGE_REQUIRE_STAND_INS=1).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${PYSHTRIH_VENV:-.venv-pyshtrih}"
REQUIREMENTS=tools/pyshtrih-requirements.txt
STAMP="$VENV/.requirements"

if [ -x "$VENV/bin/python" ] && cmp -s "$REQUIREMENTS" "$STAMP" \
   && "$VENV/bin/python" -c "import pyshtrih" 2>/dev/null; then
    echo "pyshtrih-venv: $VENV already has pyshtrih"
    exit 0
fi

find_python() {
    if [ -n "${PYSHTRIH_PYTHON:-}" ]; then echo "$PYSHTRIH_PYTHON"; return 0; fi
    if command -v pyenv >/dev/null 2>&1; then
        local root; root="$(pyenv root)"
        for v in "$root"/versions/3.9*/bin/python3; do
            [ -x "$v" ] && { echo "$v"; return 0; }
        done
    fi
    for c in python3.9 /root/.pyenv/versions/3.9*/bin/python3; do
        if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
    done
    return 1
}

if ! PY="$(find_python)"; then
    echo "pyshtrih-venv: no Python 3.9 found (set PYSHTRIH_PYTHON); the pyshtrih test will skip" >&2
    exit 0
fi
echo "pyshtrih-venv: creating $VENV with $PY"
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --require-hashes -r "$REQUIREMENTS"
"$VENV/bin/python" -c 'import pyshtrih; print("pyshtrih-venv: pyshtrih", pyshtrih.__version__, "ready")'
cp "$REQUIREMENTS" "$STAMP"
