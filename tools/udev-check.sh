#!/usr/bin/env bash
# Check udev rules files with udev itself.  `udevadm verify` where it exists (systemd >= 253);
# on systemd 252 (Debian 12) udev loads the files in `udevadm test` instead, inside a private
# mount namespace: private /dev and /run, the files bound over /etc/udev/rules.d and no other
# rules, so the simulated event cannot change a real device node.  udev reports each line it
# cannot use as FILE:LINE message while loading: any such line is a problem.
# Usage: tools/udev-check.sh FILE...   Exit 0 clean, 1 problems (printed), 77 cannot check here.
set -uo pipefail
[ $# -gt 0 ] || { echo "usage: $0 FILE.rules..." >&2; exit 2; }
udevadm=$(command -v udevadm) || { echo "udev-check: no udevadm (apt-get install udev)"; exit 77; }

if "$udevadm" verify --help >/dev/null 2>&1; then
    exec "$udevadm" verify --resolve-names=never "$@" 2>&1   # FILE:LINE message, as below
fi

if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null; then
    echo "udev-check: udevadm has no verify; loading the rules in udevadm test needs root and unshare"
    exit 77
fi
work=$(mktemp -d /tmp/udev-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/rules" "$work/empty"
declare -A origin
for file in "$@"; do
    base=$(basename "$file")
    [ -f "$file" ] || { echo "udev-check: $file: no such file"; exit 2; }
    [ -z "${origin[$base]:-}" ] || { echo "udev-check: two files named $base"; exit 2; }
    origin[$base]=$file
    cp "$file" "$work/rules/$base"
done
libdir=/usr/lib/udev/rules.d
[ -d "$libdir" ] || libdir=/lib/udev/rules.d
# shellcheck disable=SC2016  # expanded by the inner shell
unshare -m --propagation private sh -ec '
    mount -t tmpfs tmpfs /dev
    mount -t tmpfs tmpfs /run
    mount --bind "$1/rules" /etc/udev/rules.d
    mount --bind "$1/empty" "$2"
    exec "$3" test --action=add --resolve-names=never /sys/devices/virtual/mem/null
' sh "$work" "$libdir" "$udevadm" >"$work/log" 2>&1
status=$?
loaded=$(grep -c '^Reading rules file: /etc/udev/rules.d/' "$work/log")
if [ "$status" != 0 ] || [ "$loaded" != $# ]; then
    echo "udev-check: udevadm test loaded $loaded of $# files (exit $status):"
    cat "$work/log"
    exit 1
fi
problems=$(grep -E '^/etc/udev/rules.d/[^ :]+:[0-9]+ ' "$work/log" \
           | grep -v 'Resolving group name is disabled' || true)
if [ -n "$problems" ]; then
    while IFS= read -r line; do
        where=${line%% *}; base=${where#/etc/udev/rules.d/}; base=${base%%:*}
        echo "${origin[$base]}:${where##*:} ${line#* }"
    done <<<"$problems"
    exit 1
fi
echo "udev-check: udev (udevadm test, systemd $("$udevadm" --version)) loaded $# file(s) cleanly"
