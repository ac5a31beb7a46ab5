#!/usr/bin/env bash
# Install the built .deb on this machine, use it as a technician would, upgrade it in place,
# remove it and purge it, checking each step; any failure fails (CI runs this after the tests).
# Usage (root): tools/deb-check.sh [dist/posbridge_VERSION_ARCH.deb]
# The commands run from the installed files only, in a network namespace with nothing but
# loopback: the package needs no registry and no network.  The machine is left as found
# (a user/group posbridge that this script's install created is deleted at the end, and
# directories of its paths found without the package are put back).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "deb-check: FAIL: $*" >&2; exit 1; }
step() { printf '\n=== deb-check [%3ds]: %s\n' "$((SECONDS - started))" "$*"; }
started=$SECONDS

[ "$(id -u)" = 0 ] || { echo "deb-check: needs root (dpkg -i)" >&2; exit 2; }
if [ $# -gt 0 ]; then deb=$1; else
    shopt -s nullglob; debs=(dist/posbridge_*.deb); shopt -u nullglob
    [ ${#debs[@]} = 1 ] || fail "expected one dist/posbridge_*.deb, found ${#debs[@]}: run make deb"
    deb=${debs[0]}
fi
if dpkg-query -W -f='${Status}' posbridge 2>/dev/null | grep -q installed; then
    fail "posbridge is already installed here; this check installs and purges it: dpkg --purge it first"
fi
# what an earlier install, a hand-made config or a stray test left here without the package
# is moved aside, not removed and not failed on, and put back when the check ends
aside=()
for path in /opt/posbridge /etc/posbridge /var/lib/posbridge; do
    [ ! -e "$path.deb-check-aside" ] \
        || fail "$path.deb-check-aside exists: an earlier check did not finish; put it back as $path"
done
for path in /opt/posbridge /etc/posbridge /var/lib/posbridge; do
    if [ -e "$path" ] || [ -L "$path" ]; then
        mv "$path" "$path.deb-check-aside"
        aside+=("$path")
        echo "deb-check: $path was here without the package: kept as $path.deb-check-aside until the end"
    fi
done
had_user=0; getent passwd posbridge >/dev/null && had_user=1
had_group=0; getent group posbridge >/dev/null && had_group=1
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' bridge/__init__.py)
work=$(mktemp -d /tmp/posbridge-deb-check.XXXXXX)
chmod 0755 "$work"

cleanup() {
    status=$?
    if [ $status != 0 ] && dpkg-query -W posbridge >/dev/null 2>&1; then
        echo "deb-check: purging after the failure" >&2
        dpkg --purge posbridge >/dev/null 2>&1 || true
    fi
    [ $had_user = 1 ] || ! getent passwd posbridge >/dev/null || userdel posbridge || true
    [ $had_group = 1 ] || ! getent group posbridge >/dev/null || groupdel posbridge || true
    rm -rf "$work"
    for path in "${aside[@]}"; do  # the package's own copy is gone with the purge
        rm -rf "$path"
        mv "$path.deb-check-aside" "$path" && echo "deb-check: $path put back" >&2
    done
    exit $status
}
trap cleanup EXIT

offline() {  # run a command with loopback only, no other network
    unshare -n sh -c 'ip link set lo up && exec "$@"' sh "$@"
}

step "dpkg -i $deb (offline)"
offline dpkg -i "$deb"

step "files, owners and modes"
[ "$(readlink -f /usr/bin/posbridge)" = /opt/posbridge/.venv/bin/posbridge ] \
    || fail "/usr/bin/posbridge does not lead to /opt/posbridge/.venv/bin/posbridge"
python=$(readlink -f /opt/posbridge/.venv/bin/python)
case "$python" in /usr/bin/python3*) ;; *) fail "the venv runs $python, not the distribution's python3";; esac
[ ! -e /opt/posbridge/.venv/bin/pip ] || fail "the installed venv still has pip"
expect_stat() {  # path "owner:group mode"
    got=$(stat -c '%U:%G %a' "$1"); [ "$got" = "$2" ] || fail "$1 is $got, expected $2"
}
expect_stat /var/lib/posbridge "posbridge:posbridge 750"
expect_stat /etc/posbridge "root:posbridge 750"
expect_stat /etc/posbridge/posbridge.toml "root:posbridge 640"
expect_stat /etc/posbridge/sandbox.toml "root:posbridge 640"
expect_stat /etc/posbridge/api.token "posbridge:posbridge 600"
[ "$(wc -c < /etc/posbridge/api.token)" -ge 40 ] || fail "api.token is too short"
for f in /lib/systemd/system/posbridge.service /usr/share/doc/posbridge/install.md; do
    [ -f "$f" ] || fail "$f missing"
done
for rules in udev/*.rules; do
    [ -f "/lib/udev/rules.d/$(basename "$rules")" ] || fail "udev rules $rules not installed"
done
grep -qx /etc/posbridge/posbridge.toml /var/lib/dpkg/info/posbridge.conffiles \
    || fail "/etc/posbridge/posbridge.toml is not a conffile"
enabled=$(systemctl is-enabled posbridge.service 2>/dev/null || true)
[ "$enabled" = disabled ] || fail "posbridge.service is '$enabled' right after install, expected disabled"

step "posbridge --version (offline)"
got=$(offline posbridge --version)
echo "$got"
case "$got" in *"$version"*) ;; *) fail "--version says '$got', expected $version";; esac

step "config check: the shipped sandbox config passes, as root and as the service user"
offline posbridge config check /etc/posbridge/sandbox.toml
offline runuser -u posbridge -- posbridge config check /etc/posbridge/sandbox.toml

step "config check: the unconfigured sample config is refused (so the unit would not start)"
if out=$(offline posbridge config check /etc/posbridge/posbridge.toml 2>&1); then
    fail "config check passed the unedited sample config: $out"
fi
echo "$out"
case "$out" in *Traceback*) fail "config check printed a traceback";; esac

step "systemd-analyze verify on the installed unit"
if command -v systemd-analyze >/dev/null; then
    # --man=no: the unit's Documentation= is a file:// page, not a man page.  It exits 0 on
    # some problems it only prints (an unknown key): any output at all is a failure.
    systemd-analyze verify --man=no /lib/systemd/system/posbridge.service >"$work/verify" 2>&1 \
        || { cat "$work/verify"; fail "systemd-analyze verify rejected the unit"; }
    if [ -s "$work/verify" ]; then cat "$work/verify"; fail "systemd-analyze verify warned"; fi
    echo "systemd-analyze verify: clean"
else
    fail "systemd-analyze is missing (apt-get install systemd)"
fi

step "udev rules as installed: udev loads them cleanly"
bash tools/udev-check.sh /lib/udev/rules.d/*posbridge*.rules

step "posbridge demo from the installed files, as the service user, offline"
install -d -o posbridge -g posbridge -m 0700 "$work/demo"
t=$SECONDS
(cd "$work/demo" && offline runuser -u posbridge -- posbridge demo --out receipts --language en)
echo "demo took $((SECONDS - t)) s"
for f in receipt-1.txt receipt-1.png receipt-2.txt receipt-2.escpos; do
    [ -s "$work/demo/receipts/$f" ] || fail "the demo left no $f"
done

step "the installed tree is unchanged: dpkg --verify, and no file dpkg does not know"
dpkg --verify posbridge || fail "dpkg --verify found changed files"
find /opt/posbridge | sort > "$work/on-disk"
dpkg -L posbridge | grep '^/opt/posbridge' | sort > "$work/packaged"
if ! diff -u "$work/packaged" "$work/on-disk"; then fail "files under /opt/posbridge not from the package"; fi

step "upgrade to a newer version: journal, token and edited config kept"
dpkg-deb -R "$deb" "$work/upgrade"   # the same files as version $version+upgrade
sed -i 's/^Version: .*/&+upgrade/' "$work/upgrade/DEBIAN/control"
dpkg-deb --root-owner-group -Zgzip -z1 -b "$work/upgrade" "$work/upgrade.deb" >/dev/null
rm -rf "$work/upgrade"
# a real SQLite journal (the sandbox config's, made by the service user) and a stand-in
# for the production one; the upgrade must leave every byte, owner, mode and mtime as is
offline runuser -u posbridge -- posbridge --config /etc/posbridge/sandbox.toml journal status \
    >/dev/null || fail "journal status on the sandbox config failed"
[ -s /var/lib/posbridge/sandbox-journal.sqlite ] || fail "journal status made no sandbox journal"
printf 'journal-marker %s\n' "$RANDOM$RANDOM" > /var/lib/posbridge/journal.sqlite
chown posbridge:posbridge /var/lib/posbridge/journal.sqlite
chmod 0600 /var/lib/posbridge/journal.sqlite
state() {
    find /var/lib/posbridge -printf '%p %u:%g %m %T@ %s\n' | sort
    find /var/lib/posbridge -type f -exec sha256sum {} + | sort
}
echo "# edited by deb-check" >> /etc/posbridge/posbridge.toml
token_before=$(sha256sum /etc/posbridge/api.token)
journal_before=$(state)
offline dpkg -i "$work/upgrade.deb" </dev/null
[ "$(dpkg-query -W -f='${Version}' posbridge)" = "$version+upgrade" ] || fail "the upgrade did not install"
if [ "$journal_before" != "$(state)" ]; then
    diff <(echo "$journal_before") <(state) || true
    fail "the upgrade touched /var/lib/posbridge"
fi
grep -q '^# edited by deb-check$' /etc/posbridge/posbridge.toml || fail "the upgrade lost the edited config"
[ "$token_before" = "$(sha256sum /etc/posbridge/api.token)" ] || fail "the upgrade replaced api.token"
expect_stat /etc/posbridge/posbridge.toml "root:posbridge 640"

step "dpkg -r: program files gone, config and journal kept"
dpkg -r posbridge
for path in /opt/posbridge /usr/bin/posbridge /lib/systemd/system/posbridge.service \
        /usr/share/doc/posbridge; do
    if [ -e "$path" ] || [ -L "$path" ]; then fail "$path is still there after dpkg -r"; fi
done
for rules in udev/*.rules; do
    [ ! -e "/lib/udev/rules.d/$(basename "$rules")" ] || fail "udev rules still there after dpkg -r"
done
[ -f /etc/posbridge/posbridge.toml ] || fail "dpkg -r removed the config (only purge may)"
[ -f /var/lib/posbridge/journal.sqlite ] || fail "dpkg -r removed the journal (only purge may)"

step "dpkg --purge: config, secrets, journal and stat overrides gone"
dpkg --purge posbridge
for path in /etc/posbridge /var/lib/posbridge; do
    [ ! -e "$path" ] || fail "$path is still there after dpkg --purge"
done
if dpkg-statoverride --list | grep -q posbridge; then fail "stat overrides left after purge"; fi
if dpkg-query -W posbridge >/dev/null 2>&1; then fail "dpkg still knows posbridge after purge"; fi

step "passed in $((SECONDS - started)) s"
