#!/usr/bin/env bash
# Installs what sbx needs on a Debian (bookworm) machine and builds it.
#   scripts/setup.sh [BUILD_DIR]
# runsc comes from bookworm-backports (release-20240729, with systrap) and
# falls back to bookworm's own 2022 package if backports cannot be reached.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

PACKAGES=(
  build-essential cmake ninja-build pkg-config git python3 python3-yaml dpkg-dev
  libuv1-dev libtomlplusplus-dev nlohmann-json3-dev libseccomp-dev libsqlite3-dev
  libgtest-dev libgmock-dev libyaml-cpp-dev libhttp-parser-dev libarchive-dev libssl-dev
  libcurl4-openssl-dev
  busybox-static zstd iproute2 procps e2fsprogs util-linux mount systemd
  containernetworking-plugins iptables nftables dnsmasq-base curl
  docker-registry skopeo umoci apache2-utils openssl
)

need_install=0
for p in "${PACKAGES[@]}" runsc; do
  dpkg -s "$p" >/dev/null 2>&1 || need_install=1
done

if [ "$need_install" = 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    $SUDO tee /etc/apt/sources.list.d/sbx-backports.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
  if ! dpkg -s runsc >/dev/null 2>&1; then
    $SUDO apt-get install -y -q -t bookworm-backports runsc || $SUDO apt-get install -y -q runsc
  fi
fi

# Node.js and npm (the MCP example's server and client, from the npm
# registry): the machine's own if it has them, else Debian's.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -q --no-install-recommends nodejs npm
fi

# An existing build directory keeps its build type.
BUILD_TYPE_ARG=""
[ -f "$BUILD_DIR/CMakeCache.txt" ] || BUILD_TYPE_ARG="-DCMAKE_BUILD_TYPE=RelWithDebInfo"
cmake -S . -B "$BUILD_DIR" -G Ninja $BUILD_TYPE_ARG ${SBX_CMAKE_ARGS:-} >/dev/null
ninja -C "$BUILD_DIR" -j "$(nproc)"
