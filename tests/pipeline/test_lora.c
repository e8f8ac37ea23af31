/* LoRA applied out of place (lib/pipeline/lora.c) on the tiny SD1.5 fixture.
 *
 * Every LoRA file is written by the test (kohya, peft and diffusers key
 * styles) for UNet attention projections, a 3x3 and a 1x1 conv and two text
 * encoder projections. Checked:
 * - the patched tensors equal W + strength * alpha/rank * up @ down computed
 *   in double; partial and negative strengths; two LoRAs sum; the key styles
 *   and f16/f32 files give the same tensors bit for bit;
 * - gen_generate with a LoRA equals gen_generate on a hand-merged copy of the
 *   model written to a temporary diffusers folder;
 * - two CPU devices running LoRA jobs (and a bad LoRA job) at once leave the
 *   canonical host weights and the cached device copies unchanged (checksums),
 *   and a job without LoRA afterwards gives the original image bit for bit;
 * - bad LoRA files fail the job with a message naming the file and key. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <gen/gen.h>

#include "../model/st_write.h"
#include "context/context_internal.h"
#include "core/alloc.h"
#include "model/model.h"
#include "model/model_cache.h"
#include "model/safetensors.h"
#include "pipeline/engine.h"
#include "pipeline/lora.h"
#include "pipeline/weights.h"

#ifndef GEN_FIXTURES_DIR
#error GEN_FIXTURES_DIR must be defined by the build
#endif

#define MODEL GEN_FIXTURES_DIR "/tiny-sd15"

/* ---- the LoRA modules the tests write ------------------------------------------------------ */

typedef struct tmod {
    gen__part part;
    const char *stem; /* the diffusers module path */
    int64_t out, in, kh, kw; /* kh = 0: linear */
    int64_t rank;
    double alpha;            /* 0: no alpha key (scale 1) */
} tmod;

static const tmod MODS[] = {
    {GEN__PART_UNET, "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q", 24, 24, 0, 0, 4, 2.0},
    {GEN__PART_UNET, "mid_block.attentions.0.transformer_blocks.0.attn2.to_k", 40, 32, 0, 0, 3, 0.0},
    {GEN__PART_UNET, "up_blocks.1.attentions.1.transformer_blocks.0.attn1.to_out.0", 24, 24, 0, 0, 4, 8.0},
    {GEN__PART_UNET, "down_blocks.0.resnets.0.conv1", 24, 24, 3, 3, 4, 4.0},
    {GEN__PART_UNET, "down_blocks.0.attentions.0.proj_in", 24, 24, 1, 1, 2, 0.0},
    {GEN__PART_TEXT_ENCODER, "text_model.encoder.layers.0.self_attn.q_proj", 32, 32, 0, 0, 4, 4.0},
    {GEN__PART_TEXT_ENCODER, "text_model.encoder.layers.1.mlp.fc1", 37, 32, 0, 0, 2, 1.0},
};
#define NMODS (sizeof MODS / sizeof MODS[0])

static int64_t mod_cols(const tmod *m)
{
    return m->in * (m->kh ? m->kh * m->kw : 1);
}

/* Values k/64 with |k| <= 32: exact in f32, f16 and bf16, so files of any of
 * these dtypes hold the same numbers. `set` picks one of several LoRAs. */
static float lora_value(int set, size_t mod, int which, size_t i)
{
    uint64_t x = (uint64_t)set * 1000003u + mod * 7919u + (uint64_t)which * 104729u + i;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    int k = (int)(x % 65) - 32;
    return (float)k / 64.0f;
}

static uint16_t to_f16(float f)
{
    uint16_t h;
    gen__convert_host(&h, GEN__F16, &f, GEN__F32, 1);
    return h;
}

enum style { KOHYA, PEFT, DOTTED };

typedef struct lfile {
    st_spec specs[3 * NMODS + 8];
    char names[3 * NMODS + 8][256];
    void *data[3 * NMODS + 8];
    size_t n;
} lfile;

static void key_name(char *out, size_t size, enum style style, const tmod *m, const char *suffix)
{
    if (style == KOHYA) {
        char under[200];
        snprintf(under, sizeof under, "%s", m->stem);
        for (char *p = under; *p; p++)
            if (*p == '.')
                *p = '_';
        snprintf(out, size, "%s%s%s", m->part == GEN__PART_UNET ? "lora_unet_" : "lora_te_", under,
                 suffix);
    } else {
        const char *stem = m->stem;
        /* diffusers-style text encoder keys may omit transformers' "text_model." */
        if (style == DOTTED && strncmp(stem, "text_model.", 11) == 0)
            stem += 11;
        /* diffusers' older forms: attention-processor keys for the UNet's
         * attention projections, lora_linear_layer for the text encoder. */
        static const char *const projs[] = {".to_q", ".to_k", ".to_v", ".to_out.0"};
        size_t n = strlen(stem);
        for (size_t i = 0; style == DOTTED && m->part == GEN__PART_UNET && i < 4; i++) {
            size_t k = strlen(projs[i]);
            if (n > k && strcmp(stem + n - k, projs[i]) == 0) {
                const char *psfx = strcmp(suffix, ".lora.down.weight") == 0 ? "_lora.down.weight"
                                   : strcmp(suffix, ".lora.up.weight") == 0 ? "_lora.up.weight"
                                                                            : "_lora.alpha";
                snprintf(out, size, "unet.%.*s.processor.%s%s", (int)(n - k), stem,
                         i == 3 ? "to_out" : projs[i] + 1, psfx);
                return;
            }
        }
        if (style == DOTTED && m->part == GEN__PART_TEXT_ENCODER)
            suffix = strcmp(suffix, ".lora.down.weight") == 0 ? ".lora_linear_layer.down.weight"
                     : strcmp(suffix, ".lora.up.weight") == 0 ? ".lora_linear_layer.up.weight"
                                                              : suffix;
        snprintf(out, size, "%s%s%s", m->part == GEN__PART_UNET ? "unet." : "text_encoder.", stem,
                 suffix);
    }
}

static void add_spec(lfile *f, const char *name, const char *dtype, int ndim, const int64_t *shape,
                     void *data)
{
    size_t k = f->n++;
    snprintf(f->names[k], sizeof f->names[k], "%s", name);
    f->specs[k].name = f->names[k];
    f->specs[k].dtype = dtype;
    f->specs[k].ndim = ndim;
    memcpy(f->specs[k].shape, shape, (size_t)ndim * sizeof(int64_t));
    f->specs[k].data = data;
    f->data[k] = data;
}

/* A tensor of `n` LoRA values as F32 or F16 bytes (malloc'ed). */
static void *values(int set, size_t mod, int which, size_t n, bool f16)
{
    if (f16) {
        uint16_t *h = malloc(n * sizeof *h);
        for (size_t i = 0; i < n; i++)
            h[i] = to_f16(lora_value(set, mod, which, i));
        return h;
    }
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = lora_value(set, mod, which, i);
    return v;
}

/* Add module `mi` of LoRA `set` in `style`. */
static void add_module(lfile *f, enum style style, int set, size_t mi, bool f16)
{
    const tmod *m = &MODS[mi];
    const char *dt = f16 ? "F16" : "F32";
    char name[256];
    const char *down_sfx = style == KOHYA ? ".lora_down.weight"
                           : style == PEFT ? ".lora_A.weight"
                                           : ".lora.down.weight";
    const char *up_sfx = style == KOHYA ? ".lora_up.weight"
                         : style == PEFT ? ".lora_B.weight"
                                         : ".lora.up.weight";
    key_name(name, sizeof name, style, m, down_sfx);
    if (m->kh)
        add_spec(f, name, dt, 4, (int64_t[]){m->rank, m->in, m->kh, m->kw},
                 values(set, mi, 0, (size_t)(m->rank * mod_cols(m)), f16));
    else
        add_spec(f, name, dt, 2, (int64_t[]){m->rank, m->in},
                 values(set, mi, 0, (size_t)(m->rank * m->in), f16));
    key_name(name, sizeof name, style, m, up_sfx);
    if (m->kh)
        add_spec(f, name, dt, 4, (int64_t[]){m->out, m->rank, 1, 1},
                 values(set, mi, 1, (size_t)(m->out * m->rank), f16));
    else
        add_spec(f, name, dt, 2, (int64_t[]){m->out, m->rank},
                 values(set, mi, 1, (size_t)(m->out * m->rank), f16));
    if (m->alpha > 0) {
        key_name(name, sizeof name, style, m, ".alpha");
        float *a = malloc(sizeof *a);
        *a = (float)m->alpha;
        add_spec(f, name, "F32", 0, (int64_t[]){1}, a);
    }
}

static void write_file(lfile *f, const char *path)
{
    assert_int_equal(st_write(path, f->specs, f->n, "{\"ss_network_module\": \"networks.lora\"}"),
                     0);
    for (size_t i = 0; i < f->n; i++)
        free(f->data[i]);
    f->n = 0;
}

/* All modules of LoRA `set` in one style. */
static void write_lora(const char *path, enum style style, int set, bool f16)
{
    lfile *f = calloc(1, sizeof *f);
    for (size_t i = 0; i < NMODS; i++)
        add_module(f, style, set, i, f16);
    write_file(f, path);
    free(f);
}

/* delta = alpha/rank * up @ down of module mi of LoRA `set`, in double [out * cols]. */
static double *delta(int set, size_t mi)
{
    const tmod *m = &MODS[mi];
    int64_t cols = mod_cols(m);
    double *d = calloc((size_t)(m->out * cols), sizeof *d);
    double scale = (m->alpha > 0 ? m->alpha : (double)m->rank) / (double)m->rank;
    for (int64_t o = 0; o < m->out; o++)
        for (int64_t k = 0; k < cols; k++) {
            double s = 0;
            for (int64_t r = 0; r < m->rank; r++)
                s += (double)lora_value(set, mi, 1, (size_t)(o * m->rank + r)) *
                     (double)lora_value(set, mi, 0, (size_t)(r * cols + k));
            d[o * cols + k] = scale * s;
        }
    return d;
}

/* ---- harness ------------------------------------------------------------------------------ */

static gen_context *cpu_context(const char *devices)
{
    gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
    o.log_level = GEN_LOG_ERROR;
    assert_int_equal(gen_context_options_set(&o, "generation_devices", devices), GEN_OK);
    gen_context *ctx = NULL;
    if (gen_context_create(&ctx, &o) != GEN_OK)
        fail_msg("context: %s", gen_last_error_message());
    return ctx;
}

static void set(gen_job *job, const char *name, const char *value)
{
    if (gen_job_set(job, name, value) != GEN_OK)
        fail_msg("%s=%s: %s", name, value, gen_last_error_message());
}

static gen_job *make_job(const char *model, const char *loras)
{
    gen_job *job = NULL;
    assert_int_equal(gen_job_create(&job), GEN_OK);
    set(job, "model", model);
    set(job, "prompt", "a red cube on a table");
    set(job, "negative_prompt", "blurry");
    set(job, "width", "64");
    set(job, "height", "64");
    set(job, "steps", "3");
    set(job, "guidance", "7.5");
    set(job, "seed", "1234");
    set(job, "scheduler", "euler");
    if (loras)
        set(job, "loras", loras);
    return job;
}

typedef struct locked {
    gen__model *model;
    gen__engine_part parts[GEN__PART_COUNT];
    const gen__device_weights *dw[GEN__PART_COUNT];
} locked;

static void lock_parts(gen_context *ctx, size_t dev, locked *l)
{
    memset(l, 0, sizeof *l);
    if (gen__model_open(&l->model, MODEL, NULL) != GEN_OK)
        fail_msg("%s", gen_last_error_message());
    for (int p = 0; p < GEN__PART_COUNT; p++) {
        bool loaded;
        double secs;
        if (gen__engine_lock_part(ctx->engine, dev, l->model, (gen__part)p, &l->parts[p], &loaded,
                                  &secs) != GEN_OK)
            fail_msg("%s", gen_last_error_message());
        l->dw[p] = gen__engine_part_weights(&l->parts[p]);
    }
}

static void unlock_parts(locked *l)
{
    for (int p = 0; p < GEN__PART_COUNT; p++)
        gen__engine_release_part(&l->parts[p]);
    gen__model_close(l->model);
}

static float *download(const gen__device_weights *dw, const char *name, size_t *n)
{
    gen__tensor t;
    if (gen__weights_view(dw, name, &t) != GEN_OK)
        fail_msg("%s", gen_last_error_message());
    assert_int_equal(t.dtype, GEN__F32);
    *n = (size_t)gen__tensor_numel(&t);
    float *v = malloc(*n * sizeof *v);
    assert_int_equal(gen__tensor_download(&t, v, *n * sizeof *v), GEN_OK);
    return v;
}

static void weight_name(char *out, size_t size, size_t mi)
{
    snprintf(out, size, "%s.weight", MODS[mi].stem);
}

static gen__job_lora L(const char *path, double weight)
{
    gen__job_lora l = {(char *)path, weight};
    return l;
}

/* Build overlays for `loras`; fails the test on error. */
static void build(const locked *l, const gen__job_lora *loras, int n,
                  gen__device_weights *ov[GEN__PART_COUNT], gen__lora_stats *stats)
{
    if (gen__lora_build(loras, n, l->dw, ov, stats) != GEN_OK)
        fail_msg("lora: %s", gen_last_error_message());
}

static void release_overlays(gen__device_weights *ov[GEN__PART_COUNT])
{
    for (int p = 0; p < GEN__PART_COUNT; p++) {
        gen__device_weights_release(ov[p]);
        ov[p] = NULL;
    }
}

/* max |overlay - (W + sum_j w_j * delta_j)| over every module; *rel gets the
 * largest relative error of a whole tensor. */
static double overlay_error(const locked *l, gen__device_weights *ov[GEN__PART_COUNT],
                            const int *sets, const double *weights, int nsets, double *rel)
{
    double worst = 0, worst_rel = 0;
    for (size_t mi = 0; mi < NMODS; mi++) {
        char name[256];
        weight_name(name, sizeof name, mi);
        size_t n, nb;
        assert_non_null(ov[MODS[mi].part]);
        float *got = download(ov[MODS[mi].part], name, &n);
        float *base = download(l->dw[MODS[mi].part], name, &nb);
        assert_int_equal(n, nb);
        double *want = calloc(n, sizeof *want);
        for (size_t i = 0; i < n; i++)
            want[i] = base[i];
        for (int s = 0; s < nsets; s++) {
            double *d = delta(sets[s], mi);
            for (size_t i = 0; i < n; i++)
                want[i] += weights[s] * d[i];
            free(d);
        }
        double num = 0, den = 0;
        for (size_t i = 0; i < n; i++) {
            double e = fabs((double)got[i] - want[i]);
            worst = e > worst ? e : worst;
            num += e * e;
            den += want[i] * want[i];
        }
        double r = sqrt(num / (den > 0 ? den : 1e-30));
        worst_rel = r > worst_rel ? r : worst_rel;
        free(got);
        free(base);
        free(want);
    }
    if (rel)
        *rel = worst_rel;
    return worst;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Checksum of every tensor of a part's canonical host copy and of its cached
 * device copy on one device. */
static void checksums(gen_context *ctx, size_t dev, uint64_t host[GEN__PART_COUNT],
                      uint64_t device[GEN__PART_COUNT])
{
    locked l;
    lock_parts(ctx, dev, &l);
    for (int p = 0; p < GEN__PART_COUNT; p++) {
        const gen__host_weights *hw = gen__cached_model_host_data(l.parts[p].entry);
        assert_non_null(hw);
        uint64_t h = 0xcbf29ce484222325ULL;
        for (size_t i = 0; i < gen__host_weights_count(hw); i++) {
            const gen__host_tensor *t = gen__host_weights_at(hw, i);
            size_t bytes = gen__dtype_size(t->dtype);
            for (int d = 0; d < t->ndim; d++)
                bytes *= (size_t)t->shape[d];
            h = fnv(h, t->name, strlen(t->name));
            h = fnv(h, t->data, bytes);
        }
        host[p] = h;
        h = 0xcbf29ce484222325ULL;
        for (size_t i = 0; i < gen__device_weights_count(l.dw[p]); i++) {
            const char *name = gen__device_weights_name_at(l.dw[p], i);
            size_t n;
            float *v = download(l.dw[p], name, &n);
            h = fnv(h, name, strlen(name));
            h = fnv(h, v, n * sizeof *v);
            free(v);
        }
        device[p] = h;
    }
    unlock_parts(&l);
}

typedef struct fixture {
    char *dir;
    char kohya[512], peft[512], dotted[512], kohya16[512], other[512];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = st_tempdir();
    snprintf(f->kohya, sizeof f->kohya, "%s", st_path(f->dir, "kohya.safetensors"));
    snprintf(f->peft, sizeof f->peft, "%s", st_path(f->dir, "peft.safetensors"));
    snprintf(f->dotted, sizeof f->dotted, "%s", st_path(f->dir, "dotted.safetensors"));
    snprintf(f->kohya16, sizeof f->kohya16, "%s", st_path(f->dir, "kohya16.safetensors"));
    snprintf(f->other, sizeof f->other, "%s", st_path(f->dir, "other.safetensors"));
    write_lora(f->kohya, KOHYA, 1, false);
    write_lora(f->peft, PEFT, 1, false);
    write_lora(f->dotted, DOTTED, 1, false);
    write_lora(f->kohya16, KOHYA, 1, true);
    write_lora(f->other, PEFT, 2, false);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    st_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_patched_tensors(void **state)
{
    fixture *f = *state;
    gen_context *ctx = cpu_context("cpu:0");
    locked l;
    lock_parts(ctx, 0, &l);
    gen__device_weights *ov[GEN__PART_COUNT] = {NULL}, *ov2[GEN__PART_COUNT] = {NULL};
    gen__lora_stats stats;

    /* Full strength: W + alpha/rank * up @ down, out of place. */
    gen__job_lora one = L(f->kohya, 1.0);
    build(&l, &one, 1, ov, &stats);
    assert_int_equal(stats.patched[GEN__PART_UNET], 5);
    assert_int_equal(stats.patched[GEN__PART_TEXT_ENCODER], 2);
    assert_null(ov[GEN__PART_VAE]);
    print_message("apply 1 LoRA (7 modules) on the tiny model: %.3f ms, %llu overlay bytes\n",
                  stats.seconds * 1e3, (unsigned long long)stats.overlay_bytes);
    double rel;
    double err = overlay_error(&l, ov, (int[]){1}, (double[]){1.0}, 1, &rel);
    print_message("overlay vs double-precision merge: max abs error %.3g, max rel L2 %.3g\n", err,
                  rel);
    assert_true(err < 1e-5);
    /* Untouched weights are the cached tensors themselves; patched ones are new. */
    gen__tensor a, b;
    assert_int_equal(gen__weights_view(ov[GEN__PART_UNET], "conv_in.weight", &a), GEN_OK);
    assert_int_equal(gen__weights_view(l.dw[GEN__PART_UNET], "conv_in.weight", &b), GEN_OK);
    assert_ptr_equal(a.data, b.data);
    char name[256];
    weight_name(name, sizeof name, 0);
    assert_int_equal(gen__weights_view(ov[GEN__PART_UNET], name, &a), GEN_OK);
    assert_int_equal(gen__weights_view(l.dw[GEN__PART_UNET], name, &b), GEN_OK);
    assert_ptr_not_equal(a.data, b.data);
    assert_int_equal(gen__device_weights_count(ov[GEN__PART_UNET]),
                     gen__device_weights_count(l.dw[GEN__PART_UNET]));

    /* Every key style and the f16 file give the same tensors, bit for bit. */
    const char *same[] = {f->peft, f->dotted, f->kohya16};
    for (size_t s = 0; s < 3; s++) {
        gen__job_lora x = L(same[s], 1.0);
        build(&l, &x, 1, ov2, NULL);
        for (size_t mi = 0; mi < NMODS; mi++) {
            weight_name(name, sizeof name, mi);
            size_t n1, n2;
            float *v1 = download(ov[MODS[mi].part], name, &n1);
            float *v2 = download(ov2[MODS[mi].part], name, &n2);
            assert_int_equal(n1, n2);
            if (memcmp(v1, v2, n1 * sizeof *v1) != 0)
                fail_msg("%s: %s differs from the kohya f32 file", same[s], name);
            free(v1);
            free(v2);
        }
        release_overlays(ov2);
    }

    /* Partial strength is that fraction of the delta; negative subtracts. */
    gen__job_lora half = L(f->kohya, 0.5), neg = L(f->peft, -0.7);
    build(&l, &half, 1, ov2, NULL);
    err = overlay_error(&l, ov2, (int[]){1}, (double[]){0.5}, 1, NULL);
    print_message("strength 0.5: max abs error %.3g\n", err);
    assert_true(err < 1e-5);
    release_overlays(ov2);
    build(&l, &neg, 1, ov2, NULL);
    err = overlay_error(&l, ov2, (int[]){1}, (double[]){-0.7}, 1, &rel);
    print_message("strength -0.7: max abs error %.3g, max rel L2 %.3g\n", err, rel);
    assert_true(err < 1e-5);
    release_overlays(ov2);

    /* Two LoRAs on the same weights: their deltas sum. */
    gen__job_lora two[2] = {L(f->kohya, 1.0), L(f->other, 0.5)};
    build(&l, two, 2, ov2, &stats);
    assert_int_equal(stats.modules, 14);
    assert_int_equal(stats.patched[GEN__PART_UNET], 5);
    err = overlay_error(&l, ov2, (int[]){1, 2}, (double[]){1.0, 0.5}, 2, NULL);
    print_message("two LoRAs (1.0 + 0.5): max abs error %.3g\n", err);
    assert_true(err < 1e-5);
    release_overlays(ov2);

    /* Strength 0: checked, nothing patched. */
    gen__job_lora zero = L(f->kohya, 0.0);
    build(&l, &zero, 1, ov2, &stats);
    for (int p = 0; p < GEN__PART_COUNT; p++)
        assert_null(ov2[p]);

    release_overlays(ov);
    unlock_parts(&l);
    gen_context_destroy(ctx);
}

/* The overlay refuses replacements that are not like-for-like; every
 * allocation failure inside gen__lora_build leaves nothing behind. */
static void test_overlay_rules_and_alloc_failures(void **state)
{
    fixture *f = *state;
    gen_context *ctx = cpu_context("cpu:0");
    locked l;
    lock_parts(ctx, 0, &l);
    const gen__device_weights *unet = l.dw[GEN__PART_UNET];
    gen__device_weights *ov = NULL;
    assert_int_equal(gen__device_weights_overlay(&ov, unet), GEN_OK);
    assert_ptr_equal(gen__device_weights_base(ov), unet);
    gen__tensor t = GEN__TENSOR_EMPTY, w;
    assert_int_equal(gen__weights_view(unet, "conv_in.weight", &w), GEN_OK);
    assert_int_equal(gen__tensor_alloc(&t, gen__device_weights_backend(unet), GEN__F32, 2,
                                       (int64_t[]){24, 36}),
                     GEN_OK);
    assert_int_equal(gen__device_weights_overlay_put(ov, "conv_in.weight", &t), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "conv_in.weight"));
    assert_true(t.owned); /* still the caller's */
    assert_int_equal(gen__device_weights_overlay_put(ov, "no.such.weight", &t), GEN_EINVAL);
    gen__tensor_free(&t);
    assert_int_equal(gen__tensor_alloc_like(&t, gen__device_weights_backend(unet), &w), GEN_OK);
    assert_int_equal(gen__tensor_copy(&t, &w), GEN_OK);
    assert_int_equal(gen__device_weights_overlay_put(ov, "conv_in.weight", &t), GEN_OK);
    assert_null(t.data);
    assert_int_equal(gen__tensor_alloc_like(&t, gen__device_weights_backend(unet), &w), GEN_OK);
    assert_int_equal(gen__device_weights_overlay_put(ov, "conv_in.weight", &t), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "twice"));
    gen__tensor_free(&t);
    assert_int_equal(gen__device_weights_overlay_count(ov), 1);
    gen__device_weights_release(ov);

    gen__job_lora two[2] = {L(f->kohya, 1.0), L(f->other, -0.5)};
    gen__device_weights *ovs[GEN__PART_COUNT];
    int failures = 0;
    for (long n = 1;; n++) {
        gen__alloc_fail_after(n, 0);
        gen_status st = gen__lora_build(two, 2, l.dw, ovs, NULL);
        gen__alloc_fail_after(0, 0);
        if (st == GEN_OK) {
            release_overlays(ovs);
            break;
        }
        failures++;
        for (int p = 0; p < GEN__PART_COUNT; p++)
            assert_null(ovs[p]);
        assert_true(st == GEN_ENOMEM || st == GEN_EDEVICE_OOM);
        assert_true(n < 100000);
    }
    print_message("%d allocation failure points, each failed cleanly\n", failures);
    assert_true(failures > 10);
    unlock_parts(&l);
    gen_context_destroy(ctx);
}

/* Link (symlink) `name` of the fixture model into dir. */
static void link_into(const char *dir, const char *name)
{
    char from[512], to[512];
    snprintf(from, sizeof from, "%s/%s", MODEL, name);
    snprintf(to, sizeof to, "%s/%s", dir, name);
    assert_int_equal(symlink(from, to), 0);
}

/* A copy of the fixture's part file with the modules of LoRA `set` merged in
 * (double precision, stored as f32). */
static void write_merged(const char *src, const char *dst, gen__part part, int set, double weight)
{
    gen__st_file *f = NULL;
    if (gen__st_open(&f, src) != GEN_OK)
        fail_msg("%s", gen_last_error_message());
    size_t n = gen__st_count(f);
    st_spec *specs = calloc(n, sizeof *specs);
    float **owned = calloc(n, sizeof *owned);
    for (size_t i = 0; i < n; i++) {
        const gen__st_view *v = gen__st_at(f, i);
        specs[i].name = v->name;
        specs[i].dtype = gen__st_dtype_name(v->dtype);
        specs[i].ndim = v->ndim;
        memcpy(specs[i].shape, v->shape, (size_t)v->ndim * sizeof(int64_t));
        specs[i].data = v->data;
        for (size_t mi = 0; mi < NMODS; mi++) {
            char name[256];
            weight_name(name, sizeof name, mi);
            if (MODS[mi].part != part || strcmp(name, v->name) != 0)
                continue;
            assert_int_equal(v->dtype, GEN__ST_F32);
            owned[i] = malloc(v->nbytes);
            memcpy(owned[i], v->data, v->nbytes);
            double *d = delta(set, mi);
            for (size_t k = 0; k < v->numel; k++)
                owned[i][k] = (float)((double)owned[i][k] + weight * d[k]);
            free(d);
            specs[i].data = owned[i];
        }
    }
    assert_int_equal(st_write(dst, specs, n, NULL), 0);
    for (size_t i = 0; i < n; i++)
        free(owned[i]);
    free(owned);
    free(specs);
    gen__st_close(f);
}

static gen_image *generate(gen_context *ctx, size_t dev, const char *model, const char *loras)
{
    gen_job *job = make_job(model, loras);
    gen_image *img = NULL;
    if (gen_generate(&img, ctx, dev, job, NULL, NULL) != GEN_OK)
        fail_msg("generate (%s): %s", loras ? loras : "no LoRA", gen_last_error_message());
    gen_job_destroy(job);
    return img;
}

static int pixel_diff(const gen_image *a, const gen_image *b, size_t *count)
{
    size_t n = (size_t)gen_image_width(a) * (size_t)gen_image_height(a) * 3;
    int worst = 0;
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)gen_image_pixels(a)[i] - (int)gen_image_pixels(b)[i]);
        worst = d > worst ? d : worst;
        *count += d != 0;
    }
    return worst;
}

static void test_generate_equals_merged_model(void **state)
{
    fixture *f = *state;
    char *dir = st_tempdir();
    link_into(dir, "model_index.json");
    link_into(dir, "scheduler");
    link_into(dir, "tokenizer");
    link_into(dir, "vae");
    char path[512], src[512];
    snprintf(path, sizeof path, "%s/unet", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/text_encoder", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    link_into(dir, "unet/config.json");
    link_into(dir, "text_encoder/config.json");
    snprintf(src, sizeof src, "%s/unet/diffusion_pytorch_model.safetensors", MODEL);
    snprintf(path, sizeof path, "%s/unet/diffusion_pytorch_model.safetensors", dir);
    write_merged(src, path, GEN__PART_UNET, 1, 0.8);
    snprintf(src, sizeof src, "%s/text_encoder/model.safetensors", MODEL);
    snprintf(path, sizeof path, "%s/text_encoder/model.safetensors", dir);
    write_merged(src, path, GEN__PART_TEXT_ENCODER, 1, 0.8);

    gen_context *ctx = cpu_context("cpu:0");
    char loras[600];
    snprintf(loras, sizeof loras, "%s:0.8", f->kohya);
    gen_image *base = generate(ctx, 0, MODEL, NULL);
    gen_image *with = generate(ctx, 0, MODEL, loras);
    gen_image *merged = generate(ctx, 0, dir, NULL);
    gen_image *after = generate(ctx, 0, MODEL, NULL);
    size_t changed, differ;
    int effect = pixel_diff(base, with, &changed);
    int worst = pixel_diff(with, merged, &differ);
    print_message("LoRA effect: %zu values changed (max %d/255); LoRA vs merged model: "
                  "max %d/255 over %zu values\n",
                  changed, effect, worst, differ);
    assert_true(changed > 100); /* the LoRA visibly changes the picture */
    assert_true(worst <= 1);
    size_t same;
    assert_int_equal(pixel_diff(base, after, &same), 0); /* the cache was not touched */
    gen_image_destroy(base);
    gen_image_destroy(with);
    gen_image_destroy(merged);
    gen_image_destroy(after);
    gen_context_destroy(ctx);
    st_rmtree(dir);
    free(dir);
}

/* ---- two devices at once ------------------------------------------------------------------- */

typedef struct worker_arg {
    gen_context *ctx;
    size_t dev;
    const char *loras[4];
    int n;
    gen_status expect[4];
    gen_image *last; /* image of the last successful job */
    char error[512];
} worker_arg;

static void *worker(void *p)
{
    worker_arg *w = p;
    for (int i = 0; i < w->n; i++) {
        gen_job *job = make_job(MODEL, w->loras[i]);
        gen_image *img = NULL;
        gen_status st = gen_generate(&img, w->ctx, w->dev, job, NULL, NULL);
        gen_job_destroy(job);
        if (st != w->expect[i]) {
            snprintf(w->error, sizeof w->error, "job %d on device %zu: status %d, expected %d: %s",
                     i, w->dev, st, w->expect[i], gen_last_error_message());
            gen_image_destroy(img);
            return NULL;
        }
        if (img) {
            gen_image_destroy(w->last);
            w->last = img;
        }
    }
    return NULL;
}

static void test_two_devices_leave_weights_untouched(void **state)
{
    fixture *f = *state;
    gen_context *ctx = cpu_context("cpu:0,cpu:1");
    gen_image *base0 = generate(ctx, 0, MODEL, NULL);
    gen_image *base1 = generate(ctx, 1, MODEL, NULL);
    uint64_t h0[GEN__PART_COUNT], d0[GEN__PART_COUNT], h1[GEN__PART_COUNT], d1[GEN__PART_COUNT];
    checksums(ctx, 0, h0, d0);
    checksums(ctx, 1, h1, d1);
    for (int p = 0; p < GEN__PART_COUNT; p++)
        assert_true(h0[p] == h1[p]); /* one canonical host copy */

    char a[600], b[600], c[1200], bad[600];
    snprintf(a, sizeof a, "%s:1", f->kohya);
    snprintf(b, sizeof b, "%s:-0.7", f->peft);
    snprintf(c, sizeof c, "%s:0.5,%s:1.5", f->kohya16, f->other);
    snprintf(bad, sizeof bad, "%s/missing.safetensors:1", f->dir);
    worker_arg w0 = {ctx, 0, {a, c, a}, 3, {GEN_OK, GEN_OK, GEN_OK}, NULL, ""};
    worker_arg w1 = {ctx, 1, {b, bad, c, b}, 4, {GEN_OK, GEN_ENOTFOUND, GEN_OK, GEN_OK}, NULL, ""};
    pthread_t t0, t1;
    assert_int_equal(pthread_create(&t0, NULL, worker, &w0), 0);
    assert_int_equal(pthread_create(&t1, NULL, worker, &w1), 0);
    pthread_join(t0, NULL);
    pthread_join(t1, NULL);
    if (w0.error[0])
        fail_msg("%s", w0.error);
    if (w1.error[0])
        fail_msg("%s", w1.error);

    /* The same LoRA job on either device gives the same image. */
    gen_image *a1 = generate(ctx, 1, MODEL, a);
    size_t count;
    assert_int_equal(pixel_diff(w0.last, a1, &count), 0);
    assert_true(pixel_diff(w0.last, base0, &count) > 0);

    uint64_t h0b[GEN__PART_COUNT], d0b[GEN__PART_COUNT], h1b[GEN__PART_COUNT], d1b[GEN__PART_COUNT];
    checksums(ctx, 0, h0b, d0b);
    checksums(ctx, 1, h1b, d1b);
    for (int p = 0; p < GEN__PART_COUNT; p++) {
        assert_true(h0[p] == h0b[p]);
        assert_true(h1[p] == h1b[p]);
        assert_true(d0[p] == d0b[p]);
        assert_true(d1[p] == d1b[p]);
    }
    /* A job without LoRA after LoRA jobs: the original image, bit for bit. */
    gen_image *after0 = generate(ctx, 0, MODEL, NULL);
    gen_image *after1 = generate(ctx, 1, MODEL, NULL);
    assert_int_equal(pixel_diff(base0, after0, &count), 0);
    assert_int_equal(pixel_diff(base1, after1, &count), 0);
    assert_int_equal(pixel_diff(base0, base1, &count), 0);
    gen_image *imgs[] = {base0, base1, a1, after0, after1, w0.last, w1.last};
    for (size_t i = 0; i < sizeof imgs / sizeof imgs[0]; i++)
        gen_image_destroy(imgs[i]);
    gen_context_destroy(ctx);
}

/* ---- bad files ------------------------------------------------------------------------------ */

static void expect_fail(gen_context *ctx, const char *path, gen_status want, const char *needle1,
                        const char *needle2)
{
    char loras[600];
    snprintf(loras, sizeof loras, "%s:1", path);
    gen_job *job = make_job(MODEL, loras);
    gen_image *img = (gen_image *)1;
    gen_status st = gen_generate(&img, ctx, 0, job, NULL, NULL);
    const char *msg = gen_last_error_message();
    print_message("%s\n", msg);
    if (st != want)
        fail_msg("status %d, expected %d: %s", st, want, msg);
    assert_null(img);
    if (!strstr(msg, path))
        fail_msg("the message does not name the file: %s", msg);
    if (needle1 && !strstr(msg, needle1))
        fail_msg("the message does not say '%s': %s", needle1, msg);
    if (needle2 && !strstr(msg, needle2))
        fail_msg("the message does not say '%s': %s", needle2, msg);
    gen_job_destroy(job);
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    fclose(fp);
}

static void test_bad_files(void **state)
{
    fixture *f = *state;
    gen_context *ctx = cpu_context("cpu:0");
    gen_image *base = generate(ctx, 0, MODEL, NULL);
    lfile *lf = calloc(1, sizeof *lf);
    char path[512];

    /* A down weight without its up weight. */
    snprintf(path, sizeof path, "%s", st_path(f->dir, "no_up.safetensors"));
    add_module(lf, KOHYA, 1, 0, false);
    add_module(lf, KOHYA, 1, 1, false);
    free(lf->data[1]); /* module 0's up */
    lf->specs[1] = lf->specs[--lf->n];
    memcpy(lf->names[1], lf->names[lf->n], sizeof lf->names[1]);
    lf->specs[1].name = lf->names[1];
    lf->data[1] = lf->data[lf->n];
    write_file(lf, path);
    expect_fail(ctx, path, GEN_EFORMAT, "no up weight",
                "down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q");

    /* Shapes that do not fit the target weight. */
    snprintf(path, sizeof path, "%s", st_path(f->dir, "shape.safetensors"));
    float *z = calloc(64 * 64, sizeof *z);
    add_spec(lf, "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight",
             "F32", 2, (int64_t[]){4, 25}, z);
    add_spec(lf, "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight",
             "F32", 2, (int64_t[]){24, 4}, calloc(96, sizeof(float)));
    write_file(lf, path);
    expect_fail(ctx, path, GEN_EFORMAT, "does not fit", "[4, 25]");
    snprintf(path, sizeof path, "%s", st_path(f->dir, "rank.safetensors"));
    add_spec(lf, "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight", "F32",
             2, (int64_t[]){4, 32}, calloc(128, sizeof(float)));
    add_spec(lf, "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight", "F32",
             2, (int64_t[]){40, 3}, calloc(120, sizeof(float)));
    write_file(lf, path);
    expect_fail(ctx, path, GEN_EFORMAT, "rank", "lora_B");

    /* A module this model does not have, a key of no known kind, DoRA. */
    snprintf(path, sizeof path, "%s", st_path(f->dir, "unknown.safetensors"));
    add_module(lf, KOHYA, 1, 0, false);
    add_spec(lf, "lora_unet_down_blocks_7_attentions_0_proj_in.lora_down.weight", "F32", 2,
             (int64_t[]){2, 24}, calloc(48, sizeof(float)));
    add_spec(lf, "lora_unet_down_blocks_7_attentions_0_proj_in.lora_up.weight", "F32", 2,
             (int64_t[]){24, 2}, calloc(48, sizeof(float)));
    write_file(lf, path);
    expect_fail(ctx, path, GEN_EFORMAT, "lora_unet_down_blocks_7_attentions_0_proj_in",
                "names no weight");
    snprintf(path, sizeof path, "%s", st_path(f->dir, "odd.safetensors"));
    add_module(lf, PEFT, 1, 2, false);
    add_spec(lf, "model.diffusion_model.foo", "F32", 1, (int64_t[]){4}, calloc(4, sizeof(float)));
    write_file(lf, path);
    expect_fail(ctx, path, GEN_EFORMAT, "model.diffusion_model.foo", "not a LoRA key");
    snprintf(path, sizeof path, "%s", st_path(f->dir, "dora.safetensors"));
    add_module(lf, PEFT, 1, 2, false);
    add_spec(lf, "unet.up_blocks.1.attentions.1.transformer_blocks.0.attn1.to_out.0.lora_magnitude"
                 ".dora_scale",
             "F32", 2, (int64_t[]){1, 24}, calloc(24, sizeof(float)));
    write_file(lf, path);
    expect_fail(ctx, path, GEN_EUNSUPPORTED, "DoRA", "dora_scale");

    /* Not safetensors at all; a pickle (.pt, and pickle bytes under another name). */
    snprintf(path, sizeof path, "%s", st_path(f->dir, "text.safetensors"));
    write_bytes(path, "hello, I am not a LoRA", 22);
    expect_fail(ctx, path, GEN_EFORMAT, NULL, NULL);
    snprintf(path, sizeof path, "%s", st_path(f->dir, "lora.pt"));
    write_bytes(path, "\x80\x02}q\x00.", 6);
    expect_fail(ctx, path, GEN_EUNSUPPORTED, "pickle", NULL);
    snprintf(path, sizeof path, "%s", st_path(f->dir, "pickled.safetensors"));
    write_bytes(path, "\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00}q\x00.", 14);
    expect_fail(ctx, path, GEN_EUNSUPPORTED, "pickle", NULL);
    snprintf(path, sizeof path, "%s", st_path(f->dir, "empty.safetensors"));
    assert_int_equal(st_write(path, NULL, 0, NULL), 0);
    expect_fail(ctx, path, GEN_EFORMAT, "no tensors", NULL);

    /* A good LoRA after a bad one in the same job list: the whole job fails. */
    char two[1200];
    snprintf(two, sizeof two, "%s:1,%s:1", f->kohya, path);
    gen_job *job = make_job(MODEL, two);
    gen_image *img = NULL;
    assert_int_equal(gen_generate(&img, ctx, 0, job, NULL, NULL), GEN_EFORMAT);
    gen_job_destroy(job);

    /* None of it touched the cached model. */
    gen_image *after = generate(ctx, 0, MODEL, NULL);
    size_t count;
    assert_int_equal(pixel_diff(base, after, &count), 0);
    gen_image_destroy(base);
    gen_image_destroy(after);
    free(lf);
    gen_context_destroy(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patched_tensors),
        cmocka_unit_test(test_overlay_rules_and_alloc_failures),
        cmocka_unit_test(test_generate_equals_merged_model),
        cmocka_unit_test(test_two_devices_leave_weights_untouched),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
