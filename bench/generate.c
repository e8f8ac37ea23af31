/* Whole images through the public API (gen_generate on cpu:0), as an embedding
 * application sees them. One JSON object per line:
 *   stage "first_image": the first gen_generate of a fresh context, model load
 *     and weight conversion included (what a cold service pays once);
 *   stage "image": the median of the following warm images (model cached),
 *     the figure comparable to a diffusers pipeline call after from_pretrained;
 * each with wall and CPU seconds, and the process's peak RSS so far.
 * The CPU device uses every core this process may run on (limit them with
 * taskset to compare at a given thread count).
 *
 * Usage: bench_generate MODEL [size=256] [steps=4] [warm_images=1] [scheduler=euler]
 * Example: bench_generate tests/fixtures/tiny-sd15 64 4 3 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include <gen/gen.h>

#include "bench_util.h"

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fail(const char *what, gen_status st)
{
    fprintf(stderr, "bench_generate: %s: %s: %s\n", what, gen_status_string(st),
            gen_last_error_message());
    exit(1);
}

static void check(gen_status st, const char *what)
{
    if (st != GEN_OK)
        fail(what, st);
}

static void emit(const char *model, int size, int steps, const char *scheduler, const char *stage,
                 int images, double seconds, double cpu_seconds)
{
    printf("{\"bench\":\"generate\",\"model\":\"%s\",\"size\":%d,\"steps\":%d,\"scheduler\":\"%s\","
           "\"stage\":\"%s\",\"images\":%d,\"seconds\":%.4f,\"cpu_seconds\":%.4f,"
           "\"peak_rss_mb\":%.1f}\n",
           model, size, steps, scheduler, stage, images, seconds, cpu_seconds, bench_peak_rss_mb());
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_generate MODEL [size] [steps] [warm_images] [scheduler]\n");
        return 2;
    }
    const char *model = argv[1];
    int size = argc > 2 ? atoi(argv[2]) : 256;
    int steps = argc > 3 ? atoi(argv[3]) : 4;
    int warm = argc > 4 ? atoi(argv[4]) : 1;
    const char *scheduler = argc > 5 ? argv[5] : "euler";
    if (size < 8 || steps < 1 || warm < 1 || warm > 64)
        return 2;

    gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
    o.log_level = GEN_LOG_WARN;
    check(gen_context_options_set(&o, "generation_devices", "cpu:0"), "options");
    gen_context *ctx = NULL;
    check(gen_context_create(&ctx, &o), "context");

    char text[32];
    gen_job *job = NULL;
    check(gen_job_create(&job), "job");
    check(gen_job_set(job, "model", model), "model");
    check(gen_job_set(job, "prompt", "a lighthouse at dusk"), "prompt");
    snprintf(text, sizeof text, "%d", size);
    check(gen_job_set(job, "width", text), "width");
    check(gen_job_set(job, "height", text), "height");
    snprintf(text, sizeof text, "%d", steps);
    check(gen_job_set(job, "steps", text), "steps");
    check(gen_job_set(job, "scheduler", scheduler), "scheduler");
    check(gen_job_set(job, "guidance", "7.5"), "guidance");
    check(gen_job_set(job, "seed", "1"), "seed");

    double seconds[64], cpu[64];
    for (int i = 0; i <= warm; i++) {
        gen_image *img = NULL;
        double t0 = wall_now(), c0 = bench_cpu_seconds();
        check(gen_generate(&img, ctx, 0, job, NULL, NULL), "generate");
        double s = wall_now() - t0, c = bench_cpu_seconds() - c0;
        if (gen_image_width(img) != size || gen_image_height(img) != size)
            fail("image size", GEN_EINTERNAL);
        gen_image_destroy(img);
        if (i == 0) {
            emit(model, size, steps, scheduler, "first_image", 1, s, c);
        } else {
            seconds[i - 1] = s;
            cpu[i - 1] = c;
        }
    }
    emit(model, size, steps, scheduler, "image", warm, bench_median(seconds, warm), bench_median(cpu, warm));

    gen_job_destroy(job);
    gen_context_destroy(ctx);
    return 0;
}
