#!/bin/bash
# Installs every Debian 12 package Warren needs to build, test and benchmark. Idempotent:
# packages already present are skipped, so a second run costs one dpkg query.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config
  librocksdb-dev libasio-dev libprotobuf-dev protobuf-compiler libgtest-dev libgmock-dev
  libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev libcpp-httplib-dev libssl-dev
  libre2-dev libsystemd-dev ccache help2man amqp-specs python3-pika python3-pytest python3-amqp librabbitmq-dev amqp-tools
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
