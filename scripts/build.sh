#!/bin/bash
# Installs the Debian packages Warren needs (once) and builds everything into build/.
# BUILD_DIR, BUILD_TYPE and SANITIZE (address,undefined / thread) select other builds; FUZZ=ON
# (with CC=clang-16 CXX=clang++-16) the libFuzzer build; TARGETS builds only those targets.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(dirname "$PWD")}"
# Debug info names the build directory; without this a clone elsewhere (CI) never hits the cache.
export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
cmake -S . -B "${BUILD_DIR:-build}" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" \
  -DWARREN_SANITIZE="${SANITIZE:-}" -DWARREN_FUZZ="${FUZZ:-OFF}" "${launcher[@]}" > /dev/null
# shellcheck disable=SC2086 # TARGETS is a list
cmake --build "${BUILD_DIR:-build}" -j "${JOBS:-2}" ${TARGETS:+--target $TARGETS}
