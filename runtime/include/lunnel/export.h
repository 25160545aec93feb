/* export.h: LUNNEL_API, the mark of a function liblunnel.so exports.
 *
 * The runtime is compiled with -fvisibility=hidden: a function is visible outside liblunnel.so
 * (and outside the `lunnel` program, where LuaJIT's ffi.C looks) only when its declaration
 * carries LUNNEL_API. Two groups carry it, nothing else:
 *   - the public C API, the installed headers: record.h, codec.h, plainbuffer.h,
 *     readrecords.h, version.h (and this one);
 *   - the C half of the Lua modules that LuaJIT resolves by name: sink_support.h (declared
 *     again in lua/lunnel/sinks/native.lua; not installed, not a C API).
 * tests/e2e/exports.sh holds it: every exported symbol starts with lunnel_ and every
 * function the Lua modules declare is exported. */
#ifndef LUNNEL_EXPORT_H
#define LUNNEL_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define LUNNEL_API __attribute__((visibility("default")))
#else
#define LUNNEL_API
#endif

#endif
