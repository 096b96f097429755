# SPDX-License-Identifier: BSD-3-Clause
# Install-time half of "cmake --install": the unit and /etc/nvt/nvt.conf depend on the
# prefix given then (--prefix /usr), which configure time cannot know.
#
# Set by the top-level CMakeLists.txt: NVT_SRC_DIR, NVT_BIN_DIR, NVT_SBINDIR (relative),
# NVT_SYSTEMD_UNITDIR (absolute or empty), NVT_PKG_UNITDIR (systemd.pc's, or empty).

# The configuration lives outside the prefix for a system install (/usr -> /etc),
# as GNUInstallDirs decides for CMAKE_INSTALL_FULL_SYSCONFDIR.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
	set(nvt_confdir "/etc/nvt")
else()
	set(nvt_confdir "${CMAKE_INSTALL_PREFIX}/etc/nvt")
endif()

# systemd reads /usr/lib (or, unmerged, /lib) and /usr/local/lib/systemd/system;
# any other prefix gets its own lib/systemd/system for the admin to link from.
if(NVT_SYSTEMD_UNITDIR)
	set(nvt_unitdir "${NVT_SYSTEMD_UNITDIR}")
elseif(CMAKE_INSTALL_PREFIX STREQUAL "/usr" AND NVT_PKG_UNITDIR)
	set(nvt_unitdir "${NVT_PKG_UNITDIR}")
else()
	set(nvt_unitdir "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
endif()

set(NVT_SBINDIR "${CMAKE_INSTALL_PREFIX}/${NVT_SBINDIR}")
set(NVT_CONF_FILE "${nvt_confdir}/nvt.conf")
# One generated unit per destination, so two installs at once cannot swap theirs.
string(MD5 nvt_dest "$ENV{DESTDIR}|${CMAKE_INSTALL_PREFIX}")
set(nvt_unit "${NVT_BIN_DIR}/unit-${nvt_dest}/nvtd.service")
configure_file("${NVT_SRC_DIR}/conf/nvtd.service.in" "${nvt_unit}" @ONLY)
# file(INSTALL) adds $DESTDIR and records the file in install_manifest.txt.
file(INSTALL DESTINATION "${nvt_unitdir}" TYPE FILE FILES "${nvt_unit}")

# An admin's edited configuration is never overwritten by a re-install.
if(EXISTS "$ENV{DESTDIR}${NVT_CONF_FILE}")
	message(STATUS "Keeping: $ENV{DESTDIR}${NVT_CONF_FILE} (the shipped one is in share/doc/nvt/examples)")
else()
	file(INSTALL DESTINATION "${nvt_confdir}" TYPE FILE PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ
	     FILES "${NVT_SRC_DIR}/conf/nvt.conf")
endif()
