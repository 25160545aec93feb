/* lua_dir.h: where the lunnel Lua modules are, for the commands that start a Lua host. */
#ifndef LUNNEL_CLI_LUA_DIR_H
#define LUNNEL_CLI_LUA_DIR_H

/* Returns the directory to prepend to package.path (static storage), or NULL when
 * $LUNNEL_LUA_DIR is set (the host reads it) or nothing was found (LuaJIT's default path).
 * Order: $LUNNEL_LUA_DIR; <exe>/../share/lua/5.1 (an installed lunnel, so an install never
 * picks up a source tree that moved on); the source tree this binary was built from. */
const char *lunnel_cli_lua_dir(void);

#endif
