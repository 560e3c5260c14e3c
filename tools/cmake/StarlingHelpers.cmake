# Build knobs shared by every target: warnings, sanitizers, static linking.

add_library(starling_options INTERFACE)
target_compile_options(starling_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-qual -Wimplicit-fallthrough -Werror)
# GCC 12 at -O2/-O3 reports -Wrestrict and -Wstringop-overflow inside libstdc++'s own
# std::string and std::vector code (GCC bugs 105651, 106199): noise, not findings.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(starling_options INTERFACE -Wno-restrict -Wno-stringop-overflow)
endif()
if(STARLING_STATIC)
  target_compile_options(starling_options INTERFACE -ffunction-sections -fdata-sections)
endif()
# The static release is the devices' binary and must fit their flash budget: everything is
# optimised for size (-Os) but the training hot path, which starling_hot_sources() marks -O3.
set(STARLING_SIZE_OPTIMISED OFF)
if(STARLING_STATIC AND NOT STARLING_SANITIZE AND CMAKE_BUILD_TYPE STREQUAL "Release")
  set(STARLING_SIZE_OPTIMISED ON)
  target_compile_options(starling_options INTERFACE -Os)
endif()
# Baseline ISA for everything but the per-level kernel files: x86-64 (SSE2). Never -march=native:
# the one binary must run on a Celeron without AVX.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  target_compile_options(starling_options INTERFACE -march=x86-64 -mtune=generic)
endif()

if(STARLING_SANITIZE)
  target_compile_options(starling_options INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(starling_options INTERFACE -fsanitize=address,undefined)
endif()

# libFuzzer builds (clang only): every library gets coverage instrumentation, the fuzz targets
# in tools/fuzz get libFuzzer's main().
if(STARLING_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "STARLING_FUZZ needs clang (libFuzzer); use the 'fuzz' preset")
  endif()
  target_compile_options(starling_options INTERFACE -fsanitize=fuzzer-no-link)
endif()

# starling_hot_sources(FILES...) — sources on the training hot path (per-step code): -O3 even
# where the rest of the binary is built for size. Call it in the directory that builds them.
function(starling_hot_sources)
  if(STARLING_SIZE_OPTIMISED)
    set_property(SOURCE ${ARGN} APPEND PROPERTY COMPILE_OPTIONS -O3)
  endif()
endfunction()

# starling_library(NAME SOURCES... [DEPS ...]) — one static library per top-level folder.
function(starling_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_link_libraries(${name} PUBLIC starling_include starling_options ${ARG_DEPS})
endfunction()

# starling_executable(NAME SOURCES... [DEPS ...]) — a binary; fully static when STARLING_STATIC.
function(starling_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE starling_options ${ARG_DEPS})
  if(STARLING_STATIC)
    # Unreferenced functions of the static libraries (and of libc/libstdc++ where they allow it)
    # are dropped: the stripped binary must stay under 4 MB for the devices' flash budget.
    target_link_options(${name} PRIVATE -static -Wl,--gc-sections)
  endif()
endfunction()

# starling_test(NAME SOURCES... [DEPS ...]) — a doctest suite registered with CTest.
function(starling_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  # doctest's main() is compiled once and shared: it is the slowest file of every suite.
  if(NOT TARGET starling_doctest_main)
    add_library(starling_doctest_main OBJECT ${PROJECT_SOURCE_DIR}/tests/doctest_main.cpp)
    target_link_libraries(starling_doctest_main PRIVATE starling_options doctest::doctest)
  endif()
  add_executable(${name} ${ARG_SOURCES} $<TARGET_OBJECTS:starling_doctest_main>)
  target_link_libraries(${name} PRIVATE starling_options doctest::doctest ${ARG_DEPS})
  target_compile_definitions(${name} PRIVATE
    STARLING_TEST_DATA_DIR="${PROJECT_SOURCE_DIR}/tests/data")
  if(STARLING_STATIC)
    # Static like the product, so a suite can be copied to another machine and run there.
    target_link_options(${name} PRIVATE -static)
  endif()
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT 600)
endfunction()

# starling_flatbuffers(TARGET SCHEMAS...) — compiles .fbs schemas with flatc at build time.
# Generated headers land in the build tree as <binary-dir>/generated/protocol/<name>_generated.h
# and are never committed. One custom target per schema, so the helper may be called more than
# once for the same target.
function(starling_flatbuffers target)
  set(out_dir ${PROJECT_BINARY_DIR}/generated/protocol)
  foreach(schema ${ARGN})
    get_filename_component(abs ${schema} ABSOLUTE)
    get_filename_component(stem ${schema} NAME_WE)
    set(out ${out_dir}/${stem}_generated.h)
    add_custom_command(
      OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
      COMMAND ${FLATC} --cpp --scoped-enums --no-prefix -o ${out_dir} ${abs}
      DEPENDS ${abs}
      COMMENT "flatc ${stem}.fbs"
      VERBATIM)
    add_custom_target(${target}_${stem}_schema DEPENDS ${out})
    add_dependencies(${target} ${target}_${stem}_schema)
  endforeach()
  target_include_directories(${target} PUBLIC ${PROJECT_BINARY_DIR}/generated)
endfunction()

# starling_fuzzer(NAME SOURCES... DEPS ...) — a libFuzzer target, registered with CTest to run
# for STARLING_FUZZ_SECONDS from a fixed seed (a crash, leak or sanitizer report fails it).
function(starling_fuzzer name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE starling_options ${ARG_DEPS})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  add_test(NAME ${name}
    COMMAND ${name} -seed=1 -max_total_time=${STARLING_FUZZ_SECONDS} -rss_limit_mb=2048
            -print_final_stats=1)
  set_tests_properties(${name} PROPERTIES LABELS fuzz TIMEOUT 600)
endfunction()
