/* version.h: the lunnel release string (also printed by `lunnel --version`). */
#ifndef LUNNEL_VERSION_H
#define LUNNEL_VERSION_H

/* Returns a static string such as "0.1.0". */
const char *lunnel_version(void);

#endif
