/* version.h: the lunnel release string (also printed by `lunnel --version`). */
#ifndef LUNNEL_VERSION_H
#define LUNNEL_VERSION_H

#include "lunnel/export.h"

/* Returns a static string such as "0.1.0". */
LUNNEL_API const char *lunnel_version(void);

#endif
