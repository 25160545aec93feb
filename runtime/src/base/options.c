/* options.c: the option-table machinery of options.h (parse, help, Markdown reference,
 * printed config), shared by the lunnel commands (their tables: cli/) and lunnel-emulator
 * (emulator/options.c). Programs declare tables; nothing else lists options. */
#include "lunnel/options.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lunnel/bytesize.h"
#include "lunnel/log.h"
#include "lunnel/timeutil.h"

typedef enum { SRC_NONE = 0, SRC_DEFAULT, SRC_ENV, SRC_FLAG } value_source;

typedef struct {
    const lunnel_opt *opt;
    char *text; /* owned copy; NULL when absent */
    value_source src;
    double num;
    int64_t i64;
} slot;

struct lunnel_opt_values {
    slot *slots;
    size_t n;
    char **args;
    int n_args;
};

static void errf(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static const char *type_metavar(const lunnel_opt *o)
{
    if (o->metavar) return o->metavar;
    switch (o->type) {
    case LUNNEL_OPT_INT:
        return "N";
    case LUNNEL_OPT_NUMBER:
        return "X";
    case LUNNEL_OPT_DURATION:
        return "DURATION";
    case LUNNEL_OPT_TIME:
        return "TIME";
    case LUNNEL_OPT_BYTES:
        return "BYTES";
    case LUNNEL_OPT_ENUM:
        return o->choices;
    case LUNNEL_OPT_BOOL:
        return "";
    default:
        return "VALUE";
    }
}

static int choice_match(const char *choices, const char *v, char *canon, size_t cap)
{
    const char *p = choices;
    size_t vl = strlen(v);
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == vl && strncasecmp(p, v, l) == 0) {
            snprintf(canon, cap, "%.*s", (int)l, p);
            return 1;
        }
        p += l + (bar ? 1 : 0);
    }
    return 0;
}

/* Validates and converts s->text; message names the option and where the value came from. */
static int convert(slot *s, char *err, size_t cap)
{
    const lunnel_opt *o = s->opt;
    const char *t = s->text;
    const char *from = s->src == SRC_ENV ? o->env : NULL;
    char where[96];
    if (from)
        snprintf(where, sizeof where, "$%s (for --%s)", from, o->name);
    else
        snprintf(where, sizeof where, "--%s", o->name);
    char *end;
    switch (o->type) {
    case LUNNEL_OPT_INT: {
        long long v = strtoll(t, &end, 10);
        if (!*t || *end) {
            errf(err, cap, "%s expects an integer, got \"%.60s\"", where, t);
            return -1;
        }
        s->i64 = v;
        s->num = (double)v;
        return 0;
    }
    case LUNNEL_OPT_BYTES: {
        uint64_t b;
        if (lunnel_bytes_parse(t, &b) != 0) {
            errf(err, cap, "%s expects a byte size like 67108864, 64MiB or 512KiB, got \"%.60s\"",
                 where, t);
            return -1;
        }
        s->i64 = (int64_t)b;
        s->num = (double)b;
        return 0;
    }
    case LUNNEL_OPT_NUMBER:
        s->num = strtod(t, &end);
        if (!*t || *end) {
            errf(err, cap, "%s expects a number, got \"%.60s\"", where, t);
            return -1;
        }
        return 0;
    case LUNNEL_OPT_DURATION:
        if (lunnel_duration_parse(t, &s->num) != 0) {
            errf(err, cap, "%s expects a duration like 500ms, 5s or 2m, got \"%.60s\"", where, t);
            return -1;
        }
        return 0;
    case LUNNEL_OPT_TIME:
        if (lunnel_time_parse(t, &s->i64) != 0) {
            errf(err, cap,
                 "%s expects an RFC 3339 time (2026-11-21T10:00:00Z) or epoch milliseconds, got "
                 "\"%.60s\"",
                 where, t);
            return -1;
        }
        return 0;
    case LUNNEL_OPT_BOOL:
        if (!strcasecmp(t, "1") || !strcasecmp(t, "true") || !strcasecmp(t, "yes") ||
            !strcasecmp(t, "on"))
            s->i64 = 1;
        else if (!strcasecmp(t, "0") || !strcasecmp(t, "false") || !strcasecmp(t, "no") ||
                 !strcasecmp(t, "off") || !*t)
            s->i64 = 0;
        else {
            errf(err, cap, "%s expects true or false, got \"%.60s\"", where, t);
            return -1;
        }
        return 0;
    case LUNNEL_OPT_ENUM: {
        char canon[64];
        if (!choice_match(o->choices, t, canon, sizeof canon)) {
            errf(err, cap, "%s must be one of %s, got \"%.60s\"", where, o->choices, t);
            return -1;
        }
        free(s->text);
        s->text = strdup(canon);
        return s->text ? 0 : -1;
    }
    case LUNNEL_OPT_SECRET:
        lunnel_log_add_secret(t);
        return 0;
    default:
        return 0;
    }
}

static slot *find_slot(const lunnel_opt_values *v, const char *name)
{
    for (size_t i = 0; v && i < v->n; i++)
        if (strcmp(v->slots[i].opt->name, name) == 0) return &v->slots[i];
    return NULL;
}

void lunnel_opts_free(lunnel_opt_values *v)
{
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) {
        if (v->slots[i].text) {
            /* may be a secret: wipe */
            memset(v->slots[i].text, 0, strlen(v->slots[i].text));
            free(v->slots[i].text);
        }
    }
    free(v->slots);
    free(v->args);
    free(v);
}

/* A refused command line in the program's own words when it has them (spec->complain). */
static int complained(lunnel_opt_complain_fn complain, lunnel_opt_problem p, const lunnel_opt *o,
                      const char *arg, char *err, size_t cap)
{
    if (!complain) return 0;
    complain(p, o, arg, err, cap);
    return 1;
}

int lunnel_opts_parse(const lunnel_command_spec *spec, int argc, char **argv, int first,
                      lunnel_opt_values **out, char *err, size_t cap)
{
    return lunnel_opts_parse_worded(spec, NULL, argc, argv, first, out, err, cap);
}

int lunnel_opts_parse_worded(const lunnel_command_spec *spec, lunnel_opt_complain_fn complain,
                             int argc, char **argv, int first, lunnel_opt_values **out, char *err,
                             size_t cap)
{
    *out = NULL;
    if (cap) err[0] = '\0';
    lunnel_opt_values *v = calloc(1, sizeof *v);
    size_t n = 0;
    for (size_t i = 0; i < spec->n_sets; i++)
        n += spec->sets[i]->n;
    if (!v || !(v->slots = calloc(n ? n : 1, sizeof(slot))) ||
        !(v->args = calloc((size_t)(argc > 0 ? argc : 1), sizeof(char *)))) {
        lunnel_opts_free(v);
        errf(err, cap, "out of memory");
        return LUNNEL_OPTS_ERROR;
    }
    for (size_t i = 0; i < spec->n_sets; i++)
        for (size_t j = 0; j < spec->sets[i]->n; j++)
            v->slots[v->n++].opt = &spec->sets[i]->opts[j];

    int only_args = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (only_args || a[0] != '-' || strcmp(a, "-") == 0) {
            v->args[v->n_args++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0 && !complain) {
            only_args = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            lunnel_opts_free(v);
            return LUNNEL_OPTS_HELP;
        }
        if (a[1] != '-') {
            if (!complained(complain, LUNNEL_OPT_UNKNOWN, NULL, a, err, cap))
                errf(err, cap, "unknown option %s (see lunnel %s --help)", a, spec->name);
            lunnel_opts_free(v);
            return LUNNEL_OPTS_ERROR;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        slot *s = NULL;
        for (size_t k = 0; k < v->n; k++)
            if (strlen(v->slots[k].opt->name) == nl &&
                strncmp(v->slots[k].opt->name, name, nl) == 0)
                s = &v->slots[k];
        if (!s) {
            if (!complained(complain, LUNNEL_OPT_UNKNOWN, NULL, a, err, cap))
                errf(err, cap, "unknown option --%.*s (see lunnel %s --help)", (int)nl, name,
                     spec->name);
            lunnel_opts_free(v);
            return LUNNEL_OPTS_ERROR;
        }
        const char *val;
        if (s->opt->type == LUNNEL_OPT_BOOL) {
            val = eq ? eq + 1 : "true";
        } else if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            if (!complained(complain, LUNNEL_OPT_NO_VALUE, s->opt, a, err, cap))
                errf(err, cap, "--%s needs a value (%s)", s->opt->name, type_metavar(s->opt));
            lunnel_opts_free(v);
            return LUNNEL_OPTS_ERROR;
        }
        free(s->text);
        s->text = strdup(val);
        s->src = SRC_FLAG;
        if (!s->text || convert(s, err, cap) != 0) {
            if (s->text) complained(complain, LUNNEL_OPT_BAD_VALUE, s->opt, val, err, cap);
            lunnel_opts_free(v);
            return LUNNEL_OPTS_ERROR;
        }
    }
    for (size_t k = 0; k < v->n; k++) {
        slot *s = &v->slots[k];
        if (s->src) continue;
        const char *e = s->opt->env ? getenv(s->opt->env) : NULL;
        if (e && *e) {
            s->text = strdup(e);
            s->src = SRC_ENV;
        } else if (s->opt->def) {
            s->text = strdup(s->opt->def);
            s->src = SRC_DEFAULT;
        } else {
            continue;
        }
        if (!s->text || convert(s, err, cap) != 0) {
            lunnel_opts_free(v);
            return LUNNEL_OPTS_ERROR;
        }
    }
    for (size_t k = 0; k < v->n; k++) {
        slot *s = &v->slots[k];
        if (s->opt->required && !s->text) {
            if (s->opt->env)
                errf(err, cap, "missing --%s (or $%s)", s->opt->name, s->opt->env);
            else
                errf(err, cap, "missing --%s", s->opt->name);
            lunnel_opts_free(v);
            return LUNNEL_OPTS_ERROR;
        }
    }
    if (v->n_args < spec->min_args || v->n_args > spec->max_args) {
        if (v->n_args > spec->max_args &&
            complained(complain, LUNNEL_OPT_UNEXPECTED, NULL, v->args[spec->max_args], err, cap))
            ;
        else if (v->n_args > spec->max_args)
            errf(err, cap, "unexpected argument \"%.60s\" (usage: %s)", v->args[spec->max_args],
                 spec->usage);
        else
            errf(err, cap, "missing argument (usage: %s)", spec->usage);
        lunnel_opts_free(v);
        return LUNNEL_OPTS_ERROR;
    }
    *out = v;
    return LUNNEL_OPTS_OK;
}

int lunnel_opts_has(const lunnel_opt_values *v, const char *name)
{
    slot *s = find_slot(v, name);
    return s && s->text;
}
const char *lunnel_opts_str(const lunnel_opt_values *v, const char *name)
{
    slot *s = find_slot(v, name);
    return s ? s->text : NULL;
}
int64_t lunnel_opts_int(const lunnel_opt_values *v, const char *name)
{
    slot *s = find_slot(v, name);
    return s && s->text ? s->i64 : 0;
}
double lunnel_opts_num(const lunnel_opt_values *v, const char *name)
{
    slot *s = find_slot(v, name);
    return s && s->text ? s->num : 0;
}
int64_t lunnel_opts_time(const lunnel_opt_values *v, const char *name)
{
    slot *s = find_slot(v, name);
    return s && s->text ? s->i64 : 0;
}
int lunnel_opts_bool(const lunnel_opt_values *v, const char *name)
{
    slot *s = find_slot(v, name);
    return s && s->text ? (int)s->i64 : 0;
}
int lunnel_opts_argc(const lunnel_opt_values *v)
{
    return v->n_args;
}
const char *lunnel_opts_arg(const lunnel_opt_values *v, int i)
{
    return i >= 0 && i < v->n_args ? v->args[i] : NULL;
}

void lunnel_opts_print_help(const lunnel_command_spec *spec, FILE *f)
{
    fprintf(f, "usage: %s\n\n%s\n", spec->usage, spec->summary);
    for (size_t i = 0; i < spec->n_sets; i++) {
        const lunnel_opt_set *set = spec->sets[i];
        fprintf(f, "\n%s options:\n", set->title);
        for (size_t j = 0; j < set->n; j++) {
            const lunnel_opt *o = &set->opts[j];
            char left[96];
            const char *mv = type_metavar(o);
            snprintf(left, sizeof left, "--%s%s%s", o->name, *mv ? " " : "", mv);
            char extra[256] = "";
            size_t el = 0;
            if (o->required)
                el += (size_t)snprintf(extra + el, sizeof extra - el, "%srequired", el ? ", " : "");
            if (o->def && o->type != LUNNEL_OPT_SECRET && el < sizeof extra)
                el += (size_t)snprintf(extra + el, sizeof extra - el, "%sdefault %s",
                                       el ? ", " : "", o->def);
            if (o->env && el < sizeof extra)
                el += (size_t)snprintf(extra + el, sizeof extra - el, "%s$%s", el ? ", " : "",
                                       o->env);
            fprintf(f, "  %-34s %s%s%s%s\n", left, o->help, el ? " (" : "", extra, el ? ")" : "");
        }
    }
    fprintf(f, "\n  %-34s %s\n", "-h, --help", "show this help");
}

static void md_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else
            fputc(*s, f);
    }
}

void lunnel_opts_print_markdown(const lunnel_command_spec *spec, FILE *f)
{
    fprintf(f, "### `lunnel %s`\n\n%s\n\n```\n%s\n```\n\n", spec->name, spec->summary, spec->usage);
    for (size_t i = 0; i < spec->n_sets; i++) {
        const lunnel_opt_set *set = spec->sets[i];
        fprintf(f, "%s options:\n\n| option | default | env | description |\n|---|---|---|---|\n",
                set->title);
        for (size_t j = 0; j < set->n; j++) {
            const lunnel_opt *o = &set->opts[j];
            const char *mv = type_metavar(o);
            fprintf(f, "| `--%s%s", o->name, *mv ? " " : "");
            md_escape(f, mv);
            fprintf(f, "` | %s | %s%s%s | ",
                    o->type != LUNNEL_OPT_SECRET && o->def ? o->def
                                                           : (o->required ? "required" : ""),
                    o->env ? "`" : "", o->env ? o->env : "", o->env ? "`" : "");
            md_escape(f, o->help);
            fprintf(f, " |\n");
        }
        fprintf(f, "\n");
    }
}

void lunnel_opts_print_config(const lunnel_opt_values *v, FILE *f)
{
    static const char *src_names[] = {"unset", "default", "env", "flag"};
    for (size_t k = 0; k < v->n; k++) {
        const slot *s = &v->slots[k];
        const char *shown = !s->text ? "" : (s->opt->type == LUNNEL_OPT_SECRET ? "****" : s->text);
        fprintf(f, "%s = %s (%s)\n", s->opt->name, shown, src_names[s->src]);
    }
}
