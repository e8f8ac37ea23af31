/* Minimal C consumer of libgen, built through pkg-config (tests/install/run.sh). */
#include <stdio.h>

#include <gen/gen.h>

int main(void)
{
    gen_context_options opts = GEN_CONTEXT_OPTIONS_INIT;
    if (gen_context_options_set(&opts, "generation_devices", "cpu:0,cpu:1") != GEN_OK ||
        gen_context_options_set(&opts, "max_cache_ram", "8GiB") != GEN_OK) {
        fprintf(stderr, "bad option: %s\n", gen_last_error_message());
        return 1;
    }
    gen_context *ctx = NULL;
    gen_status st = gen_context_create(&ctx, &opts);
    if (st != GEN_OK) {
        fprintf(stderr, "%s: %s\n", gen_status_string(st), gen_last_error_message());
        return 1;
    }
    printf("libgen %s on %s\n", gen_version_string(),
           gen_context_get_options(ctx)->generation_devices);
    gen_context_destroy(ctx);
    return 0;
}
