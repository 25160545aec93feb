# Registers the non-C suites with ctest, by folder convention:
#   spec/**/*_spec.lua   busted under LuaJIT (one ctest entry per spec file)
#   tests/e2e/*.sh       end-to-end shell tests (emulator, CLI, TLS)
#   tests/node/*.test.mjs  official Node.js SDK against the emulator (npm install in a fixture)
set(LUNNEL_TEST_ENV
    "LUNNEL_BUILD_DIR=${CMAKE_BINARY_DIR}"
    "LUNNEL_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
    "LUNNEL_LIB=${CMAKE_BINARY_DIR}/liblunnel.so")
# Processes that load the instrumented liblunnel.so into an uninstrumented LuaJIT need the
# sanitizer runtime first in the process: busted specs get it as LD_PRELOAD; shell tests get
# LUNNEL_LUA_PRELOAD and put it on their luajit/busted command lines only (preloaded into bash
# and coreutils, LeakSanitizer would report those tools' own leaks).
set(LUNNEL_LUA_TEST_ENV ${LUNNEL_TEST_ENV})
if(LUNNEL_ASAN_RUNTIME)
  list(APPEND LUNNEL_LUA_TEST_ENV "LD_PRELOAD=${LUNNEL_ASAN_RUNTIME}")
  list(APPEND LUNNEL_TEST_ENV "LUNNEL_LUA_PRELOAD=${LUNNEL_ASAN_RUNTIME}")
endif()

# No test writes into the source tree: an untracked file that appears while the suites run
# fails tree.check (snapshot before the first test of these suites, check after the last).
add_test(NAME tree.snapshot COMMAND bash ${CMAKE_SOURCE_DIR}/tests/e2e/lib/tree_guard.sh snapshot)
add_test(NAME tree.check COMMAND bash ${CMAKE_SOURCE_DIR}/tests/e2e/lib/tree_guard.sh check)
set_tests_properties(tree.snapshot PROPERTIES FIXTURES_SETUP source_tree LABELS "e2e"
                     ENVIRONMENT "${LUNNEL_TEST_ENV}")
set_tests_properties(tree.check PROPERTIES FIXTURES_CLEANUP source_tree LABELS "e2e"
                     ENVIRONMENT "${LUNNEL_TEST_ENV}")

if(BUSTED)
  file(GLOB_RECURSE specs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/spec/*_spec.lua)
  foreach(s ${specs})
    file(RELATIVE_PATH rel ${CMAKE_SOURCE_DIR} ${s})
    string(REGEX REPLACE "^spec/|_spec\\.lua$" "" tname ${rel})
    string(REPLACE "/" "." tname ${tname})
    add_test(NAME lua.${tname} COMMAND ${BUSTED} --lua=luajit -o utfTerminal ${rel}
             WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(lua.${tname} PROPERTIES LABELS "lua" TIMEOUT 600
                         ENVIRONMENT "${LUNNEL_LUA_TEST_ENV}" FIXTURES_REQUIRED source_tree)
  endforeach()
endif()

file(GLOB e2e CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/e2e/*.sh)
foreach(s ${e2e})
  get_filename_component(name ${s} NAME_WE)
  add_test(NAME e2e.${name} COMMAND bash ${s} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(e2e.${name} PROPERTIES LABELS "e2e" TIMEOUT 900
                       ENVIRONMENT "${LUNNEL_TEST_ENV}" FIXTURES_REQUIRED source_tree)
endforeach()

file(GLOB node_tests CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/node/*.test.mjs)
if(node_tests AND NODE)
  add_test(NAME node.setup COMMAND bash ${CMAKE_SOURCE_DIR}/tests/node/setup.sh
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/node)
  set_tests_properties(node.setup PROPERTIES FIXTURES_SETUP node_sdk TIMEOUT 600 LABELS "e2e")
  foreach(s ${node_tests})
    get_filename_component(name ${s} NAME)
    string(REGEX REPLACE "\\.test\\.mjs$" "" name ${name})
    add_test(NAME node.${name} COMMAND ${NODE} --test ${s} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(node.${name} PROPERTIES FIXTURES_REQUIRED "node_sdk;source_tree" LABELS "e2e"
                         TIMEOUT 900 ENVIRONMENT "${LUNNEL_TEST_ENV}")
  endforeach()
endif()
