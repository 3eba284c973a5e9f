#!/usr/bin/env bash
# The clients the server tests drive (tests/cli/serve_cli_test.cc): curl and Chromium from Debian,
# Node.js and npm when missing, and the npm packages `openai` (the official client) and
# `puppeteer-core` (drives Chromium) into .cache/npm. A client that cannot be installed (no
# network) is skipped by its test with the reason; this script then only warns.
set -uo pipefail
cd "$(dirname "$0")/.."
packages=(curl chromium)
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "sluice: installing the test clients ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null ||
    echo "sluice: warning: could not install ${missing[*]}; their tests will be skipped" >&2
fi
if command -v npm >/dev/null; then
  mkdir -p .cache/npm
  if [ ! -f .cache/npm/node_modules/openai/package.json ] ||
     [ ! -f .cache/npm/node_modules/puppeteer-core/package.json ]; then
    npm install --prefix .cache/npm --no-audit --no-fund --silent openai@6 puppeteer-core@24 >/dev/null ||
      echo "sluice: warning: npm could not install openai and puppeteer-core; their tests will be skipped" >&2
  fi
fi
exit 0
