#!/bin/sh
# Entrypoint of bbgate's container image (docker/Dockerfile). Runs the worker
# in the foreground, as the official buildbot-worker image runs
# `twistd --pidfile= -ny buildbot.tac`: configured from the environment by
# buildbot.tac (BUILDMASTER, BUILDMASTER_PORT, WORKERNAME, WORKERPASS,
# WORKER_ENVIRONMENT_BLACKLIST, BUILDBOT_BASEDIR; bbgate's BBGATE_CONNECTION
# and BBGATE_PROXY), logging to stdout. Arguments, if any, are run instead
# (e.g. `docker run IMAGE bbgate probe /buildbot`).
#
# BBGATE_TAC_DIR (default /buildbot) is where buildbot.tac is; a directory
# without one gets the image's. BBGATE_BIN (default: bbgate on the PATH) lets
# the script run outside the image, as its test does.
set -eu

tac_dir="${BBGATE_TAC_DIR:-/buildbot}"
bbgate="${BBGATE_BIN:-bbgate}"
template="${BBGATE_TAC_TEMPLATE:-/usr/share/bbgate/buildbot.tac}"

if [ "$#" -gt 0 ]; then
    exec "$@"
fi

if [ ! -f "$tac_dir/buildbot.tac" ]; then
    if [ ! -f "$template" ]; then
        echo "bbgate-entrypoint: no $tac_dir/buildbot.tac, and no $template to copy there" >&2
        exit 1
    fi
    mkdir -p "$tac_dir"
    cp "$template" "$tac_dir/buildbot.tac"
fi

# exec: the worker gets the container's signals (docker stop sends SIGTERM) directly.
exec "$bbgate" start --nodaemon "$tac_dir"
