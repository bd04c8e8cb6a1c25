#!/usr/bin/env bash
# Installs what bbgate and its tests need on a Debian machine (as root), then builds.
# Idempotent: packages already present are not reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

# The real peers the tests run against: a Buildbot 3.7 master, the Python worker, Twisted, squid,
# openssl (an independent TLS server, and ECDSA certificates for the test PKI), ca-certificates
# (a real CA bundle that create-worker checks as trust roots), bzip2
# (directory uploads with compress="bz2" pipe through it, as Node has no bzip2), and iproute2
# (the probe's DNS test runs in a network namespace of its own); socat is what `npm run bench:relay`
# compares the relay with; haproxy (TCP mode, send-proxy/send-proxy-v2) is the load balancer in
# front of the relay whose PROXY headers its proxyFrom= listeners read (the tests run their own
# instance from a temp config, never the system service).
packages=(buildbot buildbot-worker python3-twisted squid openssl ca-certificates bzip2 iproute2 socat haproxy)
# --- issue 12: NTLM and Negotiate (Kerberos) proxy authentication ---
# libkrb5-dev, make, g++ and python3 (for node-gyp) build the optional `kerberos` npm package (MIT
# krb5's GSSAPI) during npm ci; without them it is skipped and only Negotiate is unavailable.
# The tests' realm on loopback: krb5-kdc (krb5kdc, kdb5_util), krb5-admin-server (kadmin.local),
# krb5-user (kinit); faketime's library runs a KDC with its clock off (the clock-skew and
# expired-ticket tests). python3-gssapi drives the independent acceptors that check bbgate's
# tokens: the KDC's service keytab for Negotiate, and gss-ntlmssp (Debian's GSSAPI NTLM mechanism)
# for NTLMv2 responses (test/python/ntlm_acceptor.py); squid's own ntlm_fake_auth helper, in the
# squid package above, checks NTLM's message flow.
packages+=(libkrb5-dev make g++ python3 krb5-kdc krb5-admin-server krb5-user faketime python3-gssapi gss-ntlmssp)
# --- end of issue 12 block ---
# --- issue 13: Buildbot 4.x masters ---
# debootstrap makes the Debian trixie root that runs Buildbot 4.2.1 for the 4.x tests (bookworm
# packages 3.7 only); unshare (util-linux) and chroot (coreutils) run it.
packages+=(debootstrap)
# --- end of issue 13 block ---
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
  # issue 12 Negotiate: the tests run their own KDC; the packaged services have no realm to serve.
  systemctl disable --now krb5-kdc krb5-admin-server >/dev/null 2>&1 || true
fi

# --- issue 13: a real Buildbot 4.2.1 master (and its own worker) for the 4.x tests ---
# Debian bookworm packages Buildbot 3.7 only: a trixie root made with debootstrap runs 4.2.1 through
# chroot (about 400 MB under .cache/, 2-3 minutes once; a finished root is kept).
bash scripts/buildbot4-root.sh
# --- end of issue 13 block ---

npm ci --no-audit --no-fund
npm run build
