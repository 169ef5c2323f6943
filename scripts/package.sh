#!/bin/bash
# Builds Warren in release mode and its Debian package: prints the path of the .deb, which is
# $BUILD_DIR/packages/warren_VERSION_ARCH.deb (BUILD_DIR defaults to build-release; BUILD_TYPE to
# Release). Install it with `apt install ./build-release/packages/warren_*.deb`.
# It builds only what the package holds (the target warren_package_files, no tests); with an
# up-to-date BUILD_DIR (scripts/test.sh packages build/ so) it only runs cpack.
set -euo pipefail
cd "$(dirname "$0")/.."
export BUILD_DIR="${BUILD_DIR:-build-release}"
export BUILD_TYPE="${BUILD_TYPE:-Release}"
TARGETS=warren_package_files bash scripts/build.sh
rm -f "$BUILD_DIR"/packages/warren_*.deb
(cd "$BUILD_DIR" && cpack -G DEB > cpack.log) || { cat "$BUILD_DIR/cpack.log"; exit 1; }
ls "$PWD/$BUILD_DIR"/packages/warren_*.deb
