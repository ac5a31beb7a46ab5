#!/usr/bin/env bash
# The install steps of docs/install.md, line for line (tests/test_docs.py renders these
# lines with the defaults below and checks they are exactly the doc's, so they can't drift).
#
# Run on a register as is, from the unpacked source directory (it prompts for the
# processing password):  bash tools/install-steps.sh
# It stops at step 4 ("no USB, serial or input devices") while the config lists no
# [[devices]]: add them (docs/install.md, step 3) and go on from step 4 by hand.
# or against a scratch root, as tests/test_docs.py does:
#     ROOT=/tmp/r SUDO= AS_SERVICE= SVC_USER=$USER GROUP=$(id -gn) SKIP_HOST=1 \
#       INIT_ARGS="--dir /tmp/r/etc/posbridge --state-dir /tmp/r/var/lib/posbridge" \
#       bash tools/install-steps.sh
#
# Lines starting with `host` change the machine itself (packages, users, udev, systemd);
# SKIP_HOST=1 prints them as "skipped (host): ..." instead of running them.
set -euo pipefail

: "${ROOT=}"                          # prefix of every installed path
: "${SUDO=sudo}"                      # empty when already root
: "${AS_SERVICE=sudo -u posbridge}"   # run as the service user; empty in a scratch root
: "${SVC_USER=posbridge}"             # owner of the secrets and the state directory
: "${GROUP=posbridge}"                # group of the config directory and the devices
: "${INIT_ARGS=}"                     # extra `config init` options (a scratch root's dirs)
: "${TEST_CARD=2775000000012}"        # a card processing knows (this one: the sandbox's)
: "${SKIP_HOST=}"
USER="${USER:-$(id -un)}"

host() {
    if [ -n "$SKIP_HOST" ]; then
        echo "skipped (host): $*" >&2
    else
        "$@"
    fi
}

# step 1
host $SUDO install -d $ROOT/opt/posbridge
host $SUDO cp -r . $ROOT/opt/posbridge
host $SUDO python3 -m venv $ROOT/opt/posbridge/.venv
host $SUDO $ROOT/opt/posbridge/.venv/bin/pip install $ROOT/opt/posbridge
# step 2
host $SUDO useradd --system --user-group --home-dir /var/lib/posbridge --shell /usr/sbin/nologin posbridge
host $SUDO usermod -aG posbridge "$USER"
# step 3
$SUDO install -d -o root -g $GROUP -m 0750 $ROOT/etc/posbridge
$SUDO install -d -o $SVC_USER -g $GROUP -m 0750 $ROOT/var/lib/posbridge
$SUDO $ROOT/opt/posbridge/.venv/bin/posbridge config init --sandbox $INIT_ARGS
# step 3, real processing
printf 'processing password: ' >&2; read -rs PW; echo >&2
printf '%s\n' "$PW" | $SUDO install -o $SVC_USER -g $SVC_USER -m 0600 /dev/stdin $ROOT/etc/posbridge/processing.password; unset PW
$AS_SERVICE $ROOT/opt/posbridge/.venv/bin/posbridge config check
# step 4
$AS_SERVICE $ROOT/opt/posbridge/.venv/bin/posbridge devices
host $SUDO $ROOT/opt/posbridge/.venv/bin/posbridge udev-rules -o $ROOT/etc/udev/rules.d/99-posbridge.rules
host $SUDO udevadm control --reload
host $SUDO udevadm trigger
# step 5
$SUDO install -D -m 0644 $ROOT/opt/posbridge/systemd/posbridge.service $ROOT/etc/systemd/system/posbridge.service
host $SUDO systemctl daemon-reload
host $SUDO systemctl enable --now posbridge
host systemctl status posbridge --no-pager
# step 6
$AS_SERVICE $ROOT/opt/posbridge/.venv/bin/posbridge journal status
$AS_SERVICE $ROOT/opt/posbridge/.venv/bin/posbridge balance $TEST_CARD
