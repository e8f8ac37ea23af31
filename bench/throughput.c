/* Throughput of the workers: images per minute with one CPU device using every
 * core vs two virtual CPU devices splitting them, in the same run, plus the
 * time from start to the first denoising step. One JSON line per setup, then
 * the ratio.
 *
 * usage: bench_throughput [--model PATH] [--size PX] [--steps N] [--images N]
 * (defaults: the tiny fixture model, 128 px, 10 steps, 8 images). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gen/gen.h>

#include "core/time.h"

struct watch {
    atomic_llong first_step_ns;
};

static void on_event(const gen_event *ev, void *p)
{
    struct watch *w = p;
    long long zero = 0;
    if (gen_event_type_of(ev) == GEN_EVENT_PROGRESS && gen_event_stage(ev) == GEN_STAGE_DENOISE)
        atomic_compare_exchange_strong(&w->first_step_ns, &zero, (long long)gen__monotonic_ns());
}

static int run(const char *devices, const char *model, int size, int steps, int images,
               double *per_minute)
{
    char dir[] = "/tmp/libgen-bench-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char db[128], out[128];
    snprintf(db, sizeof(db), "%s/q.db", dir);
    snprintf(out, sizeof(out), "%s/out", dir);
    gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
    o.log_level = GEN_LOG_ERROR;
    gen_context *ctx = NULL;
    if (gen_context_options_set(&o, "generation_devices", devices) != GEN_OK ||
        gen_context_options_set(&o, "db_path", db) != GEN_OK ||
        gen_context_options_set(&o, "output_dir", out) != GEN_OK ||
        gen_context_create(&ctx, &o) != GEN_OK) {
        fprintf(stderr, "bench: %s\n", gen_last_error_message());
        return 1;
    }
    char job[2048];
    snprintf(job, sizeof(job),
             "{\"model\": \"%s\", \"prompt\": \"a lighthouse at dusk\", \"width\": %d, "
             "\"height\": %d, \"steps\": %d, \"guidance\": 7.5, \"scheduler\": \"euler\", "
             "\"seed\": 1}",
             model, size, size, steps);
    gen_queue_batch b = GEN_QUEUE_BATCH_INIT;
    b.job = job;
    b.runs = (uint32_t)images;
    gen_queue_enqueued *r = NULL;
    if (gen_queue_enqueue(&r, gen_context_queue(ctx), &b) != GEN_OK) {
        fprintf(stderr, "bench: %s\n", gen_last_error_message());
        return 1;
    }
    gen_queue_enqueued_destroy(r);
    struct watch w = {0};
    gen_context_set_event_callback(ctx, on_event, &w);
    int64_t t0 = gen__monotonic_ns();
    if (gen_context_start(ctx) != GEN_OK) {
        fprintf(stderr, "bench: %s\n", gen_last_error_message());
        return 1;
    }
    gen_queue_counts c = {.version = GEN_QUEUE_COUNTS_VERSION};
    do {
        usleep(10000);
        gen_queue_get_counts(&c, gen_context_queue(ctx), NULL, NULL);
    } while (c.completed + c.failed < (uint64_t)images);
    double seconds = (double)(gen__monotonic_ns() - t0) / 1e9;
    gen_context_stop(ctx, GEN_STOP_DRAIN);
    *per_minute = (double)c.completed * 60.0 / seconds;
    printf("{\"bench\": \"throughput\", \"devices\": \"%s\", \"model\": \"%s\", \"size\": %d, "
           "\"steps\": %d, \"images\": %d, \"failed\": %llu, \"seconds\": %.3f, "
           "\"images_per_minute\": %.2f, \"time_to_first_step_s\": %.3f}\n",
           devices, model, size, steps, images, (unsigned long long)c.failed, seconds, *per_minute,
           (double)(atomic_load(&w.first_step_ns) - t0) / 1e9);
    fflush(stdout);
    gen_context_destroy(ctx);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *model = GEN_BENCH_FIXTURES "/tiny-sd15";
    int size = 128, steps = 10, images = 8;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--model") == 0)
            model = argv[i + 1];
        else if (strcmp(argv[i], "--size") == 0)
            size = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--steps") == 0)
            steps = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--images") == 0)
            images = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: %s [--model PATH] [--size PX] [--steps N] [--images N]\n",
                    argv[0]);
            return 2;
        }
    }
    double one = 0, two = 0;
    if (run("cpu:0", model, size, steps, images, &one) || run("cpu:0,cpu:1", model, size, steps,
                                                               images, &two))
        return 1;
    printf("{\"bench\": \"throughput_scaling\", \"two_devices_over_one\": %.3f}\n", two / one);
    return 0;
}
