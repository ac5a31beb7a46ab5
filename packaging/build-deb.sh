#!/usr/bin/env bash
# Build dist/posbridge_VERSION_ARCH.deb: the code, a virtualenv at /opt/posbridge/.venv with
# every dependency installed from requirements.lock (--require-hashes), the systemd unit,
# the udev rules and the sample configs.  Installing it needs no package registry.
#
# The venv is created in a staging root and then moved to its final path by rewriting the
# staging prefix out of the scripts and pyvenv.cfg; bytecode is compiled with the final path
# afterwards.  The build fails if the staging path is left anywhere in the tree.
#
# It uses the distribution's interpreter (DEB_PYTHON, default /usr/bin/python3, never a pyenv
# one): the venv and its compiled wheels belong to that python3.X, which the package then
# depends on.  Build on the release you install on (Debian 12: python3.11).
# Needs: python3-venv, python3-dev, gcc and libc6-dev (evdev ships source only), dpkg-dev.
set -euo pipefail
umask 022
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/dist}
PYTHON=${DEB_PYTHON:-/usr/bin/python3}
FINAL=/opt/posbridge/.venv

case "$PYTHON" in
    /usr/bin/*) ;;
    *) echo "build-deb: DEB_PYTHON must be the distribution's interpreter under /usr/bin (got $PYTHON)" >&2
       exit 2 ;;
esac
PYVER=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
PYBIN=/usr/bin/python$PYVER
[ -x "$PYBIN" ] || { echo "build-deb: $PYBIN not found" >&2; exit 2; }
"$PYBIN" -c 'import ensurepip, venv' 2>/dev/null \
    || { echo "build-deb: $PYBIN has no venv/ensurepip: apt-get install python3-venv" >&2; exit 2; }
VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$ROOT/bridge/__init__.py")
[ -n "$VERSION" ] || { echo "build-deb: no __version__ in bridge/__init__.py" >&2; exit 2; }
ARCH=$(dpkg --print-architecture)
DEB=$OUT/posbridge_${VERSION}_${ARCH}.deb

WORK=$(mktemp -d /tmp/posbridge-deb.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
STAGE=$WORK/root
VENV=$STAGE$FINAL
echo "build-deb: posbridge $VERSION for $ARCH with python$PYVER, staging in $WORK"

# 1. the project's own wheel, from a copy of the sources (the work tree stays clean)
mkdir -p "$WORK/src"
cp "$ROOT/pyproject.toml" "$ROOT/README.md" "$WORK/src/"
for pkg in bridge drivers sandbox; do
    cp -r "$ROOT/$pkg" "$WORK/src/"
done
find "$WORK/src" -name __pycache__ -prune -exec rm -rf {} +
"$PYBIN" -m venv "$WORK/tools"
"$WORK/tools/bin/python" -m pip wheel -q --no-deps -w "$WORK/dist" "$WORK/src"

# 2. the venv at its final path inside the staging root: locked dependencies, then the project
"$PYBIN" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --no-cache-dir --no-compile --require-hashes \
    -r "$ROOT/requirements.lock"
"$VENV/bin/python" -m pip install -q --no-cache-dir --no-compile --no-deps --no-index \
    "$WORK"/dist/posbridge-*.whl
"$VENV/bin/python" -m pip check
"$VENV/bin/python" -m pip uninstall -q -y pip   # nothing installs into it after the build
rm -f "$VENV"/lib/python*/site-packages/posbridge-*.dist-info/direct_url.json
sed -i '/direct_url.json/d' "$VENV"/lib/python*/site-packages/posbridge-*.dist-info/RECORD

# 3. move it to /opt/posbridge/.venv: scripts, activate files and pyvenv.cfg name the final path
grep -rlI --null -F "$WORK" "$VENV/bin" "$VENV/pyvenv.cfg" | xargs -0 -r sed -i "s|$STAGE||g"
find "$VENV" -name __pycache__ -prune -exec rm -rf {} +
"$VENV/bin/python" -m compileall -q -j 0 -s "$STAGE" -p / "$VENV/lib" >/dev/null
if leftover=$(grep -rl -F "$WORK" "$STAGE"); then
    echo "build-deb: the staging path is still in:" >&2
    echo "$leftover" >&2
    exit 1
fi

# 4. the rest of the tree
install -d "$STAGE/usr/bin" "$STAGE/lib/systemd/system" "$STAGE/lib/udev/rules.d" \
    "$STAGE/etc/posbridge" "$STAGE/usr/share/doc/posbridge" "$STAGE/usr/share/posbridge/examples"
ln -s "$FINAL/bin/posbridge" "$STAGE/usr/bin/posbridge"
install -m 0644 "$ROOT/systemd/posbridge.service" "$STAGE/lib/systemd/system/"
install -m 0644 "$ROOT"/udev/*.rules "$STAGE/lib/udev/rules.d/"
install -m 0640 "$ROOT/posbridge.example.toml" "$STAGE/etc/posbridge/posbridge.toml"
install -m 0640 "$ROOT/packaging/sandbox.toml" "$STAGE/etc/posbridge/sandbox.toml"
install -m 0644 "$ROOT/posbridge.example.toml" "$ROOT/packaging/sandbox.toml" \
    "$STAGE/usr/share/posbridge/examples/"
install -m 0644 "$ROOT/README.md" "$ROOT/docs/install.md" "$ROOT/packaging/copyright" \
    "$STAGE/usr/share/doc/posbridge/"
ln -s /usr/share/doc/posbridge "$STAGE/opt/posbridge/docs"   # the unit's Documentation=

# 5. DEBIAN/: control (with the shared libraries' dependencies), conffiles, maintainer scripts
install -d -m 0755 "$STAGE/DEBIAN"
( cd "$STAGE" && find etc -type f | sort | sed 's|^|/|' ) > "$STAGE/DEBIAN/conffiles"
for script in postinst prerm postrm; do
    install -m 0755 "$ROOT/packaging/$script" "$STAGE/DEBIAN/$script"
done
mkdir -p "$WORK/shlibs/debian"
printf 'Source: posbridge\n\nPackage: posbridge\nArchitecture: any\n' \
    > "$WORK/shlibs/debian/control"
mapfile -d '' sos < <(find "$VENV" -name '*.so*' -type f -print0)
shlibs=$(cd "$WORK/shlibs" && dpkg-shlibdeps -O --ignore-missing-info -l"$VENV/lib" \
    "${sos[@]}" 2>"$WORK/shlibdeps.log" | sed -n 's/^shlibs:Depends=//p') || true
if [ -z "$shlibs" ]; then
    echo "build-deb: dpkg-shlibdeps failed; depending on this machine's libc6" >&2
    sed 's/^/  /' "$WORK/shlibdeps.log" >&2
    shlibs="libc6 (>= $(dpkg-query -W -f='${Version}' libc6 | sed 's/-.*//'))"
fi
size=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
( cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z \
    | xargs -0 md5sum ) > "$STAGE/DEBIAN/md5sums"   # for dpkg --verify
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@PYVER@/$PYVER/g" \
    -e "s/@SHLIBS@/$shlibs/" -e "s/@SIZE@/$size/" \
    "$ROOT/packaging/control.in" > "$STAGE/DEBIAN/control"

chmod -R u+rwX,go+rX,go-w "$STAGE"
chmod 0640 "$STAGE"/etc/posbridge/*.toml
mkdir -p "$OUT"
rm -f "$OUT"/posbridge_*.deb
dpkg-deb --root-owner-group -Zxz -z6 --build "$STAGE" "$DEB" >/dev/null
echo "build-deb: $DEB ($(du -h "$DEB" | cut -f1), installed ${size} KiB)"
