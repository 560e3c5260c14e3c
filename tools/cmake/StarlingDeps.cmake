# Third-party dependencies, all from Debian packages (see tools/install-deps.sh).

find_package(Threads REQUIRED)
find_package(xtl REQUIRED)
find_package(xsimd REQUIRED)
find_package(xtensor REQUIRED)
find_package(FlatBuffers REQUIRED)
find_package(CLI11 REQUIRED)
find_package(doctest REQUIRED)

# Static archives when linking a static binary; shared objects otherwise.
if(STARLING_STATIC)
  set(_starling_lib_names libsodium.a sodium)
  set(_starling_z_names libz.a z)
  set(_starling_zstd_names libzstd.a zstd)
else()
  set(_starling_lib_names sodium)
  set(_starling_z_names z)
  set(_starling_zstd_names zstd)
endif()
find_library(SODIUM_LIBRARY NAMES ${_starling_lib_names} REQUIRED)
find_path(SODIUM_INCLUDE_DIR sodium.h REQUIRED)
add_library(starling::sodium INTERFACE IMPORTED)
target_link_libraries(starling::sodium INTERFACE ${SODIUM_LIBRARY})
target_include_directories(starling::sodium SYSTEM INTERFACE ${SODIUM_INCLUDE_DIR})

find_library(ZLIB_LIBRARY_FOR_STARLING NAMES ${_starling_z_names} REQUIRED)
add_library(starling::zlib INTERFACE IMPORTED)
target_link_libraries(starling::zlib INTERFACE ${ZLIB_LIBRARY_FOR_STARLING})

# zstd (libzstd-dev): the optional lossless pass over model payloads on the wire.
find_library(ZSTD_LIBRARY_FOR_STARLING NAMES ${_starling_zstd_names} REQUIRED)
find_path(ZSTD_INCLUDE_DIR zstd.h REQUIRED)
add_library(starling::zstd INTERFACE IMPORTED)
target_link_libraries(starling::zstd INTERFACE ${ZSTD_LIBRARY_FOR_STARLING})
target_include_directories(starling::zstd SYSTEM INTERFACE ${ZSTD_INCLUDE_DIR})

find_program(FLATC flatc REQUIRED)

# toml++ (libtomlplusplus-dev): only its header. Debian ships the compiled part as a shared library
# alone, so firmware/config.cpp, the one file that includes it, compiles it header-only.
find_path(TOMLPLUSPLUS_INCLUDE_DIR toml++/toml.h REQUIRED)
add_library(starling::tomlplusplus INTERFACE IMPORTED)
target_include_directories(starling::tomlplusplus SYSTEM INTERFACE ${TOMLPLUSPLUS_INCLUDE_DIR})
