# drop-ldconfig-scripts.cmake - CPack post-build script (CPACK_POST_BUILD_SCRIPTS).
# CPack gives a package that ships a shared library in /usr/lib postinst and
# postrm scripts that call ldconfig, a pre-triggers practice: Debian's lintian
# warns about it, and a postrm keeps the package in dpkg's "config-files" state
# after removal. libmq2 activates the ldconfig trigger instead
# (deb/libmq2/triggers), so its two scripts are taken out of the .deb here.
foreach(deb IN LISTS CPACK_PACKAGE_FILES)
  get_filename_component(name "${deb}" NAME)
  if(NOT name MATCHES "^libmq2_.*\\.deb$")
    continue()
  endif()
  set(tree "${CPACK_TOPLEVEL_DIRECTORY}/libmq2-repack")
  file(REMOVE_RECURSE "${tree}")
  execute_process(COMMAND dpkg-deb -R "${deb}" "${tree}" COMMAND_ERROR_IS_FATAL ANY)
  file(REMOVE "${tree}/DEBIAN/postinst" "${tree}/DEBIAN/postrm")
  execute_process(COMMAND dpkg-deb --root-owner-group -Zgzip -b "${tree}" "${deb}"
                  OUTPUT_QUIET COMMAND_ERROR_IS_FATAL ANY)
  file(REMOVE_RECURSE "${tree}")
  message(STATUS "libmq2: ldconfig scripts dropped (the ldconfig trigger does their work)")
endforeach()
