# Finds the system libraries lunnel links against (installed by scripts/deps).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED)
pkg_check_modules(LUAJIT REQUIRED IMPORTED_TARGET luajit)
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
pkg_check_modules(PROTOBUFC REQUIRED IMPORTED_TARGET libprotobuf-c)

# libev ships no pkg-config file.
find_path(EV_INCLUDE_DIR ev.h PATH_SUFFIXES libev REQUIRED)
find_library(EV_LIBRARY ev REQUIRED)
add_library(lunnel_ev INTERFACE)
target_include_directories(lunnel_ev INTERFACE ${EV_INCLUDE_DIR})
target_link_libraries(lunnel_ev INTERFACE ${EV_LIBRARY})
# ev.h trips -Wextra in users' code (strict aliasing, unused params in inline helpers).
target_compile_options(lunnel_ev INTERFACE -Wno-strict-aliasing -Wno-unused-parameter)

find_program(PROTOC_C protoc-c REQUIRED)
find_program(BUSTED busted)
find_program(NODE node)
