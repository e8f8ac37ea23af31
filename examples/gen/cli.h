/* gen — the command-line front end of libgen: shared declarations.
 *
 * One file per subcommand group (devices.c, queue_cmd.c, serve.c, generate.c,
 * model_cmd.c), argument helpers in args.c, JSON output helpers in json_out.c,
 * the live progress display in progress.c.
 *
 * Exit codes (every subcommand): 0 success, 1 runtime error (the message comes
 * from gen_last_error_message()), 2 usage error (bad or missing arguments).
 */
#ifndef GEN_CLI_H
#define GEN_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <gen/gen.h>

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

/* What every subcommand gets: the context options (environment, then global
 * --set), the queue options (global --queue-set), and its own arguments
 * (argv[0] is the subcommand name). */
typedef struct cli_env {
    gen_context_options options;
    gen_queue_options queue_options;
    int argc;
    char **argv;
} cli_env;

/* Subcommands. Each returns an exit code. */
int cmd_version(cli_env *env);
int cmd_options(cli_env *env);
int cmd_devices(cli_env *env);
int cmd_queue(cli_env *env);
int cmd_serve(cli_env *env);
int cmd_generate(cli_env *env);
int cmd_info(cli_env *env);
int cmd_metadata(cli_env *env);

/* --- errors ------------------------------------------------------------------------------- */

/* "gen: WHAT: <libgen message>" on stderr; returns EXIT_RUNTIME. */
int cli_fail(const char *what);
/* "gen CMD: <formatted>" on stderr; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A libgen status from a value the user typed: EXIT_USAGE for EINVAL /
 * ENOTFOUND (bad name or value), else EXIT_RUNTIME. Prints the message. */
int cli_fail_input(const char *what, gen_status st);

/* --- argument parsing ------------------------------------------------------------------------ */

/* A cursor over a subcommand's arguments. Options may be written "--name
 * VALUE" or "--name=VALUE"; "--" ends the options. */
typedef struct cli_args {
    int argc;
    char **argv;
    int i;
    const char *cmd; /* for messages: "queue add" */
    bool error;      /* a usage error was printed */
    bool only_positional;
} cli_args;

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv, int first);
/* true while arguments are left. */
bool cli_args_more(const cli_args *a);
/* The current argument is `name` (flag): consume it. */
bool cli_flag(cli_args *a, const char *name);
/* cli_flag that also sets *out = true, for use in one expression. */
bool cli_flag_to(cli_args *a, const char *name, bool *out);
/* The current argument is option `name`: consume it and its value. A missing
 * value sets a->error (message printed) and returns true with *value NULL. */
bool cli_opt(cli_args *a, const char *name, const char **value);
/* The current argument is a positional one (not starting with '-', or after
 * "--"): consume it. */
bool cli_positional(cli_args *a, const char **value);
/* Report the current argument as unknown (sets a->error). */
void cli_unknown(cli_args *a);
/* -h / --help. */
bool cli_help(cli_args *a);

/* Whole-string number parsing; a usage error names the option on failure. */
bool cli_parse_i64(cli_args *a, const char *opt, const char *text, int64_t min, int64_t max,
                   int64_t *out);

/* The queue file: --db, else the db_path context option (LIBGEN_DB_PATH or
 * --set db_path=...). NULL (usage message printed) when none. */
const char *cli_db_path(const cli_env *env, const char *db_opt, const char *cmd);

/* Read a whole file (NUL-terminated, caller frees); NULL with errno set. */
char *cli_read_file(const char *path, size_t max_bytes);

/* --- output ------------------------------------------------------------------------------- */

/* JSON string literal of `s` (NULL -> null) to `out`. */
void json_put_string(FILE *out, const char *s);

/* Monotonic clock in nanoseconds. */
int64_t cli_now_ns(void);

/* Test hook: called with each context `gen serve` creates, before starting
 * the workers. NULL in the installed program; the CLI tests link a build of
 * gen that sets it to install a scripted item runner. */
extern void (*gen_cli_context_hook)(gen_context *ctx);

#endif

/* --- job arguments (gen queue add, gen generate) --------------------------------------------- */

#define CLI_MAX_SETS 128

typedef struct cli_job_args {
    const char *file;                /* --job FILE: a job JSON object */
    const char *sets[CLI_MAX_SETS];  /* --set NAME=VALUE, --model, --prompt (applied in order) */
    const char *names[CLI_MAX_SETS]; /* field names of the shorthands, NULL for --set */
    int count;
} cli_job_args;

/* Consume one job argument (--job, --set, --model, --prompt, --negative,
 * --seed, --steps, --size WxH is not offered: use --set width=/height=). */
bool cli_job_arg(cli_args *a, cli_job_args *j);
/* Build and validate the job: the file first, then the settings in order.
 * Returns an exit code; *out is set on EXIT_OK. */
int cli_job_build(const cli_job_args *j, const char *cmd, gen_job **out);
/* Help text lines for the job arguments. */
extern const char cli_job_help[];

/* Open the queue file. must_exist: refuse a missing file instead of creating
 * one (for commands that only read or change existing items). Exit code. */
int cli_open_queue(const cli_env *env, const char *path, bool must_exist, gen_queue **out);
