#!/usr/bin/env bash
# build-image.sh WORKDIR NAME
#
# The image of the MCP example: Node.js (the host's, with the shared
# libraries it needs) and @modelcontextprotocol/server-everything from the npm
# registry under /app, over the busybox test image. Leaves WORKDIR/image.tar
# (an OCI archive named NAME) and WORKDIR/app/node_modules, which holds the
# MCP SDK the host-side client uses.
set -euo pipefail
w=$1
name=$2
src=$(cd "$(dirname "$0")/../../.." && pwd)
mkdir -p "$w/app" "$w/root/usr/local/bin" "$w/root/app"
# A pinned version: the example must not change under the tests.
if ! npm install --no-audit --no-fund --prefix "$w/app" @modelcontextprotocol/server-everything@2026.8.31 \
    >"$w/npm.log" 2>&1; then
  cat "$w/npm.log" >&2
  exit 1
fi
node=$(readlink -f "$(command -v node)")
cp "$node" "$w/root/usr/local/bin/node"
for lib in $(ldd "$node" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
  mkdir -p "$w/root$(dirname "$lib")"
  cp -L "$lib" "$w/root$lib"
done
cp -a "$w/app/node_modules" "$w/root/app/"
EXTRA_ROOT="$w/root" "$src/scripts/make-busybox-image.sh" "$w/image.tar" "$name" --format oci-tar >/dev/null
