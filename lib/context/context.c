#include "context/context_internal.h"

#include <string.h>

#include "context/options.h"
#include "core/alloc.h"
#include "core/error.h"

GEN_API gen_status gen_context_create(gen_context **out, const gen_context_options *opts)
{
    if (!out)
        return gen__error(GEN_EINVAL, "gen_context_create: out pointer is NULL");
    *out = NULL;
    gen_context_options options;
    gen_status st = gen__context_options_import(&options, opts);
    if (st != GEN_OK)
        return st;
    gen_context *ctx = gen__calloc(1, sizeof(*ctx));
    if (!ctx)
        return gen__error(GEN_ENOMEM, "gen_context_create: cannot allocate %zu bytes",
                          sizeof(*ctx));
    ctx->options = options;
    ctx->logger.fn = options.log_fn;
    ctx->logger.user_data = options.log_user_data;
    ctx->logger.level = (gen_log_level)options.log_level;
    GEN__LOG_INFO(&ctx->logger, "libgen %s: context created (generation_devices=%s)",
                  gen_version_string(), options.generation_devices);
    *out = ctx;
    return GEN_OK;
}

GEN_API void gen_context_destroy(gen_context *ctx)
{
    if (!ctx)
        return;
    GEN__LOG_DEBUG(&ctx->logger, "context destroyed");
    gen__free(ctx);
}

GEN_API const gen_context_options *gen_context_get_options(const gen_context *ctx)
{
    return ctx ? &ctx->options : NULL;
}
