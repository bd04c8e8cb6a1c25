#!/usr/bin/env bash
# Installs what bbgate and its tests need on a Debian machine (as root), then builds.
# Idempotent: packages already present are not reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

# The real peers the tests run against: a Buildbot 3.7 master, the Python worker, Twisted, squid,
# and openssl (an independent TLS server, and ECDSA certificates for the test PKI).
packages=(buildbot buildbot-worker python3-twisted squid openssl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
fi

npm ci --no-audit --no-fund
npm run build
