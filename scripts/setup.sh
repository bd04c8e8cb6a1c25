#!/usr/bin/env bash
# Installs what bbgate and its tests need on a Debian machine (as root), then builds.
# Idempotent: packages already present are not reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

# The real peers the tests run against: a Buildbot 3.7 master, the Python worker, Twisted, squid,
# openssl (an independent TLS server, and ECDSA certificates for the test PKI), bzip2
# (directory uploads with compress="bz2" pipe through it, as Node has no bzip2), and iproute2
# (the probe's DNS test runs in a network namespace of its own); socat is what `npm run bench:relay`
# compares the relay with; haproxy (TCP mode, send-proxy/send-proxy-v2) is the load balancer in
# front of the relay whose PROXY headers its proxyFrom= listeners read (the tests run their own
# instance from a temp config, never the system service).
packages=(buildbot buildbot-worker python3-twisted squid openssl bzip2 iproute2 socat haproxy)
# --- issue 12, NTLM proxy authentication (helper i12-ntlm) ---
# gss-ntlmssp (Debian's GSSAPI NTLM mechanism) driven by python3-gssapi is the independent NTLM
# acceptor that checks bbgate's NTLMv2 responses (test/python/ntlm_acceptor.py); squid's own
# ntlm_fake_auth helper, in the squid package above, checks the message flow.
packages+=(gss-ntlmssp python3-gssapi)
# --- end of issue 12 NTLM block ---
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
fi
# Debian starts haproxy as a service on install; nothing here needs it running.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl disable --now haproxy >/dev/null 2>&1 || true
fi

npm ci --no-audit --no-fund
npm run build
