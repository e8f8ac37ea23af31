/* gen version | options | devices: what this build and machine offer. */
#include <string.h>

#include "cli.h"

static int simple_help(cli_env *env, const char *text)
{
    cli_args a;
    cli_args_init(&a, env->argv[0], env->argc, env->argv, 1);
    while (cli_args_more(&a)) {
        if (cli_help(&a)) {
            fputs(text, stdout);
            return -1;
        }
        cli_unknown(&a);
    }
    return a.error ? EXIT_USAGE : EXIT_OK;
}

int cmd_version(cli_env *env)
{
    int rc = simple_help(env, "usage: gen version\n\nprint the library version and the version "
                              "of the headers gen was built with\n");
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    printf("libgen %s (headers %s)\n", gen_version_string(), GEN_VERSION_STRING);
    return EXIT_OK;
}

int cmd_options(cli_env *env)
{
    int rc = simple_help(env, "usage: gen [--set NAME=VALUE]... options\n\n"
                              "print every context option as NAME=VALUE after the environment\n"
                              "(LIBGEN_<NAME>) and the global --set options are applied\n");
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    for (size_t i = 0; i < gen_context_option_count(); i++) {
        const char *name = gen_context_option_name(i);
        char value[GEN_PATH_TEXT_MAX];
        if (gen_context_options_get(&env->options, name, value, sizeof(value)) != GEN_OK)
            return cli_fail(name);
        printf("%s=%s\n", name, value);
    }
    return EXIT_OK;
}

static const char devices_help[] =
    "usage: gen [--set generation_devices=LIST] devices [--json]\n"
    "\n"
    "print the devices generation_devices resolves to on this machine: index, id,\n"
    "label (unique among identical cards), free and total memory, CPU threads.\n"
    "\n"
    "  --json   one JSON array of objects {index, id, name, label, free_bytes,\n"
    "           total_bytes, cpu_threads, compute_capability}\n";

int cmd_devices(cli_env *env)
{
    bool json = false;
    cli_args a;
    cli_args_init(&a, "devices", env->argc, env->argv, 1);
    while (cli_args_more(&a)) {
        if (cli_help(&a)) {
            fputs(devices_help, stdout);
            return EXIT_OK;
        } else if (cli_flag(&a, "--json")) {
            json = true;
        } else {
            cli_unknown(&a);
        }
    }
    if (a.error)
        return EXIT_USAGE;

    gen_device_pool *pool = NULL;
    if (gen_device_pool_create(&pool, env->options.generation_devices) != GEN_OK)
        return cli_fail("cannot resolve the devices");
    size_t n = gen_device_pool_count(pool);
    if (json)
        printf("[");
    for (size_t d = 0; d < n; d++) {
        uint64_t free_b = 0, total_b = 0;
        gen_device_pool_memory(pool, d, &free_b, &total_b);
        int threads = gen_device_pool_cpu_threads(pool, d);
        if (json) {
            printf("%s{\"index\":%zu,\"id\":", d ? "," : "", d);
            json_put_string(stdout, gen_device_pool_id(pool, d));
            printf(",\"name\":");
            json_put_string(stdout, gen_device_pool_name(pool, d));
            printf(",\"label\":");
            json_put_string(stdout, gen_device_pool_label(pool, d));
            printf(",\"free_bytes\":%llu,\"total_bytes\":%llu,\"cpu_threads\":%d,"
                   "\"compute_capability\":%d}",
                   (unsigned long long)free_b, (unsigned long long)total_b, threads,
                   gen_device_pool_compute_capability(pool, d));
        } else {
            printf("%zu  %-8s %-24s %.1f GiB free of %.1f GiB", d, gen_device_pool_id(pool, d),
                   gen_device_pool_label(pool, d), (double)free_b / (double)(1ull << 30),
                   (double)total_b / (double)(1ull << 30));
            if (threads > 0)
                printf(", %d thread%s", threads, threads == 1 ? "" : "s");
            printf("\n");
        }
    }
    if (json)
        printf("]\n");
    gen_device_pool_destroy(pool);
    return EXIT_OK;
}
