# What `cmake --install` puts where, the CMake package that find_package(rill)
# reads, rill.pc for pkg-config, and the Debian package CPack builds.
#
# The libraries are static: a topology binary carries rill in itself and needs
# only the Debian packages of rill's dependencies at run time.
include(CMakePackageConfigHelpers)

set(RILL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/rill)

set(RILL_INSTALLED_LIBRARIES rill rill_pipeline rill_kafka rill_config)
if(RILL_TSAN)
  list(APPEND RILL_INSTALLED_LIBRARIES rill_tsan_threads)
endif()
install(TARGETS ${RILL_INSTALLED_LIBRARIES}
        EXPORT rillTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS rill_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# `cmake --install --strip` (and the Debian package) strips the static
# libraries' debug information too, which is nine tenths of their size.
foreach(library ${RILL_INSTALLED_LIBRARIES})
  install(CODE "if(CMAKE_INSTALL_DO_STRIP)
    execute_process(COMMAND \"${CMAKE_STRIP}\" --strip-debug
      \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/lib${library}.a\")
  endif()")
endforeach()

install(DIRECTORY ${PROJECT_SOURCE_DIR}/framework/include/rill
                  ${PROJECT_SOURCE_DIR}/operators/include/rill
                  ${PROJECT_SOURCE_DIR}/framework/pipeline/include/rill
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
install(FILES ${PROJECT_BINARY_DIR}/framework/include/rill/version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/rill)

# The JSON Schema of pipelines (for editors), the dashboards and alerts, and
# the example pipelines.
install(FILES ${PROJECT_SOURCE_DIR}/config/schema/rill-pipeline.schema.json
        DESTINATION ${CMAKE_INSTALL_DATADIR}/rill/schema)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/config/grafana ${PROJECT_SOURCE_DIR}/config/prometheus
        DESTINATION ${CMAKE_INSTALL_DATADIR}/rill/dashboards)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/config/pipelines/
        DESTINATION ${CMAKE_INSTALL_DATADIR}/rill/examples)

install(EXPORT rillTargets NAMESPACE rill:: DESTINATION ${RILL_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/rillConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/rillConfig.cmake
                              INSTALL_DESTINATION ${RILL_CMAKE_DIR})
# A program written against 0.2 builds against any 0.2.x, not 0.3: before 1.0
# a minor release may change the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/rillConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/rillConfig.cmake ${PROJECT_BINARY_DIR}/rillConfigVersion.cmake
        DESTINATION ${RILL_CMAKE_DIR})

# rill.pc finds the prefix from its own place, so the same file serves the
# Debian package (/usr) and any --prefix.
file(RELATIVE_PATH RILL_PC_PREFIX "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
string(REGEX REPLACE "/$" "" RILL_PC_PREFIX "${RILL_PC_PREFIX}")
set(RILL_PC_ALLOCATOR "")
if(RILL_ALLOCATOR STREQUAL "tcmalloc")
  set(RILL_PC_ALLOCATOR " libtcmalloc_minimal")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/rill.pc.in ${PROJECT_BINARY_DIR}/rill.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/rill.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The Debian package: `cpack -G DEB` in the build tree writes rill_<version>_<arch>.deb.
set(CPACK_PACKAGE_NAME rill)
set(CPACK_PACKAGE_VENDOR "rill")
set(CPACK_PACKAGE_CONTACT "rill maintainers <rill@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "stream processing on Apache Kafka: the rill command and library")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# Without the debug information of the RelWithDebInfo build: a tenth of the size.
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
# Run time: the rill command links these shared libraries. Build time of
# topology binaries: the headers and CMake packages of rill's dependencies.
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "librdkafka++1 (>= 2.0), librdkafka1 (>= 2.0), librocksdb7.8, libyaml-cpp0.7, libprometheus-cpp-core1.0, libprometheus-cpp-pull1.0, libspdlog1.10, libfmt9, libpqxx-6.4, libssl3, libcurl4, libzstd1, libsimdjson14, librdkafka-dev (>= 2.0), librocksdb-dev, libyaml-cpp-dev, prometheus-cpp-dev, libspdlog-dev, libfmt-dev, nlohmann-json3-dev, libpqxx-dev, libssl-dev, libcurl4-openssl-dev, libzstd-dev, libsimdjson-dev, libboost-dev (>= 1.74), pkg-config")
if(RILL_ALLOCATOR STREQUAL "tcmalloc")
  string(APPEND CPACK_DEBIAN_PACKAGE_DEPENDS ", libtcmalloc-minimal4, libgoogle-perftools-dev")
endif()
include(CPack)
