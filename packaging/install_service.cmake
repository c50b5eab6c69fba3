# Runs at install time (install(SCRIPT)), when CMAKE_INSTALL_PREFIX is the
# prefix really installed to: `cmake --install --prefix DIR` keeps the unit
# and the configuration inside DIR, while the Debian package (prefix /usr)
# puts them where the system looks: /etc and /lib/systemd/system, as
# GNUInstallDirs does for /usr and Debian 12 does for units.
#
# Set by the install(CODE) before it: EVBUS_PACKAGING_SRC, EVBUS_PACKAGING_BIN,
# EVBUS_INSTALL_BINDIR, EVBUS_INSTALL_LIBDIR, EVBUS_INSTALL_DOCDIR (relative).
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(etc /etc)
  set(unitdir /lib/systemd/system)
else()
  set(etc ${CMAKE_INSTALL_PREFIX}/etc)
  set(unitdir ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
endif()
set(EVBUS_CONFDIR ${etc}/evbus)
set(EVBUS_BINDIR ${CMAKE_INSTALL_PREFIX}/${EVBUS_INSTALL_BINDIR})
set(EVBUS_PLUGINDIR ${CMAKE_INSTALL_PREFIX}/${EVBUS_INSTALL_LIBDIR}/evbus/plugins)
set(EVBUS_DOCDIR ${CMAKE_INSTALL_PREFIX}/${EVBUS_INSTALL_DOCDIR})

# A directory of its own per prefix: CPack and a plain install may run from
# the same build tree.
string(MD5 tag "${CMAKE_INSTALL_PREFIX}")
set(out ${EVBUS_PACKAGING_BIN}/service-${tag})
configure_file(${EVBUS_PACKAGING_SRC}/evbusd.service.in ${out}/evbusd.service @ONLY)
configure_file(${EVBUS_PACKAGING_SRC}/evbus.yaml.in ${out}/evbus.yaml @ONLY)
file(INSTALL ${out}/evbusd.service DESTINATION ${unitdir}
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
# An installed configuration is the administrator's: a later install (say,
# cmake --install to /usr over an earlier one) leaves it alone.
set(conf "$ENV{DESTDIR}${EVBUS_CONFDIR}/evbus.yaml")
if(EXISTS "${conf}")
  message(STATUS "Keeping: ${conf} (the shipped one is ${out}/evbus.yaml)")
else()
  file(INSTALL ${out}/evbus.yaml DESTINATION ${EVBUS_CONFDIR}
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endif()
