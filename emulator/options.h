/* options.h: lunnel-emulator's command line: one option table on base's option machinery
 * (lunnel/options.h, shared with the lunnel commands), the emulator's own wording of refused
 * values, --help with the defaults of config.h, and the config the values fill. */
#ifndef LUNNEL_EMU_OPTIONS_H
#define LUNNEL_EMU_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "lunnel/options.h"

/* Parses argv[1..argc) into cfg (which holds the defaults). LUNNEL_OPTS_OK with *out set:
 * string settings in cfg point into it, keep it until exit (lunnel_opts_free);
 * LUNNEL_OPTS_HELP for -h/--help; LUNNEL_OPTS_ERROR with one line in err, e.g.
 * "unknown option '--nope' (see --help)", "--partitions: bad number '0'". */
int lunnel_emu_options_parse(int argc, char **argv, lunnel_emu_config *cfg, lunnel_opt_values **out,
                             char *err, size_t err_cap);

/* 1 when the option was named on the command line. */
int lunnel_emu_option_given(const lunnel_opt_values *v, const char *name);

/* --help: every option with its help and its default from `defaults`. */
void lunnel_emu_usage(FILE *f, const lunnel_emu_config *defaults);

#endif
