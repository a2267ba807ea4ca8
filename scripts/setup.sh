#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian machine: Debian packages, npm packages,
# and the VS Code host for the end-to-end tests. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium, libkrb5-dev, ripgrep and the native build tools (g++, make, python3 for node-gyp) are
# for the e2e host, which rebuilds code-server's native modules (scripts/e2e/install-host.sh).
debs=(mosquitto mosquitto-clients openssl chromium libkrb5-dev ripgrep g++ make python3)
missing=()
for p in "${debs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "setup: npm ci"
npm ci --no-audit --no-fund

if [ -f scripts/e2e/install-host.sh ]; then
  bash scripts/e2e/install-host.sh
fi
