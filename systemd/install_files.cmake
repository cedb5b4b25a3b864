# Installs the systemd units, sysusers.d and tmpfiles.d entries and the
# example configuration. Runs at install time (cmake_install.cmake, from
# `cmake --install` and cpack), when CMAKE_INSTALL_PREFIX is the prefix really
# installed to; the rules are in CMakeLists.txt beside this file, which sets:
#   SBX_SYSTEMD_SOURCE_DIR, SBX_SYSTEMD_BINARY_DIR  this folder, source and build
#   SBX_BINDIR, SBX_SYSCONFDIR   CMAKE_INSTALL_BINDIR and _SYSCONFDIR as configured
#   SBX_DISTRO_UNIT_DIR, SBX_DISTRO_SYSUSERS_DIR, SBX_DISTRO_TMPFILES_DIR
#                                systemd's pkg-config directories ("" if unknown)

# The prefix without trailing slashes ("" for /).
string(REGEX REPLACE "/+$" "" sbx_prefix "${CMAKE_INSTALL_PREFIX}")
set(sbx_distro_prefix FALSE)
if(sbx_prefix STREQUAL "/usr")
  set(sbx_distro_prefix TRUE)
endif()

# An install directory made absolute for this prefix, as GNUInstallDirs'
# GNUInstallDirs_get_absolute_install_dir does for BINDIR and SYSCONFDIR.
function(sbx_absolute_dir out dir kind)
  if(IS_ABSOLUTE "${dir}")
    set(abs "${dir}")
  elseif(kind STREQUAL "SYSCONFDIR" AND (sbx_prefix STREQUAL "" OR sbx_distro_prefix))
    set(abs "/${dir}")
  elseif(kind STREQUAL "SYSCONFDIR" AND sbx_prefix MATCHES "^/opt/")
    set(abs "/${dir}${sbx_prefix}")
  else()
    set(abs "${sbx_prefix}/${dir}")
  endif()
  set(${out} "${abs}" PARENT_SCOPE)
endfunction()

# The distribution's directory for /usr, else one under the prefix.
function(sbx_systemd_dir out distro_dir relative)
  if(sbx_distro_prefix AND NOT distro_dir STREQUAL "")
    set(${out} "${distro_dir}" PARENT_SCOPE)
  else()
    set(${out} "${sbx_prefix}/${relative}" PARENT_SCOPE)
  endif()
endfunction()

sbx_absolute_dir(sbx_bindir "${SBX_BINDIR}" BINDIR)
sbx_absolute_dir(sbx_sysconfdir "${SBX_SYSCONFDIR}" SYSCONFDIR)
sbx_systemd_dir(sbx_unit_dir "${SBX_DISTRO_UNIT_DIR}" "lib/systemd/system")
sbx_systemd_dir(sbx_sysusers_dir "${SBX_DISTRO_SYSUSERS_DIR}" "lib/sysusers.d")
sbx_systemd_dir(sbx_tmpfiles_dir "${SBX_DISTRO_TMPFILES_DIR}" "lib/tmpfiles.d")

# sbxd.service, filled in for this prefix. sbxd reads /etc/sbx/sbxd.toml
# unless told otherwise: other locations are passed with --config.
set(SBX_CONFIG_FILE "${sbx_sysconfdir}/sbx/sbxd.toml")
set(SBX_ENVIRONMENT_FILE "${sbx_sysconfdir}/default/sbxd")
set(SBX_EXEC_START "${sbx_bindir}/sbxd")
if(NOT SBX_CONFIG_FILE STREQUAL "/etc/sbx/sbxd.toml")
  string(APPEND SBX_EXEC_START " --config ${SBX_CONFIG_FILE}")
endif()
file(READ "${SBX_SYSTEMD_SOURCE_DIR}/sbxd.service.in" sbx_unit)
string(CONFIGURE "${sbx_unit}" sbx_unit @ONLY)
# A staging folder per destination, removed once installed: installs to
# different prefixes may run at the same time (tests do).
string(MD5 sbx_key "$ENV{DESTDIR}|${sbx_prefix}")
set(sbx_staging "${SBX_SYSTEMD_BINARY_DIR}/install-${sbx_key}")
file(WRITE "${sbx_staging}/sbxd.service" "${sbx_unit}")

file(INSTALL DESTINATION "${sbx_unit_dir}" TYPE FILE FILES
  "${sbx_staging}/sbxd.service" "${SBX_SYSTEMD_SOURCE_DIR}/sbxd.socket")
file(REMOVE_RECURSE "${sbx_staging}")
file(INSTALL DESTINATION "${sbx_sysusers_dir}" TYPE FILE
  RENAME sbx.conf FILES "${SBX_SYSTEMD_SOURCE_DIR}/sbx.sysusers")
file(INSTALL DESTINATION "${sbx_tmpfiles_dir}" TYPE FILE
  RENAME sbx.conf FILES "${SBX_SYSTEMD_SOURCE_DIR}/sbx.tmpfiles")

if(EXISTS "$ENV{DESTDIR}${SBX_CONFIG_FILE}")
  message(STATUS "Keeping: $ENV{DESTDIR}${SBX_CONFIG_FILE}")
else()
  file(INSTALL DESTINATION "${sbx_sysconfdir}/sbx" TYPE FILE
    FILES "${SBX_SYSTEMD_SOURCE_DIR}/sbxd.toml")
endif()
