#!/bin/bash
# Installs what the system tests need beyond the build: Debian's chromium, node and npm (only
# when not already on PATH) and tests/ui's pinned playwright-core for the web UI's browser test
# (tests/integration/test_web_ui.py), and Debian's rabbitmq-server for the rabbitmqadmin it ships
# (test_management_api.py; the package's broker is not started), and Debian's clang-16 with its
# libFuzzer/sanitizer runtimes for the fuzz build (clang-14 cannot use libstdc++ 12's <expected>),
# and lintian for the Debian package's test (tests/integration/test_package.py), and debootstrap
# with systemd-container for the package under a real systemd (test_systemd.py), and iproute2 for
# the private network namespaces of the loopback-only login tests (conftest.py, PrivateNetwork).
# Idempotent: a second run costs one dpkg query and two stat calls.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(chromium rabbitmq-server clang-16 libclang-rt-16-dev lintian debootstrap systemd-container iproute2)
command -v node > /dev/null && command -v npm > /dev/null || PKGS+=(nodejs npm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -ne 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# npm ci replaces node_modules wholesale, so run it only when the lock file is newer.
if [ ! -d tests/ui/node_modules ] || [ tests/ui/package-lock.json -nt tests/ui/node_modules ]; then
  (cd tests/ui && npm ci --no-audit --no-fund)
fi
