#!/usr/bin/env bash
# Installs, builds and runs every test (unit, root + runsc integration, and the
# end-to-end quick start). Tests labelled `root` need root and runsc; with
# CI=true they fail instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
SBX_CMAKE_ARGS="-DSBX_WERROR=ON" scripts/setup.sh "$BUILD_DIR"
cd "$BUILD_DIR"
ctest --output-on-failure -j 2 --timeout 600 "$@"
