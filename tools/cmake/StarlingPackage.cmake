# The Debian package: `cpack -G DEB` in a build directory writes starling_VERSION_amd64.deb with
# the binaries, the systemd unit, the default configuration and the man page. Included last, so
# the optional tools' targets are known.

install(TARGETS starling RUNTIME DESTINATION bin)
foreach(tool starling-inspect starling-sim)
  if(TARGET ${tool})
    install(TARGETS ${tool} RUNTIME DESTINATION bin)
  endif()
endforeach()
set(_pkg ${PROJECT_SOURCE_DIR}/firmware/package)
install(FILES ${_pkg}/starling.service DESTINATION lib/systemd/system)
install(FILES ${_pkg}/starling.toml DESTINATION /etc/starling)

# The man page comes from `starling --help` (help2man); without help2man, the help text itself.
find_program(HELP2MAN help2man)
set(_doc_dir ${PROJECT_BINARY_DIR}/doc)
if(HELP2MAN)
  add_custom_command(
    OUTPUT ${_doc_dir}/starling.1.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${_doc_dir}
    COMMAND ${HELP2MAN} --no-info --no-discard-stderr --section=1
            "--name=masterless peer-to-peer training node" --output=${_doc_dir}/starling.1
            $<TARGET_FILE:starling>
    COMMAND gzip -n -9 -f ${_doc_dir}/starling.1
    DEPENDS starling
    COMMENT "help2man starling"
    VERBATIM)
  add_custom_target(starling_man ALL DEPENDS ${_doc_dir}/starling.1.gz)
  install(FILES ${_doc_dir}/starling.1.gz DESTINATION share/man/man1)
else()
  add_custom_command(
    OUTPUT ${_doc_dir}/starling.txt
    COMMAND ${CMAKE_COMMAND} -E make_directory ${_doc_dir}
    COMMAND sh -c "$<TARGET_FILE:starling> --help > ${_doc_dir}/starling.txt"
    DEPENDS starling
    VERBATIM)
  add_custom_target(starling_man ALL DEPENDS ${_doc_dir}/starling.txt)
  install(FILES ${_doc_dir}/starling.txt DESTINATION share/doc/starling)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME starling)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "Starling maintainers <starling@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Masterless peer-to-peer training node for edge devices")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # starling_VERSION_amd64.deb
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE amd64)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")  # postinst; the binaries are static
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
configure_file(${_pkg}/conffiles ${PROJECT_BINARY_DIR}/package/conffiles COPYONLY)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${_pkg}/postinst ${_pkg}/prerm ${_pkg}/postrm ${PROJECT_BINARY_DIR}/package/conffiles)
include(CPack)

# Builds the .deb, checks its contents, unpacks it into a temporary root and verifies the unit.
# Only for the static release build: the package ships that binary.
if(STARLING_STATIC AND STARLING_BUILD_TESTS)
  add_test(NAME package_deb
    COMMAND bash ${PROJECT_SOURCE_DIR}/tests/package/check_deb.sh
            ${PROJECT_BINARY_DIR} ${PROJECT_VERSION})
  set_tests_properties(package_deb PROPERTIES LABELS package TIMEOUT 600)
endif()
