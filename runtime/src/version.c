/* version.c: the library's version string, and the anchor source of the shared liblunnel
 * (every subsystem archive is linked into it whole). */
#include "lunnel/version.h"

const char *lunnel_version(void)
{
    return LUNNEL_VERSION_STRING;
}
