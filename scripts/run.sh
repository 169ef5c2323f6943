#!/bin/bash
# Builds Warren and starts it with the embedded defaults: AMQP on 5672, data in ./data,
# guest/guest (loopback only). Extra arguments go to warren-server (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
exec build/bin/warren-server "$@"
