/* gen — command-line front end of libgen: global options and dispatch.
 *
 * Exit codes: 0 success, 1 runtime error (message from libgen), 2 usage error.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct command {
    const char *name;
    int (*run)(cli_env *env);
    const char *summary;
} command;

static const command commands[] = {
    {"generate", cmd_generate, "make one image now, on one device (no queue)"},
    {"queue", cmd_queue, "add, list, cancel, retry, prune items of a queue file; status counts"},
    {"serve", cmd_serve, "run workers on the devices and process the queue until stopped"},
    {"devices", cmd_devices, "the resolved generation devices (labels, memory)"},
    {"info", cmd_info, "describe a model: family, parts, dtypes, parameter counts"},
    {"metadata", cmd_metadata, "the generation parameters stored in a PNG written by libgen"},
    {"options", cmd_options, "every context option and its current value"},
    {"version", cmd_version, "the library version"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: gen [GLOBAL OPTIONS] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n"
            "global options (before COMMAND):\n"
            "  --set NAME=VALUE        set a context option (see `gen options`); LIBGEN_<NAME>\n"
            "                          environment variables are read first\n"
            "  --db PATH               the queue file (same as --set db_path=PATH)\n"
            "  --queue-set NAME=VALUE  set a queue option (mode, max_queue_size, ...; see\n"
            "                          docs/configuration.md)\n"
            "  -q, --quiet             log errors only (same as --set log_level=error)\n"
            "  -h, --help              show this help; `gen COMMAND --help` for a command\n"
            "\n"
            "exit codes: 0 success, 1 runtime error, 2 usage error\n");
}

/* NAME=VALUE split in place; NULL value when there is no '='. */
static char *split_assignment(char *arg)
{
    char *eq = strchr(arg, '=');
    if (!eq)
        return NULL;
    *eq = '\0';
    return eq + 1;
}

static int set_option(cli_env *env, char *arg, bool queue)
{
    const char *flag = queue ? "--queue-set" : "--set";
    char *value = split_assignment(arg);
    if (!value) {
        fprintf(stderr, "gen: %s expects NAME=VALUE, got \"%s\"\n", flag, arg);
        return EXIT_USAGE;
    }
    gen_status st = queue ? gen_queue_options_set(&env->queue_options, arg, value)
                          : gen_context_options_set(&env->options, arg, value);
    return st == GEN_OK ? EXIT_OK : cli_fail_input(flag, st);
}

int main(int argc, char **argv)
{
    cli_env env;
    memset(&env, 0, sizeof(env));
    gen_context_options defaults = GEN_CONTEXT_OPTIONS_INIT;
    gen_queue_options queue_defaults = GEN_QUEUE_OPTIONS_INIT;
    env.options = defaults;
    env.queue_options = queue_defaults;
    if (gen_context_options_set_from_env(&env.options) != GEN_OK)
        return cli_fail("environment");

    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *arg = argv[i];
        int rc = EXIT_OK;
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            usage(stdout);
            return EXIT_OK;
        } else if (strcmp(arg, "-q") == 0 || strcmp(arg, "--quiet") == 0) {
            env.options.log_level = GEN_LOG_ERROR;
        } else if ((strcmp(arg, "--set") == 0 || strcmp(arg, "--queue-set") == 0 ||
                    strcmp(arg, "--db") == 0) &&
                   i + 1 < argc) {
            i++;
            if (strcmp(arg, "--db") == 0) {
                gen_status st = gen_context_options_set(&env.options, "db_path", argv[i]);
                rc = st == GEN_OK ? EXIT_OK : cli_fail_input("--db", st);
            } else {
                rc = set_option(&env, argv[i], strcmp(arg, "--queue-set") == 0);
            }
        } else if (strncmp(arg, "--set=", 6) == 0 || strncmp(arg, "--queue-set=", 12) == 0) {
            bool queue = arg[2] == 'q';
            rc = set_option(&env, strchr(argv[i], '=') + 1, queue);
        } else {
            fprintf(stderr, "gen: unknown or incomplete option \"%s\" (try --help)\n", arg);
            return EXIT_USAGE;
        }
        if (rc != EXIT_OK)
            return rc;
    }
    if (i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    env.argc = argc - i;
    env.argv = argv + i;
    for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++)
        if (strcmp(argv[i], commands[c].name) == 0)
            return commands[c].run(&env);
    fprintf(stderr, "gen: unknown command \"%s\" (try --help)\n", argv[i]);
    return EXIT_USAGE;
}
