/* options.h: command-line options from ONE descriptor table per command: the same table
 * drives parsing (flags, env vars, defaults, validation), `--help`, and the README's option
 * reference (`lunnel help --markdown`). The machinery is base's (src/base/options.c), used by
 * every lunnel command (tables in src/cli/; the shared connection and logging sets in
 * src/cli/client_options.h) and by lunnel-emulator (emulator/options.c).
 *
 * Values: `--name value` or `--name=value`; booleans are bare flags (`--json`); `--` ends
 * options. Precedence: flag > env var > default. Durations accept 500ms, 5s, 2m, 1h (a bare
 * number is seconds); times accept RFC 3339 or milliseconds since the epoch.
 * Secrets (type LUNNEL_OPT_SECRET) are never shown: help prints only where they come from,
 * printed configurations show "****". */
#ifndef LUNNEL_OPTIONS_H
#define LUNNEL_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum lunnel_opt_type {
    LUNNEL_OPT_STRING = 0,
    LUNNEL_OPT_SECRET,   /* string never printed */
    LUNNEL_OPT_INT,      /* int64 */
    LUNNEL_OPT_NUMBER,   /* double */
    LUNNEL_OPT_DURATION, /* double seconds */
    LUNNEL_OPT_TIME,     /* int64 ms since the epoch */
    LUNNEL_OPT_BOOL,     /* flag; env var accepts 1/0/true/false/yes/no */
    LUNNEL_OPT_ENUM,     /* string, one of `choices` ("a|b|c"), compared case-insensitively */
    LUNNEL_OPT_BYTES,    /* int64 bytes: "67108864", "64MiB", "512KiB", "1GB" (bytesize.h) */
} lunnel_opt_type;

typedef struct lunnel_opt {
    const char *name; /* long name without "--" */
    lunnel_opt_type type;
    const char *def;     /* default as text; NULL = none */
    const char *env;     /* environment variable consulted when the flag is absent; NULL */
    const char *choices; /* LUNNEL_OPT_ENUM: "BaseData|Stream|BaseAndStream" */
    const char *metavar; /* shown in help, e.g. "URL"; NULL = from the type */
    int required;
    const char *help;
} lunnel_opt;

typedef struct lunnel_opt_set {
    const char *title; /* "Connection", "Logging", ... */
    const lunnel_opt *opts;
    size_t n;
} lunnel_opt_set;

#define LUNNEL_OPT_SET(title, arr)                                                                 \
    {                                                                                              \
        title, arr, sizeof(arr) / sizeof((arr)[0])                                                 \
    }

/* What was wrong with a command line, for a program that words its own messages. */
typedef enum lunnel_opt_problem {
    LUNNEL_OPT_UNKNOWN,    /* arg: the whole argument ("--nope=1", "-x") */
    LUNNEL_OPT_NO_VALUE,   /* opt: the option given last without its value */
    LUNNEL_OPT_BAD_VALUE,  /* opt, arg: a flag's value its type refuses */
    LUNNEL_OPT_UNEXPECTED, /* arg: the first positional argument past max_args */
} lunnel_opt_problem;

/* A command's complete option table: its own set(s) plus shared ones. */
typedef struct lunnel_command_spec {
    const char *name;    /* "tunnel create" */
    const char *usage;   /* "lunnel tunnel create --table T --tunnel NAME --type TYPE" */
    const char *summary; /* one line */
    const lunnel_opt_set *sets[6];
    size_t n_sets;
    int min_args, max_args; /* positional arguments accepted */
} lunnel_command_spec;

/* Writes the message of a problem above into err, for a program with its own wording. */
typedef void (*lunnel_opt_complain_fn)(lunnel_opt_problem problem, const lunnel_opt *opt,
                                       const char *arg, char *err, size_t err_cap);

typedef struct lunnel_opt_values lunnel_opt_values;

enum { LUNNEL_OPTS_OK = 0, LUNNEL_OPTS_HELP = 1, LUNNEL_OPTS_ERROR = -1 };

/* Parses argv[first..argc) against spec. Returns LUNNEL_OPTS_OK with *out set (free with
 * lunnel_opts_free), LUNNEL_OPTS_HELP when -h/--help was given (*out NULL), or
 * LUNNEL_OPTS_ERROR with a one-line message in err ("unknown option --foo", "--type must
 * be one of BaseData|Stream|BaseAndStream", "missing --table") and *out NULL. */
int lunnel_opts_parse(const lunnel_command_spec *spec, int argc, char **argv, int first,
                      lunnel_opt_values **out, char *err, size_t err_cap);
/* The same, with the messages of the four problems above written by `complain` (the
 * emulator keeps its own wording); messages about env vars and required options stay. Such a
 * program has no "--" (end of options): it is an unknown option like any other. */
int lunnel_opts_parse_worded(const lunnel_command_spec *spec, lunnel_opt_complain_fn complain,
                             int argc, char **argv, int first, lunnel_opt_values **out, char *err,
                             size_t err_cap);
void lunnel_opts_free(lunnel_opt_values *v);

/* Typed getters by option name; the value has been validated by the parser. `name` must be
 * in the spec (else NULL/0). *_has says whether a value exists (flag, env or default). */
int lunnel_opts_has(const lunnel_opt_values *v, const char *name);
const char *lunnel_opts_str(const lunnel_opt_values *v, const char *name); /* NULL if none */
int64_t lunnel_opts_int(const lunnel_opt_values *v, const char *name);
double lunnel_opts_num(const lunnel_opt_values *v, const char *name);   /* NUMBER, DURATION(s) */
int64_t lunnel_opts_time(const lunnel_opt_values *v, const char *name); /* ms since epoch */
int lunnel_opts_bool(const lunnel_opt_values *v, const char *name);
/* Positional arguments. */
int lunnel_opts_argc(const lunnel_opt_values *v);
const char *lunnel_opts_arg(const lunnel_opt_values *v, int i);

/* `--help` text for a command, grouped by set, with defaults and env vars (never values of
 * secrets). */
void lunnel_opts_print_help(const lunnel_command_spec *spec, FILE *f);
/* The README reference: a "### lunnel <name>" section with a Markdown table per set. */
void lunnel_opts_print_markdown(const lunnel_command_spec *spec, FILE *f);
/* Effective configuration, one "name = value (source)" per line; secrets as "****". */
void lunnel_opts_print_config(const lunnel_opt_values *v, FILE *f);

#endif
