#!/usr/bin/env bash
# Create .venv-emupos with the emupos printer emulator (needs Python >= 3.13).
# The printer tests check our ESC/POS bytes against emupos, an implementation we did not
# write; it needs a newer Python than the project, so it lives in its own venv and runs
# as a subprocess.  Without Python 3.13 this prints why and exits 0: the tests then skip.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${EMUPOS_VENV:-.venv-emupos}"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import emupos" 2>/dev/null; then
    echo "emupos-venv: $VENV already has emupos"
    exit 0
fi

find_python() {
    if [ -n "${EMUPOS_PYTHON:-}" ]; then echo "$EMUPOS_PYTHON"; return 0; fi
    if command -v pyenv >/dev/null 2>&1; then
        local root; root="$(pyenv root)"
        for v in "$root"/versions/3.13*/bin/python3 "$root"/versions/3.14*/bin/python3; do
            [ -x "$v" ] && { echo "$v"; return 0; }
        done
    fi
    for c in python3.14 python3.13 python3; do
        if command -v "$c" >/dev/null 2>&1 \
           && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null; then
            command -v "$c"; return 0
        fi
    done
    return 1
}

if ! PY="$(find_python)"; then
    echo "emupos-venv: no Python >= 3.13 found (set EMUPOS_PYTHON); emupos tests will skip" >&2
    exit 0
fi
echo "emupos-venv: creating $VENV with $PY"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q emupos
"$VENV/bin/python" -c 'import emupos; print("emupos-venv: emupos", getattr(emupos, "__version__", "?"), "ready")'
