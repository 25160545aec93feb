# Benchmark programs that the test suite also runs on small inputs, built like everything else
# (same compiler and sanitizer flags: a sanitizer build must not mix plain and instrumented
# objects). Output in ${CMAKE_BINARY_DIR}/bench/.
if(EXISTS ${CMAKE_SOURCE_DIR}/bench/emulator/readrecords_bench.c AND TARGET lunnel_net)
  add_executable(readrecords_bench ${CMAKE_SOURCE_DIR}/bench/emulator/readrecords_bench.c)
  target_include_directories(readrecords_bench PRIVATE ${CMAKE_SOURCE_DIR}/emulator/tests)
  target_link_libraries(readrecords_bench PRIVATE lunnel_net lunnel_proto)
  set_target_properties(readrecords_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
endif()
# The metrics hooks' loop-thread cost (bench/metrics/run.sh): internals of tunnel/, linked
# from the archive (liblunnel.so does not export them).
if(EXISTS ${CMAKE_SOURCE_DIR}/bench/metrics/hooks_bench.c AND TARGET lunnel_tunnel)
  add_executable(metrics_hooks_bench ${CMAKE_SOURCE_DIR}/bench/metrics/hooks_bench.c)
  target_link_libraries(metrics_hooks_bench PRIVATE lunnel_tunnel)
  set_target_properties(metrics_hooks_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
endif()
