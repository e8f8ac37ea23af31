/* Running the workers: start/stop/pause, events to the application, and
 * cancellation routing from the queue's status changes to the workers. */
#include <string.h>

#include "context/context_internal.h"
#include "core/alloc.h"
#include "core/error.h"

#define DEFAULT_EVENT_CAPACITY 4096

static int device_index_of(const gen_context *ctx, const char *device_id)
{
    if (!device_id)
        return -1;
    size_t n = gen_device_pool_count(ctx->devices);
    for (size_t i = 0; i < n; i++)
        if (strcmp(gen_device_pool_id(ctx->devices, i), device_id) == 0)
            return (int)i;
    return -1;
}

void gen__context_emit(void *p, const gen__event_fields *fields)
{
    gen_context *ctx = p;
    pthread_mutex_lock(&ctx->mu);
    gen_event_fn fn = ctx->event_fn;
    void *ud = ctx->event_user_data;
    bool queued = ctx->event_queue_enabled;
    pthread_mutex_unlock(&ctx->mu);
    if (!fn && !queued)
        return;
    gen_event *ev = gen__event_new(fields);
    if (!ev)
        return; /* events are best effort under memory pressure */
    if (fn)
        fn(ev, ud);
    if (queued)
        gen__event_queue_push(&ctx->events, ev);
    else
        gen_event_destroy(ev);
}

/* The queue's callback: runs after each committed status change made through
 * the context's queue handle, on the thread that made it. */
static void on_queue_event(const gen_queue_event *qe, void *p)
{
    gen_context *ctx = p;
    if (qe->new_status == GEN_QUEUE_CANCELED) {
        pthread_mutex_lock(&ctx->mu);
        if (ctx->workers)
            gen__workers_route_cancel(ctx->workers, qe->item_id);
        pthread_mutex_unlock(&ctx->mu);
    }
    gen__event_fields f = {0};
    f.type = GEN_EVENT_ITEM_STATUS;
    f.item_id = qe->item_id;
    f.batch_id = qe->batch_id;
    f.user_id = qe->user_id;
    f.device_index = device_index_of(ctx, qe->device);
    f.device_label = f.device_index >= 0 ? gen_device_pool_label(ctx->devices, (size_t)f.device_index)
                                         : NULL;
    f.old_status = qe->old_status;
    f.new_status = qe->new_status;
    f.message = qe->error_message;
    gen__context_emit(ctx, &f);
}

gen_status gen__context_attach_queue(gen_context *ctx)
{
    return gen_queue_set_event_callback(ctx->queue, on_queue_event, ctx);
}

void gen__context_set_runner(gen_context *ctx, gen__item_runner runner, void *runner_ctx)
{
    ctx->runner = runner;
    ctx->runner_ctx = runner_ctx;
}

GEN_API gen_queue *gen_context_queue(gen_context *ctx)
{
    return ctx ? ctx->queue : NULL;
}

GEN_API gen_status gen_context_start(gen_context *ctx)
{
    if (!ctx)
        return gen__error(GEN_EINVAL, "gen_context_start: ctx is NULL");
    if (!ctx->queue)
        return gen__error(GEN_ESTATE, "gen_context_start: no queue (set the db_path option)");
    if (!ctx->runner)
        return gen__error(GEN_EUNSUPPORTED, "gen_context_start: no item runner is available");
    pthread_mutex_lock(&ctx->mu);
    bool running = ctx->workers != NULL;
    pthread_mutex_unlock(&ctx->mu);
    if (running)
        return gen__error(GEN_ESTATE, "gen_context_start: already started");
    gen__workers_config cfg = {
        .queue = ctx->queue,
        .pool = ctx->devices,
        .caches = gen__engine_caches(ctx->engine),
        .logger = &ctx->logger,
        .runner = ctx->runner,
        .runner_ctx = ctx->runner_ctx,
        .emit = gen__context_emit,
        .emit_ctx = ctx,
        .poll_interval_ms = 250,
    };
    gen__workers *ws = NULL;
    gen_status st = gen__workers_start(&ws, &cfg);
    if (st != GEN_OK)
        return st;
    pthread_mutex_lock(&ctx->mu);
    ctx->workers = ws;
    pthread_mutex_unlock(&ctx->mu);
    return GEN_OK;
}

GEN_API gen_status gen_context_stop(gen_context *ctx, int32_t mode)
{
    if (!ctx)
        return gen__error(GEN_EINVAL, "gen_context_stop: ctx is NULL");
    if (mode < GEN_STOP_DRAIN || mode > GEN_STOP_REQUEUE)
        return gen__error(GEN_EINVAL, "gen_context_stop: unknown mode %d (use GEN_STOP_DRAIN, "
                                      "GEN_STOP_CANCEL or GEN_STOP_REQUEUE)",
                          (int)mode);
    pthread_mutex_lock(&ctx->mu);
    gen__workers *ws = ctx->workers;
    pthread_mutex_unlock(&ctx->mu);
    if (!ws)
        return gen__error(GEN_ESTATE, "gen_context_stop: not started");
    /* Join without holding ctx->mu: the workers' last status changes call
     * on_queue_event, which takes it. Cancels routed meanwhile still reach
     * the workers, which are only forgotten once joined. */
    gen__workers_stop_threads(ws, (gen_stop_mode)mode);
    pthread_mutex_lock(&ctx->mu);
    ctx->workers = NULL;
    pthread_mutex_unlock(&ctx->mu);
    gen__workers_free(ws);
    return GEN_OK;
}

static gen__workers *running_workers(gen_context *ctx)
{
    pthread_mutex_lock(&ctx->mu);
    gen__workers *ws = ctx->workers;
    pthread_mutex_unlock(&ctx->mu);
    return ws;
}

GEN_API gen_status gen_context_pause(gen_context *ctx)
{
    gen__workers *ws = ctx ? running_workers(ctx) : NULL;
    if (!ws)
        return gen__error(GEN_ESTATE, "gen_context_pause: not started");
    gen__workers_pause(ws);
    return GEN_OK;
}

GEN_API gen_status gen_context_resume(gen_context *ctx)
{
    gen__workers *ws = ctx ? running_workers(ctx) : NULL;
    if (!ws)
        return gen__error(GEN_ESTATE, "gen_context_resume: not started");
    gen__workers_resume(ws);
    return GEN_OK;
}

GEN_API void gen_context_wake(gen_context *ctx)
{
    if (!ctx)
        return;
    pthread_mutex_lock(&ctx->mu);
    if (ctx->workers)
        gen__workers_wake(ctx->workers);
    pthread_mutex_unlock(&ctx->mu);
}

GEN_API gen_status gen_context_set_event_callback(gen_context *ctx, gen_event_fn fn,
                                                  void *user_data)
{
    if (!ctx)
        return gen__error(GEN_EINVAL, "gen_context_set_event_callback: ctx is NULL");
    pthread_mutex_lock(&ctx->mu);
    ctx->event_fn = fn;
    ctx->event_user_data = user_data;
    pthread_mutex_unlock(&ctx->mu);
    return GEN_OK;
}

GEN_API gen_status gen_context_enable_event_queue(gen_context *ctx, size_t capacity)
{
    if (!ctx)
        return gen__error(GEN_EINVAL, "gen_context_enable_event_queue: ctx is NULL");
    pthread_mutex_lock(&ctx->mu);
    bool enabled = ctx->event_queue_enabled;
    pthread_mutex_unlock(&ctx->mu);
    if (enabled)
        return GEN_OK;
    gen_status st = gen__event_queue_init(&ctx->events, capacity ? capacity : DEFAULT_EVENT_CAPACITY);
    if (st != GEN_OK)
        return st;
    pthread_mutex_lock(&ctx->mu);
    ctx->event_queue_enabled = true;
    pthread_mutex_unlock(&ctx->mu);
    return GEN_OK;
}

GEN_API gen_status gen_context_next_event(gen_context *ctx, gen_event **out, int32_t timeout_ms)
{
    if (!ctx || !out)
        return gen__error(GEN_EINVAL, "gen_context_next_event: NULL argument");
    *out = NULL;
    pthread_mutex_lock(&ctx->mu);
    bool enabled = ctx->event_queue_enabled;
    pthread_mutex_unlock(&ctx->mu);
    if (!enabled)
        return gen__error(GEN_ESTATE, "gen_context_next_event: call gen_context_enable_event_queue "
                                      "first");
    return gen__event_queue_pop(&ctx->events, out, timeout_ms);
}
