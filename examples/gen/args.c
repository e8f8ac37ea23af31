/* Argument helpers shared by the subcommands, error printing, small utilities. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

void (*gen_cli_context_hook)(gen_context *ctx) = NULL;

int cli_fail(const char *what)
{
    fprintf(stderr, "gen: %s: %s\n", what, gen_last_error_message());
    return EXIT_RUNTIME;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "gen %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (try `gen %s --help`)\n", cmd);
    va_end(ap);
    return EXIT_USAGE;
}

int cli_fail_input(const char *what, gen_status st)
{
    fprintf(stderr, "gen: %s: %s\n", what, gen_last_error_message());
    return st == GEN_EINVAL || st == GEN_ENOTFOUND ? EXIT_USAGE : EXIT_RUNTIME;
}

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv, int first)
{
    memset(a, 0, sizeof(*a));
    a->argc = argc;
    a->argv = argv;
    a->i = first;
    a->cmd = cmd;
}

bool cli_args_more(const cli_args *a)
{
    return !a->error && a->i < a->argc;
}

static const char *current(const cli_args *a)
{
    return a->i < a->argc ? a->argv[a->i] : NULL;
}

bool cli_flag(cli_args *a, const char *name)
{
    const char *arg = current(a);
    if (!arg || a->only_positional || strcmp(arg, name) != 0)
        return false;
    a->i++;
    return true;
}

bool cli_flag_to(cli_args *a, const char *name, bool *out)
{
    if (!cli_flag(a, name))
        return false;
    *out = true;
    return true;
}

bool cli_help(cli_args *a)
{
    return cli_flag(a, "-h") || cli_flag(a, "--help");
}

bool cli_opt(cli_args *a, const char *name, const char **value)
{
    const char *arg = current(a);
    if (!arg || a->only_positional)
        return false;
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return false;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        a->i++;
        return true;
    }
    if (arg[n] != '\0')
        return false;
    if (a->i + 1 >= a->argc) {
        cli_usage_error(a->cmd, "%s needs a value", name);
        a->error = true;
        *value = NULL;
        a->i++;
        return true;
    }
    *value = a->argv[a->i + 1];
    a->i += 2;
    return true;
}

bool cli_positional(cli_args *a, const char **value)
{
    const char *arg = current(a);
    if (!arg)
        return false;
    if (!a->only_positional && strcmp(arg, "--") == 0) {
        a->only_positional = true;
        a->i++;
        arg = current(a);
        if (!arg)
            return false;
    }
    if (!a->only_positional && arg[0] == '-' && arg[1] != '\0')
        return false;
    *value = arg;
    a->i++;
    return true;
}

void cli_unknown(cli_args *a)
{
    const char *arg = current(a);
    if (arg && arg[0] == '-')
        cli_usage_error(a->cmd, "unknown option \"%s\"", arg);
    else
        cli_usage_error(a->cmd, "unexpected argument \"%s\"", arg ? arg : "");
    a->error = true;
}

bool cli_parse_i64(cli_args *a, const char *opt, const char *text, int64_t min, int64_t max,
                   int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end != '\0' || v < min || v > max) {
        cli_usage_error(a->cmd, "%s expects a whole number from %lld to %lld, got \"%s\"", opt,
                        (long long)min, (long long)max, text);
        a->error = true;
        return false;
    }
    *out = v;
    return true;
}

const char *cli_db_path(const cli_env *env, const char *db_opt, const char *cmd)
{
    if (db_opt && db_opt[0])
        return db_opt;
    if (env->options.db_path[0])
        return env->options.db_path;
    cli_usage_error(cmd, "no queue file: pass --db PATH or set LIBGEN_DB_PATH");
    return NULL;
}

char *cli_read_file(const char *path, size_t max_bytes)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(max_bytes + 1);
    size_t n = buf ? fread(buf, 1, max_bytes + 1, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (!buf || err || n > max_bytes) {
        free(buf);
        errno = err ? EIO : EFBIG;
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

void json_put_string(FILE *out, const char *s)
{
    if (!s) {
        fputs("null", out);
        return;
    }
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (*p < 0x20)
                fprintf(out, "\\u%04x", *p);
            else
                fputc(*p, out); /* UTF-8 passes through */
        }
    }
    fputc('"', out);
}

int64_t cli_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
