#!/usr/bin/env bash
# Installs the VS Code host for the end-to-end tests: code-server 4.100.3 (= VS Code 1.100.3,
# runs on Node 20) in a cache folder outside the project's node_modules. Reuses a complete
# install (marked by a file written only at the very end); a half-finished one is redone.
# code-server's own postinstall cannot be used (it refuses root and downloads ripgrep from
# GitHub), so its steps are done here by hand, with Debian's ripgrep instead of the download.
# Usage: bash scripts/e2e/install-host.sh        (prints the host folder on the last line)
set -euo pipefail

version=4.100.3
home="${FLESPI_E2E_HOME:-$HOME/.cache/flespi-e2e}"
dir="$home/code-server-$version"
marker="$dir/.installed"
start=$SECONDS

if [ -f "$marker" ]; then
  echo "e2e host: code-server $version already installed in $dir"
  echo "$dir"
  exit 0
fi

# node-gyp builds code-server's native modules with g++, make and python3.
for tool in rg node npm g++ make python3; do
  command -v "$tool" >/dev/null || { echo "e2e host: '$tool' is missing; run 'bash scripts/setup.sh' first" >&2; exit 1; }
done
[ -f /usr/include/gssapi/gssapi.h ] || [ -f /usr/include/krb5.h ] ||
  { echo "e2e host: Kerberos headers are missing; install the Debian package libkrb5-dev" >&2; exit 1; }

echo "e2e host: installing code-server $version into $dir"
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"
echo '{ "name": "flespi-e2e-host", "private": true }' > package.json

npm install "code-server@$version" --ignore-scripts --no-audit --no-fund --loglevel=error

vscode="$dir/node_modules/code-server/lib/vscode"
(
  cd "$vscode"
  npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error
  # node-pty's build script runs `npx node-gyp`; npm_config_yes answers npx's prompt.
  npm_config_yes=true npm rebuild kerberos @parcel/watcher node-pty @vscode/spdlog native-watchdog @vscode/deviceid --loglevel=error
  mkdir -p node_modules/@vscode/ripgrep/bin
  ln -sf "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
  ln -sfn node_modules node_modules.asar
  cd extensions
  npm install --omit=dev --no-audit --no-fund --loglevel=error
)
# code-server loads argon2 at start even with --auth none.
npm rebuild argon2 --loglevel=error

# The check runs with a home inside the host folder: code-server writes a config file and logs there.
HOME="$dir/.home" XDG_CONFIG_HOME="$dir/.home/.config" XDG_DATA_HOME="$dir/.home/.local/share" \
  node "$dir/node_modules/code-server/out/node/entry.js" --version >/dev/null
date -u +%FT%TZ > "$marker"
echo "e2e host: code-server $version installed in $((SECONDS - start)) s"
echo "$dir"
