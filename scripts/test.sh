#!/bin/bash
# Builds Warren and runs every test: the GoogleTest unit tests and the system tests that start
# the real warren-server and drive it with pika and rabbitmq-c (and the web UI's browser test,
# with chromium and playwright-core from scripts/install-test-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
bash scripts/install-test-deps.sh
ctest --test-dir build --output-on-failure -j "${JOBS:-2}" --timeout 1800
