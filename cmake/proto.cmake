# Generates protobuf-c code for every proto/*.proto into the build tree: target lunnel_proto.
file(GLOB LUNNEL_PROTOS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/proto/*.proto)
set(PROTO_OUT ${CMAKE_BINARY_DIR}/proto)
file(MAKE_DIRECTORY ${PROTO_OUT})
set(PROTO_SRCS "")
foreach(p ${LUNNEL_PROTOS})
  get_filename_component(base ${p} NAME_WE)
  set(c ${PROTO_OUT}/proto/${base}.pb-c.c)
  set(h ${PROTO_OUT}/proto/${base}.pb-c.h)
  add_custom_command(
    OUTPUT ${c} ${h}
    COMMAND ${PROTOC_C} --proto_path=${CMAKE_SOURCE_DIR} --c_out=${PROTO_OUT} ${p}
    DEPENDS ${p}
    COMMENT "protoc-c ${base}.proto")
  list(APPEND PROTO_SRCS ${c})
endforeach()
add_library(lunnel_proto STATIC ${PROTO_SRCS})
# Generated code: include as <proto/NAME.pb-c.h>; not held to our warning flags.
target_include_directories(lunnel_proto PUBLIC ${PROTO_OUT})
target_compile_options(lunnel_proto PRIVATE -w)
# Hidden like the runtime (protobuf-c's generated descriptors are not part of liblunnel's API).
set_target_properties(lunnel_proto PROPERTIES C_VISIBILITY_PRESET hidden)
target_link_libraries(lunnel_proto PUBLIC PkgConfig::PROTOBUFC)
