/* Time to apply LoRAs out of place (gen__lora_build: read the file, match the
 * keys, compute W + s * up @ down into new device tensors) on a CPU device.
 *
 * Scenarios (one JSON line each):
 * - "tiny": the tiny SD1.5 fixture, a kohya LoRA of rank 4 on every linear
 *   and conv weight of the UNet and the text encoder; also gen_generate
 *   (64x64, 3 steps) without and with that LoRA.
 * - "sd15_attn": the 128 attention projections of SD1.5's UNet at their real
 *   shapes (random weights, made in memory), a peft LoRA of rank 16 on all.
 *
 * usage: bench_lora_apply [REPS]   (default 10; medians are printed) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gen/gen.h>

#include "context/context_internal.h"
#include "core/time.h"
#include "pipeline/engine.h"
#include "pipeline/lora.h"
#include "pipeline/weights.h"
#include "st_write.h"

#include "bench_util.h"

static float *randoms(size_t n, unsigned seed, float amp)
{
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = amp * ((float)(seed >> 8) / 16777216.0f - 0.5f);
    }
    return v;
}

typedef struct lora_writer {
    st_spec *specs;
    char **names;
    size_t n, cap;
} lora_writer;

static void add(lora_writer *w, const char *name, int ndim, const int64_t *shape, float *data)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 256;
        w->specs = realloc(w->specs, w->cap * sizeof *w->specs);
        w->names = realloc(w->names, w->cap * sizeof *w->names);
    }
    w->names[w->n] = strdup(name);
    st_spec *s = &w->specs[w->n++];
    memset(s, 0, sizeof *s);
    s->name = w->names[w->n - 1];
    s->dtype = "F32";
    s->ndim = ndim;
    memcpy(s->shape, shape, (size_t)ndim * sizeof *shape);
    s->data = data;
}

/* A LoRA pair (+ alpha) for weight `name` of shape `shape` under `prefix`. */
static void add_pair(lora_writer *w, bool kohya, const char *part_prefix, const char *name,
                     int ndim, const int64_t *shape, int64_t rank, unsigned seed)
{
    char stem[512], key[600];
    snprintf(stem, sizeof stem, "%.*s", (int)(strlen(name) - strlen(".weight")), name);
    if (kohya)
        for (char *p = stem; *p; p++)
            if (*p == '.')
                *p = '_';
    int64_t in = 1;
    for (int d = 1; d < ndim; d++)
        in *= shape[d];
    snprintf(key, sizeof key, "%s%s.%s", part_prefix, stem, kohya ? "lora_down.weight" : "lora_A.weight");
    if (ndim == 4)
        add(w, key, 4, (int64_t[]){rank, shape[1], shape[2], shape[3]},
            randoms((size_t)(rank * in), seed, 0.1f));
    else
        add(w, key, 2, (int64_t[]){rank, shape[1]}, randoms((size_t)(rank * in), seed, 0.1f));
    snprintf(key, sizeof key, "%s%s.%s", part_prefix, stem, kohya ? "lora_up.weight" : "lora_B.weight");
    if (ndim == 4)
        add(w, key, 4, (int64_t[]){shape[0], rank, 1, 1},
            randoms((size_t)(shape[0] * rank), seed + 1, 0.1f));
    else
        add(w, key, 2, (int64_t[]){shape[0], rank}, randoms((size_t)(shape[0] * rank), seed + 1, 0.1f));
    snprintf(key, sizeof key, "%s%s.alpha", part_prefix, stem);
    float *alpha = malloc(sizeof *alpha);
    *alpha = (float)rank / 2.0f;
    add(w, key, 0, (int64_t[]){1}, alpha);
}

static void finish(lora_writer *w, const char *path)
{
    if (st_write(path, w->specs, w->n, NULL) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    for (size_t i = 0; i < w->n; i++) {
        free((void *)w->specs[i].data);
        free(w->names[i]);
    }
    free(w->specs);
    free(w->names);
    memset(w, 0, sizeof *w);
}

/* Median seconds of gen__lora_build over reps. */
static double time_build(const gen__job_lora *l, const gen__device_weights *const parts[3], int reps,
                         gen__lora_stats *stats)
{
    double *t = malloc((size_t)reps * sizeof *t);
    for (int r = 0; r < reps; r++) {
        gen__device_weights *ov[GEN__PART_COUNT];
        int64_t t0 = gen__monotonic_ns();
        if (gen__lora_build(l, 1, parts, ov, stats) != GEN_OK) {
            fprintf(stderr, "lora: %s\n", gen_last_error_message());
            exit(1);
        }
        t[r] = (double)(gen__monotonic_ns() - t0) / 1e9;
        for (int p = 0; p < GEN__PART_COUNT; p++)
            gen__device_weights_release(ov[p]);
    }
    double m = bench_median(t, reps);
    free(t);
    return m;
}

static double time_generate(gen_context *ctx, const char *model, const char *loras, int reps)
{
    double *t = malloc((size_t)reps * sizeof *t);
    for (int r = 0; r < reps; r++) {
        gen_job *job = NULL;
        gen_job_create(&job);
        gen_job_set(job, "model", model);
        gen_job_set(job, "prompt", "a red cube");
        gen_job_set(job, "width", "64");
        gen_job_set(job, "height", "64");
        gen_job_set(job, "steps", "3");
        gen_job_set(job, "seed", "1");
        if (loras)
            gen_job_set(job, "loras", loras);
        gen_image *img = NULL;
        int64_t t0 = gen__monotonic_ns();
        if (gen_generate(&img, ctx, 0, job, NULL, NULL) != GEN_OK) {
            fprintf(stderr, "generate: %s\n", gen_last_error_message());
            exit(1);
        }
        t[r] = (double)(gen__monotonic_ns() - t0) / 1e9;
        gen_image_destroy(img);
        gen_job_destroy(job);
    }
    double m = bench_median(t, reps);
    free(t);
    return m;
}

static void tiny(const char *dir, int reps)
{
    const char *model = GEN_BENCH_FIXTURES "/tiny-sd15";
    gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
    o.log_level = GEN_LOG_ERROR;
    gen_context_options_set(&o, "generation_devices", "cpu:0");
    gen_context *ctx = NULL;
    if (gen_context_create(&ctx, &o) != GEN_OK) {
        fprintf(stderr, "context: %s\n", gen_last_error_message());
        exit(1);
    }
    gen__model *m = NULL;
    if (gen__model_open(&m, model, NULL) != GEN_OK) {
        fprintf(stderr, "%s\n", gen_last_error_message());
        exit(1);
    }
    gen__engine_part parts[GEN__PART_COUNT];
    const gen__device_weights *dw[GEN__PART_COUNT];
    for (int p = 0; p < GEN__PART_COUNT; p++) {
        bool loaded;
        double s;
        gen__engine_lock_part(ctx->engine, 0, m, (gen__part)p, &parts[p], &loaded, &s);
        dw[p] = gen__engine_part_weights(&parts[p]);
    }
    lora_writer w = {0};
    unsigned seed = 1;
    const gen__part which[2] = {GEN__PART_UNET, GEN__PART_TEXT_ENCODER};
    for (int k = 0; k < 2; k++) {
        const gen__device_weights *d = dw[which[k]];
        for (size_t i = 0; i < gen__device_weights_count(d); i++) {
            const char *name = gen__device_weights_name_at(d, i);
            gen__tensor t;
            gen__weights_view(d, name, &t);
            size_t len = strlen(name);
            if ((t.ndim != 2 && t.ndim != 4) || len < 8 || strcmp(name + len - 7, ".weight") != 0 ||
                strstr(name, "embeddings."))
                continue;
            add_pair(&w, true, which[k] == GEN__PART_UNET ? "lora_unet_" : "lora_te_", name, t.ndim,
                     t.shape, 4, seed += 2);
        }
    }
    char path[600];
    snprintf(path, sizeof path, "%s/tiny_lora.safetensors", dir);
    finish(&w, path);
    gen__job_lora l = {path, 0.8};
    gen__lora_stats st;
    double apply = time_build(&l, dw, reps, &st);
    for (int p = 0; p < GEN__PART_COUNT; p++)
        gen__engine_release_part(&parts[p]);
    gen__model_close(m);
    char loras[700];
    snprintf(loras, sizeof loras, "%s:0.8", path);
    time_generate(ctx, model, NULL, 1); /* warm the cache */
    int greps = reps < 3 ? reps : 3;
    double plain = time_generate(ctx, model, NULL, greps);
    double with = time_generate(ctx, model, loras, greps);
    printf("{\"bench\":\"lora_apply\",\"scenario\":\"tiny\",\"modules\":%d,\"unet_patched\":%d,"
           "\"te_patched\":%d,\"overlay_bytes\":%llu,\"apply_s_median\":%.6f,"
           "\"generate_s_median\":%.4f,\"generate_lora_s_median\":%.4f,\"reps\":%d}\n",
           st.modules, st.patched[GEN__PART_UNET], st.patched[GEN__PART_TEXT_ENCODER],
           (unsigned long long)st.overlay_bytes, apply, plain, with, reps);
    gen_context_destroy(ctx);
}

/* SD1.5 UNet attention projections: 16 transformer blocks (down 2+2+2, mid 1,
 * up 3+3+3), attn1 q/k/v/out [d, d], attn2 q/out [d, d], k/v [d, 768]. */
static void sd15_attn(const char *dir, int reps)
{
    gen__host_weights *hw = NULL;
    gen__host_weights_create(&hw, "unet");
    lora_writer w = {0};
    float *pool[256];
    int npool = 0;
    unsigned seed = 7;
    static const struct { const char *block; int n; int64_t d; } blocks[] = {
        {"down_blocks.0", 2, 320}, {"down_blocks.1", 2, 640}, {"down_blocks.2", 2, 1280},
        {"mid_block", 1, 1280},    {"up_blocks.1", 3, 1280},  {"up_blocks.2", 3, 640},
        {"up_blocks.3", 3, 320},
    };
    static const char *const projs[] = {"attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0",
                                        "attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0"};
    for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++)
        for (int a = 0; a < blocks[b].n; a++)
            for (size_t p = 0; p < 8; p++) {
                char name[256];
                snprintf(name, sizeof name, "%s.attentions.%d.transformer_blocks.0.%s.weight",
                         blocks[b].block, a, projs[p]);
                int64_t d = blocks[b].d;
                int64_t in = (p == 5 || p == 6) ? 768 : d;
                int64_t shape[2] = {d, in};
                float *data = randoms((size_t)(d * in), seed++, 0.05f);
                pool[npool++] = data;
                gen__host_weights_add(hw, name, GEN__F32, 2, shape, data);
                add_pair(&w, false, "unet.", name, 2, shape, 16, seed += 2);
            }
    char path[600];
    snprintf(path, sizeof path, "%s/sd15_attn_lora.safetensors", dir);
    finish(&w, path);
    gen__backend *be = NULL;
    gen__cpu_backend_options o = {0, 0, 0};
    if (gen__cpu_backend_create(&be, &o) != GEN_OK) {
        fprintf(stderr, "%s\n", gen_last_error_message());
        exit(1);
    }
    gen__device_weights *dw = NULL;
    if (gen__device_weights_upload(&dw, hw, be, GEN__F32) != GEN_OK) {
        fprintf(stderr, "%s\n", gen_last_error_message());
        exit(1);
    }
    const gen__device_weights *parts[GEN__PART_COUNT] = {dw, NULL, NULL};
    gen__job_lora l = {path, 1.0};
    gen__lora_stats st;
    double apply = time_build(&l, parts, reps, &st);
    printf("{\"bench\":\"lora_apply\",\"scenario\":\"sd15_attn\",\"rank\":16,\"modules\":%d,"
           "\"unet_patched\":%d,\"overlay_bytes\":%llu,\"apply_s_median\":%.4f,\"reps\":%d}\n",
           st.modules, st.patched[GEN__PART_UNET], (unsigned long long)st.overlay_bytes, apply,
           reps);
    gen__device_weights_release(dw);
    gen__backend_destroy(be);
    gen__host_weights_destroy(hw);
    for (int i = 0; i < npool; i++)
        free(pool[i]);
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 10;
    if (reps < 1)
        reps = 1;
    char *dir = st_tempdir();
    tiny(dir, reps);
    sd15_attn(dir, reps < 5 ? reps : 5);
    st_rmtree(dir);
    free(dir);
    return 0;
}
