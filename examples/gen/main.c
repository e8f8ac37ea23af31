/* gen — command-line front end of libgen.
 *
 * Exit codes: 0 success, 1 runtime error (message from libgen), 2 usage error.
 * Subcommands grow with the library; see `gen --help`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gen/gen.h>

enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static void usage(FILE *out)
{
    fprintf(out,
            "usage: gen [--set NAME=VALUE]... COMMAND\n"
            "\n"
            "commands:\n"
            "  version        print the library version\n"
            "  devices [--json]  print the resolved generation devices (labels, memory)\n"
            "  options        print every context option and its value\n"
            "\n"
            "options:\n"
            "  --set NAME=VALUE   set a context option (see `gen options`); LIBGEN_<NAME>\n"
            "                     environment variables are read first\n"
            "  -h, --help         show this help\n"
            "\n"
            "exit codes: 0 success, 1 runtime error, 2 usage error\n");
}

static int fail(const char *what)
{
    fprintf(stderr, "gen: %s: %s\n", what, gen_last_error_message());
    return EXIT_RUNTIME;
}

static int cmd_options(const gen_context_options *opts)
{
    for (size_t i = 0; i < gen_context_option_count(); i++) {
        const char *name = gen_context_option_name(i);
        char value[GEN_PATH_TEXT_MAX];
        if (gen_context_options_get(opts, name, value, sizeof(value)) != GEN_OK)
            return fail(name);
        printf("%s=%s\n", name, value);
    }
    return 0;
}

static void format_gib(uint64_t bytes, char *buf, size_t size)
{
    snprintf(buf, size, "%.1f GiB", (double)bytes / (double)(1ull << 30));
}

/* The resolved pool: one line per device, or a JSON array with --json. */
static int cmd_devices(const gen_context_options *opts, int json)
{
    gen_device_pool *pool = NULL;
    if (gen_device_pool_create(&pool, opts->generation_devices) != GEN_OK)
        return fail("cannot resolve the devices");
    size_t n = gen_device_pool_count(pool);
    if (json)
        printf("[");
    for (size_t d = 0; d < n; d++) {
        uint64_t free_b = 0, total_b = 0;
        gen_device_pool_memory(pool, d, &free_b, &total_b);
        int threads = gen_device_pool_cpu_threads(pool, d);
        if (json) {
            printf("%s{\"index\":%zu,\"id\":\"%s\",\"name\":\"%s\",\"label\":\"%s\","
                   "\"free_bytes\":%llu,\"total_bytes\":%llu,\"cpu_threads\":%d}",
                   d ? "," : "", d, gen_device_pool_id(pool, d), gen_device_pool_name(pool, d),
                   gen_device_pool_label(pool, d), (unsigned long long)free_b,
                   (unsigned long long)total_b, threads);
        } else {
            char free_text[32], total_text[32];
            format_gib(free_b, free_text, sizeof(free_text));
            format_gib(total_b, total_text, sizeof(total_text));
            printf("%zu  %-8s %-24s %s free of %s", d, gen_device_pool_id(pool, d),
                   gen_device_pool_label(pool, d), free_text, total_text);
            if (threads > 0)
                printf(", %d thread%s", threads, threads == 1 ? "" : "s");
            printf("\n");
        }
    }
    if (json)
        printf("]\n");
    gen_device_pool_destroy(pool);
    return 0;
}

int main(int argc, char **argv)
{
    gen_context_options opts = GEN_CONTEXT_OPTIONS_INIT;
    if (gen_context_options_set_from_env(&opts) != GEN_OK)
        return fail("environment");

    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
            char *arg = argv[++i];
            char *eq = strchr(arg, '=');
            if (!eq) {
                fprintf(stderr, "gen: --set expects NAME=VALUE, got \"%s\"\n", arg);
                return EXIT_USAGE;
            }
            *eq = '\0';
            gen_status st = gen_context_options_set(&opts, arg, eq + 1);
            if (st != GEN_OK) {
                fprintf(stderr, "gen: %s\n", gen_last_error_message());
                return st == GEN_ENOTFOUND || st == GEN_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
            }
            continue;
        }
        fprintf(stderr, "gen: unknown option \"%s\" (try --help)\n", argv[i]);
        return EXIT_USAGE;
    }
    if (i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *command = argv[i];

    if (strcmp(command, "version") == 0) {
        printf("libgen %s (headers %s)\n", gen_version_string(), GEN_VERSION_STRING);
        return 0;
    }
    if (strcmp(command, "options") == 0)
        return cmd_options(&opts);
    if (strcmp(command, "devices") == 0)
        return cmd_devices(&opts, i + 1 < argc && strcmp(argv[i + 1], "--json") == 0);
    fprintf(stderr, "gen: unknown command \"%s\" (try --help)\n", command);
    return EXIT_USAGE;
}
