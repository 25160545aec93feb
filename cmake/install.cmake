# install.cmake: `make install PREFIX=...` (cmake --install): the lunnel and lunnel-emulator
# programs, liblunnel (+ public headers), lunnel's Lua modules where LuaJIT looks for them
# (PREFIX/share/lua/5.1/lunnel/...), the example scripts, man pages and the contrib files
# (systemd unit, container recipe). Included at the end of the top-level CMakeLists.txt.
#
# The installed programs contain the runtime (they do not load liblunnel.so); the RUNPATH
# is $ORIGIN-relative all the same, so a PREFIX can be moved or chosen at install time
# (`cmake --install build --prefix /opt/lunnel`).
include(GNUInstallDirs)

set(LUNNEL_INSTALL_LUADIR ${CMAKE_INSTALL_DATADIR}/lua/5.1 CACHE STRING
    "Where the lunnel Lua modules go, relative to the prefix (LuaJIT's share/lua/5.1)")

foreach(t lunnel_cli lunnel_emulator)
  if(TARGET ${t})
    set_target_properties(${t} PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
    install(TARGETS ${t} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()

# The public C API (README "Embedding"): the headers whose functions liblunnel.so exports.
# The other headers of runtime/include/lunnel/ are the subsystems' internal contracts (the
# program's option table, the tunnel worker, the Lua host, ...): not installed, not exported.
set(LUNNEL_PUBLIC_HEADERS export.h version.h codec.h record.h plainbuffer.h readrecords.h)
if(TARGET lunnel)
  install(TARGETS lunnel LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  list(TRANSFORM LUNNEL_PUBLIC_HEADERS PREPEND ${CMAKE_SOURCE_DIR}/runtime/include/lunnel/
       OUTPUT_VARIABLE public_header_paths)
  install(FILES ${public_header_paths} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/lunnel)
endif()

install(DIRECTORY ${CMAKE_SOURCE_DIR}/lua/lunnel DESTINATION ${LUNNEL_INSTALL_LUADIR}
        FILES_MATCHING PATTERN "*.lua")
install(DIRECTORY ${CMAKE_SOURCE_DIR}/examples/ DESTINATION ${CMAKE_INSTALL_DATADIR}/lunnel/examples
        FILES_MATCHING PATTERN "*.lua")

install(FILES ${CMAKE_SOURCE_DIR}/man/lunnel.1 ${CMAKE_SOURCE_DIR}/man/lunnel-emulator.1
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/contrib/ DESTINATION ${CMAKE_INSTALL_DATADIR}/lunnel/contrib)
