/* Helpers shared by the reliability tests: a CPU context on a queue file and
 * an output folder, and removing a scratch folder. No cmocka asserts, so the
 * child modes (which run outside a cmocka test) can use them too. */
#ifndef GEN_TESTS_RELIABILITY_UTIL_H
#define GEN_TESTS_RELIABILITY_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#include <gen/gen.h>

/* A context on cpu:0 logging errors only; db_path and output_dir when not
 * NULL. NULL on failure (gen_last_error_message says why). */
static inline gen_context *rt_cpu_context(const char *db, const char *out)
{
    gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
    o.log_level = GEN_LOG_ERROR;
    gen_context *ctx = NULL;
    if (gen_context_options_set(&o, "generation_devices", "cpu:0") != GEN_OK ||
        (db && gen_context_options_set(&o, "db_path", db) != GEN_OK) ||
        (out && gen_context_options_set(&o, "output_dir", out) != GEN_OK) ||
        gen_context_create(&ctx, &o) != GEN_OK)
        return NULL;
    return ctx;
}

/* rm -rf dir; 0 on success. */
static inline int rt_rmtree(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

#endif
