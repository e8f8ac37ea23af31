/* libgen — the library instance and its options.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef GEN_CONTEXT_H
#define GEN_CONTEXT_H

#include <gen/common.h>
#include <gen/device.h>
#include <gen/event.h>
#include <gen/queue.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A libgen instance: options, logging, devices, model caches, queue, workers.
 * Thread safety: see docs/threading.md. */
typedef struct gen_context gen_context;

/* Version of gen_context_options this header describes. Fields are only ever
 * appended; each append bumps this number. */
#define GEN_CONTEXT_OPTIONS_VERSION 2

#define GEN_DEVICES_TEXT_MAX 512 /* bytes of generation_devices, NUL included */
#define GEN_PATH_TEXT_MAX 4096   /* bytes of a path option, NUL included */
#define GEN_DTYPE_TEXT_MAX 8     /* bytes of gpu_dtype, NUL included */

/* Options of a context. Always initialise with GEN_CONTEXT_OPTIONS_INIT or
 * gen_context_options_init(); set fields directly or by name with
 * gen_context_options_set(). Strings are stored inline (the struct owns them),
 * so the struct can be copied and freed like plain data. */
typedef struct gen_context_options {
    uint32_t version;           /* GEN_CONTEXT_OPTIONS_VERSION */
    int32_t log_level;          /* gen_log_level; default GEN_LOG_INFO */
    uint64_t max_cache_ram;     /* bytes of host RAM for model weights; 0 = automatic */
    uint64_t device_working_mem; /* bytes kept free on each device for computation; default 3 GiB */
    gen_log_fn log_fn;          /* NULL = write to stderr */
    void *log_user_data;        /* passed to log_fn */
    /* "auto" (every CUDA device, else one CPU device), or a comma-separated list:
     * "cuda:0,cuda:2", "cuda" (current CUDA device), "cpu:0,cpu:1" (virtual CPU
     * devices that split the cores). Default "auto". */
    char generation_devices[GEN_DEVICES_TEXT_MAX];
    char db_path[GEN_PATH_TEXT_MAX];    /* SQLite queue file; "" = no persistent queue */
    char output_dir[GEN_PATH_TEXT_MAX]; /* where images are written; default "outputs" */
    /* Version 2. The type CUDA devices store weights and activations in (they
     * always accumulate in f32): "f16", "bf16", or "auto" (default): bf16 for a
     * model whose UNet is stored in bf16, f16 for every other model. A GPU
     * before compute capability 8.0 has no bf16 and uses f16. CPU devices
     * compute in f32 whatever this says. */
    char gpu_dtype[GEN_DTYPE_TEXT_MAX];
} gen_context_options;

#define GEN_CONTEXT_OPTIONS_INIT                                                         \
    {                                                                                    \
        GEN_CONTEXT_OPTIONS_VERSION, GEN_LOG_INFO, 0, (uint64_t)3 << 30, NULL, NULL, "auto", \
            "", "outputs", "auto"                                                        \
    }

/* Fill `opts` with the defaults of `version` (1..GEN_CONTEXT_OPTIONS_VERSION).
 * For FFI callers that cannot use the macro. GEN_EVERSION for a newer version. */
GEN_API gen_status gen_context_options_init(gen_context_options *opts, uint32_t version);

/* Set one option from text, as found in a config file or the environment.
 * Names: generation_devices, db_path, output_dir, max_cache_ram ("8GiB",
 * "512MiB", "1.5GB", plain bytes, "auto"), device_working_mem (a size),
 * log_level ("error".."trace" or 0..4), gpu_dtype ("auto", "f16", "bf16";
 * version 2). GEN_ENOTFOUND for an unknown name, GEN_EINVAL for a bad value,
 * GEN_EVERSION for an option newer than the struct's version; `opts` is
 * unchanged on failure. */
GEN_API gen_status gen_context_options_set(gen_context_options *opts, const char *name,
                                           const char *value);

/* Apply every LIBGEN_<NAME> environment variable that is set (e.g.
 * LIBGEN_GENERATION_DEVICES, LIBGEN_MAX_CACHE_RAM). Stops at the first bad
 * value, leaving the options set so far applied; the message names the variable. */
GEN_API gen_status gen_context_options_set_from_env(gen_context_options *opts);

/* Write the current value of option `name` as text into buf (NUL-terminated).
 * For an option newer than the struct's version, the default (what a context
 * made from the struct uses). GEN_EINVAL if buf is too small (the text is not
 * truncated silently). */
GEN_API gen_status gen_context_options_get(const gen_context_options *opts, const char *name,
                                           char *buf, size_t buf_size);

/* Number of option names known to this library, and the i-th one (static text,
 * NULL when out of range). */
GEN_API size_t gen_context_option_count(void);
GEN_API const char *gen_context_option_name(size_t index);

/* Create a context. `opts` may be NULL for the defaults; an options struct of
 * an older version is accepted, a newer one is refused with GEN_EVERSION.
 * The devices are resolved here: an unavailable device fails creation (the
 * message names it). *out is NULL on failure. */
GEN_API gen_status gen_context_create(gen_context **out, const gen_context_options *opts);

/* Destroy a context (stops its workers first). NULL is accepted. */
GEN_API void gen_context_destroy(gen_context *ctx);

/* The options the context runs with (values after validation and
 * normalisation, e.g. generation_devices de-duplicated). Owned by the context.
 * Its version is the one the context was created with, so a program may copy
 * it into its own gen_context_options. */
GEN_API const gen_context_options *gen_context_get_options(const gen_context *ctx);

/* The devices the context runs on (resolved from generation_devices at
 * creation). Owned by the context. */
GEN_API const gen_device_pool *gen_context_device_pool(const gen_context *ctx);

/* The context's queue, opened from db_path at creation (recovering items left
 * in progress by dead processes); NULL when db_path is empty. Owned by the
 * context. Enqueue and cancel through it: cancels of running items are routed
 * to the worker running them, and its status changes become events. */
GEN_API gen_queue *gen_context_queue(gen_context *ctx);

/* How gen_context_stop treats items that are running. */
typedef enum gen_stop_mode {
    GEN_STOP_DRAIN = 0,   /* let running items finish; claim nothing more */
    GEN_STOP_CANCEL = 1,  /* stop running items within a step; they end canceled */
    GEN_STOP_REQUEUE = 2  /* stop running items within a step; they go back to pending */
} gen_stop_mode;

/* Start one worker thread per device; each processes the queue until
 * stopped. GEN_ESTATE when already started or when there is no queue. */
GEN_API gen_status gen_context_start(gen_context *ctx);

/* Stop the workers (gen_stop_mode) and wait for their threads. GEN_ESTATE when
 * not started. Must not be called from an event callback. */
GEN_API gen_status gen_context_stop(gen_context *ctx, int32_t mode);

/* Pause: workers finish their current item and then claim nothing until
 * resumed. */
GEN_API gen_status gen_context_pause(gen_context *ctx);
GEN_API gen_status gen_context_resume(gen_context *ctx);

/* Wake idle workers now instead of at their next poll (call after enqueueing
 * for the lowest latency; workers poll every 250 ms anyway). */
GEN_API void gen_context_wake(gen_context *ctx);

/* Register the event callback (NULL unregisters). It runs on the thread that
 * produced the event: worker threads for progress, model loads and images;
 * for status changes, the thread that made the change. It must be quick and
 * thread-safe; it may call gen_context_queue / gen_queue_* functions and
 * gen_context_wake, but not start, stop or destroy. */
GEN_API gen_status gen_context_set_event_callback(gen_context *ctx, gen_event_fn fn,
                                                  void *user_data);

/* Also keep events in a queue of `capacity` events (0 = 4096) for
 * gen_context_next_event. When it is full the oldest event is dropped. */
GEN_API gen_status gen_context_enable_event_queue(gen_context *ctx, size_t capacity);

/* Take the next event, waiting up to timeout_ms (0 = do not wait, -1 =
 * forever). GEN_ETIMEOUT when none came; GEN_ESTATE if the event queue is not
 * enabled. The caller owns *out (gen_event_destroy). Safe from any thread. */
GEN_API gen_status gen_context_next_event(gen_context *ctx, gen_event **out, int32_t timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* GEN_CONTEXT_H */
