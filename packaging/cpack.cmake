# The Debian package `sbx`: `cpack -G DEB` in the build directory (or the
# `package` target) makes sbx_<version>_<arch>.deb of what `cmake --install`
# installs, under the prefix /usr (systemd/CMakeLists.txt adapts the units and
# the configuration's place to it). Maintainer scripts: packaging/deb/.
set(CPACK_GENERATOR DEB)
# Values reach CPack's configuration as written here (no second unescaping).
set(CPACK_VERBATIM_VARIABLES ON)
set(CPACK_PACKAGE_NAME sbx)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "sandbox daemon running agent-sandbox objects in gVisor")
string(CONCAT CPACK_PACKAGE_DESCRIPTION
  "sbxd runs the agent-sandbox objects (Sandbox, SandboxTemplate, SandboxClaim,\n"
  "SandboxWarmPool) of Kubernetes on one host without Kubernetes, each sandbox\n"
  "in gVisor (runsc), and serves a Kubernetes-style API on /run/sbx/sbxd.sock\n"
  "to the group sbx. sbx is its kubectl-like command line.")
set(SBX_PACKAGE_MAINTAINER "sbx maintainers <sbx-maintainers@example.org>"
  CACHE STRING "Maintainer field of the Debian package")
set(CPACK_PACKAGE_CONTACT "${SBX_PACKAGE_MAINTAINER}")

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# What sbxd runs: runsc; the CNI plugins (ptp, host-local, portmap, loopback)
# of its default network, which bring iptables for portmap; nft for the
# sandboxes' egress firewall; mkfs.ext4 and mount for sized volumes.
# Without the CNI plugins or nft sbxd still runs, with --network=none.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "runsc, containernetworking-plugins, nftables, e2fsprogs, mount")
# The shared libraries' packages, from dpkg-shlibdeps (dpkg-dev).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/packaging/deb/conffiles
  ${PROJECT_SOURCE_DIR}/packaging/deb/postinst
  ${PROJECT_SOURCE_DIR}/packaging/deb/prerm
  ${PROJECT_SOURCE_DIR}/packaging/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# `package_source` must not pack build trees.
set(CPACK_SOURCE_IGNORE_FILES "/\\.git/" "/build[^/]*/" "/_demo/" "/\\.cache/")

include(CPack)
