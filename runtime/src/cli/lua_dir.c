/* lua_dir.c: finds the lunnel Lua modules for `lunnel run` and `lunnel replay`, whether the
 * binary is installed (PREFIX/bin/lunnel -> PREFIX/share/lua/5.1) or run from the build tree. */
#include "cli/lua_dir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int has_modules(const char *dir)
{
    char probe[4400];
    snprintf(probe, sizeof probe, "%s/lunnel/host.lua", dir);
    return access(probe, R_OK) == 0;
}

const char *lunnel_cli_lua_dir(void)
{
    static char dir[4300];
    const char *env = getenv("LUNNEL_LUA_DIR");
    if (env && *env) return NULL;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(dir, sizeof dir, "%s/../share/lua/5.1", exe);
            if (has_modules(dir)) return dir;
        }
    }
#ifdef LUNNEL_SOURCE_DIR
    snprintf(dir, sizeof dir, "%s/lua", LUNNEL_SOURCE_DIR);
    if (has_modules(dir)) return dir;
#endif
    return NULL;
}
