#!/usr/bin/env bash
# Quick start: installs and builds sbx, starts sbxd with a local state
# directory (./_demo), imports a busybox image, applies a demo Sandbox and
# execs into it. sbxd keeps running afterwards; the script prints how to use
# and stop it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
scripts/setup.sh "$BUILD_DIR"

DEMO=${SBX_DEMO_DIR:-$ROOT/_demo}
export SBX_SOCKET=$DEMO/run/sbxd.sock
SBX=$BUILD_DIR/cli/sbx
mkdir -p "$DEMO"

if [ -f "$DEMO/sbxd.pid" ] && kill -0 "$(cat "$DEMO/sbxd.pid")" 2>/dev/null; then
  echo "== sbxd already running (pid $(cat "$DEMO/sbxd.pid"))"
else
  echo "== starting sbxd (state in $DEMO, log in $DEMO/sbxd.log)"
  setsid "$BUILD_DIR/daemon/sbxd" --state-dir "$DEMO/state" --run-dir "$DEMO/run" \
    --socket "$SBX_SOCKET" >"$DEMO/sbxd.log" 2>&1 < /dev/null &
  echo $! > "$DEMO/sbxd.pid"
  for _ in $(seq 1 300); do
    "$SBX" version >/dev/null 2>&1 && break
    sleep 0.1
  done
fi
"$SBX" version

echo "== importing a busybox image built from the host's busybox-static"
scripts/make-busybox-image.sh "$DEMO/busybox.tar" demo/busybox:1 --format oci-tar
"$SBX" image import "$DEMO/busybox.tar"
"$SBX" image ls

echo "== applying examples/demo-sandbox.yaml"
"$SBX" apply -f examples/demo-sandbox.yaml
"$SBX" wait sandbox/demo --for=condition=Ready --timeout=120s
"$SBX" get sandboxes

echo "== sbx exec demo -- dmesg"
"$SBX" exec demo -- dmesg
echo "== sbx exec demo -- cat /proc/version"
"$SBX" exec demo -- cat /proc/version
echo "== its own network (gVisor's stack; the metadata service and private ranges are fenced off)"
"$SBX" exec demo -- busybox ip -o -4 addr show eth0 || true

cat <<MSG

sbxd is running (pid $(cat "$DEMO/sbxd.pid")). Try:
  export SBX_SOCKET=$SBX_SOCKET
  $SBX exec -i demo -- sh
  $SBX logs demo
  $SBX describe sandbox demo
Stop it with: kill \$(cat $DEMO/sbxd.pid)   (sandboxes keep running; sbxd adopts them on its next start)
MSG
