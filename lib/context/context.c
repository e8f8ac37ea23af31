#include "context/context_internal.h"

#include <string.h>

#include "context/options.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/parse.h"

/* The startup log lists every device with its label and memory. */
static void log_devices(gen_context *ctx)
{
    size_t n = gen_device_pool_count(ctx->devices);
    for (size_t i = 0; i < n; i++) {
        uint64_t free_b = 0, total_b = 0;
        char total[32] = "?";
        if (gen_device_pool_memory(ctx->devices, i, &free_b, &total_b) == GEN_OK)
            gen__format_size(total_b, total, sizeof(total));
        int threads = gen_device_pool_cpu_threads(ctx->devices, i);
        if (threads > 0)
            GEN__LOG_INFO(&ctx->logger, "device %zu: %s (%s), %d thread%s, %s RAM", i,
                          gen_device_pool_id(ctx->devices, i),
                          gen_device_pool_label(ctx->devices, i), threads, threads == 1 ? "" : "s",
                          total);
        else
            GEN__LOG_INFO(&ctx->logger, "device %zu: %s (%s), %s", i,
                          gen_device_pool_id(ctx->devices, i),
                          gen_device_pool_label(ctx->devices, i), total);
    }
}

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
    /* gen_context_get_options hands this back, and a program built against
     * an older header may copy it into its own, shorter struct: the version
     * must then be the program's (the library's copy still has every field). */
    if (opts)
        memcpy(&ctx->options.version, opts, sizeof(ctx->options.version));
    ctx->logger.fn = options.log_fn;
    ctx->logger.user_data = options.log_user_data;
    ctx->logger.level = (gen_log_level)options.log_level;
    pthread_mutex_init(&ctx->mu, NULL);
    gen__gpu_dtype gpu_dtype = GEN__GPU_DTYPE_AUTO;
    st = gen__gpu_dtype_parse("gpu_dtype", options.gpu_dtype, &gpu_dtype); /* checked by import */
    if (st == GEN_OK)
        st = gen_device_pool_create(&ctx->devices, options.generation_devices);
    if (st == GEN_OK)
        st = gen__engine_create(&ctx->engine, ctx->devices, options.max_cache_ram,
                                options.device_working_mem, gpu_dtype, &ctx->logger);
    if (st == GEN_OK && options.db_path[0]) {
        /* The queue logs through the application's logger too. */
        gen_queue_options qo = GEN_QUEUE_OPTIONS_INIT;
        qo.log_level = options.log_level;
        qo.log_fn = options.log_fn;
        qo.log_user_data = options.log_user_data;
        st = gen_queue_open(&ctx->queue, options.db_path, &qo);
        if (st == GEN_OK)
            st = gen__context_attach_queue(ctx);
    }
    if (st != GEN_OK) {
        gen_queue_close(ctx->queue);
        gen__engine_destroy(ctx->engine);
        gen_device_pool_destroy(ctx->devices);
        pthread_mutex_destroy(&ctx->mu);
        gen__free(ctx);
        return st;
    }
    ctx->runner = gen__context_pipeline_runner;
    ctx->runner_ctx = ctx;
    GEN__LOG_INFO(&ctx->logger, "libgen %s: context created (generation_devices=%s)",
                  gen_version_string(), options.generation_devices);
    log_devices(ctx);
    *out = ctx;
    return GEN_OK;
}

GEN_API void gen_context_destroy(gen_context *ctx)
{
    if (!ctx)
        return;
    if (ctx->workers)
        gen_context_stop(ctx, GEN_STOP_REQUEUE);
    gen_queue_close(ctx->queue);
    gen__engine_destroy(ctx->engine);
    if (ctx->event_queue_enabled)
        gen__event_queue_destroy(&ctx->events);
    gen_device_pool_destroy(ctx->devices);
    pthread_mutex_destroy(&ctx->mu);
    GEN__LOG_DEBUG(&ctx->logger, "context destroyed");
    gen__free(ctx);
}

GEN_API const gen_context_options *gen_context_get_options(const gen_context *ctx)
{
    return ctx ? &ctx->options : NULL;
}

GEN_API const gen_device_pool *gen_context_device_pool(const gen_context *ctx)
{
    return ctx ? ctx->devices : NULL;
}
