#!/usr/bin/env bash
# Installs the Debian packages sluice builds with, when any is missing. Needs root or sudo.
set -euo pipefail
packages=(build-essential cmake ninja-build pkg-config python3 liburing-dev libnuma-dev libxxhash-dev
          libsentencepiece-dev libgflags-dev libgtest-dev libgmock-dev libbenchmark-dev libedit-dev clang
          libclang-rt-dev libcpp-httplib-dev nlohmann-json3-dev libpng-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "sluice: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
