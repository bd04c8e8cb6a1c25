#!/usr/bin/env bash
# Makes the Debian trixie root that runs a real Buildbot 4.2.1 master (and its own 4.2.1 worker)
# for the 4.x tests: Debian bookworm packages Buildbot 3.7 only. Idempotent: a finished root is
# left as it is. Usage: bash scripts/buildbot4-root.sh [DIR]   (default: .cache/buildbot4-root)
# See ../shared/research/buildbot-4.x-facts.md for the two traps handled below.
set -euo pipefail
cd "$(dirname "$0")/.."
root="${1:-.cache/buildbot4-root}"
stamp="$root/.bbgate-ready"
[ -f "$stamp" ] && exit 0

command -v debootstrap >/dev/null || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q debootstrap
}
# The Debian mirror the host already uses (deb822 sources first, then the one-line format).
mirror="$(grep -hm1 -oP '^URIs:\s*\K\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
[ -n "$mirror" ] || mirror="$(grep -hm1 -oP '^deb\s+\K\S+' /etc/apt/sources.list 2>/dev/null || true)"
[ -n "$mirror" ] || mirror="http://deb.debian.org/debian"

mkdir -p "$root"
# Trap 1: bookworm's debootstrap cannot resolve the virtual python3-ply-* packages trixie's
# pycparser needs; it exits non-zero with buildbot unconfigured, and the root is finished inside.
debootstrap --variant=minbase --include=buildbot,buildbot-worker trixie "$root" "$mirror" \
  >"$root.debootstrap.log" 2>&1 || echo "debootstrap exited $? (expected: finishing inside the root)"

cp /etc/resolv.conf "$root/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"; chmod +x "$root/usr/sbin/policy-rc.d"
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
finish() { umount "$root/proc" 2>/dev/null || true; }
trap finish EXIT
chroot "$root" /bin/sh -c 'export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get install -y -q -f python3-ply && dpkg --configure -a' \
  >>"$root.debootstrap.log" 2>&1
chroot "$root" buildbot --version | grep -q 'Buildbot version: 4\.' || { echo "no Buildbot 4 in $root" >&2; exit 1; }
chroot "$root" apt-get clean
finish
touch "$stamp"
echo "Buildbot 4 root ready: $root ($(du -shx "$root" | cut -f1))"
