/* The gpu suite, pipeline part: the tiny SD1.5 and SD2 (v-prediction)
 * models of tests/fixtures on the CUDA backend against the CPU backend.
 *
 * 1. Stage by stage, for every case of tests/fixtures/pipeline/cases.json and
 *    every dtype the GPU computes in (weights uploaded in that dtype, the CPU in
 *    f32; both sides get the same inputs from the diffusers fixture, rounded to
 *    the dtype): text encoder (clip_skip included), UNet at the case's first
 *    timestep (CFG batch 2 or 1), VAE decode, VAE encode (img2img). Relative
 *    L2 limits: f32 1e-4, f16 1e-2 (DESIGN.md's per-stage figure), bf16 5e-2:
 *    rounding the tiny models' weights to bf16 alone already costs up to
 *    1.3e-2 (the self-test's "bf16w" rows measure it on the CPU; the weights
 *    are exact in f16, so "f16w" shows 0).
 * 2. Whole images through the public API: gen_generate on the CUDA device with
 *    gpu_dtype f16 and bf16 against the same job on a CPU device. Limits on the
 *    mean absolute pixel difference: f32 0.5, f16 3, bf16 6 (of 255); max and
 *    PSNR are printed. These limits are first estimates: the first GPU run's
 *    printed figures should tighten them.
 *
 * One line per check, the format of test_gpu_ops:
 *   RESULT <stage> <dtype> <case> <error> <limit> PASS|FAIL
 * Exits 77 without a CUDA device, 1 if a check failed. Usage:
 *   test_gpu_pipeline [device index]
 *   test_gpu_pipeline --cpu-as-gpu   (a second CPU backend and device cpu:1 in
 *                                     the GPU's place: the harness self-test,
 *                                     plus the cost of f16/bf16 weights alone) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gen/gen.h>

#include "../backend/backend_test_util.h"
#include "../pipeline/cases.h"
#include "backend/backend.h"
#include "backend/cuda_backend.h"
#include "backend/gpu_probe.h"
#include "context/context_internal.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "pipeline/text_encoder.h"
#include "pipeline/unet.h"
#include "pipeline/vae.h"
#include "pipeline/weights.h"
#include "pipeline/weights_model.h"
#include "pipeline/weights_share.h"

#ifndef GEN_FIXTURES_DIR
#error GEN_FIXTURES_DIR must be defined by the build
#endif

static gen__backend *cpu, *gpu;
static bool self_test;
static int device_index;
static int checks, failures;

static void fatal(const char *what)
{
    fprintf(stderr, "FATAL %s: %s\n", what, gen_last_error_message());
    exit(1);
}

static void result(const char *stage, const char *dtype, const char *label, double err,
                   double limit, const char *error_text)
{
    bool pass = !error_text && err < limit; /* NaN fails */
    checks++;
    failures += !pass;
    if (error_text)
        printf("RESULT %-20s %-4s %-40s error %s FAIL\n", stage, dtype, label, error_text);
    else
        printf("RESULT %-20s %-4s %-40s %.3e %.0e %s\n", stage, dtype, label, err, limit,
               pass ? "PASS" : "FAIL");
    fflush(stdout);
}

/* ---- one model's networks on one backend -------------------------------------------- */

typedef struct host_model {
    gen__model *model;
    gen__host_weights *hw[GEN__PART_COUNT];
} host_model;

typedef struct nets {
    gen__backend *be;
    gen__dtype dtype;  /* stored and computed in */
    gen__dtype values; /* what the weights and inputs are rounded to (= dtype on a GPU) */
    char label[8];     /* the dtype column: "f16", or "f16w" for rounded values only */
    gen__device_weights *dw[GEN__PART_COUNT];
    gen__text_encoder *te;
    gen__unet *unet;
    gen__vae *vae;
} nets;

/* The model's host weights, every tensor rounded to `values` (F32: as stored). */
static void host_model_open(host_model *h, const char *name, gen__dtype values)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", GEN_FIXTURES_DIR, name);
    memset(h, 0, sizeof(*h));
    if (gen__model_open(&h->model, path, NULL) != GEN_OK)
        fatal(path);
    for (int p = 0; p < GEN__PART_COUNT; p++) {
        if (gen__host_weights_from_model(&h->hw[p], h->model, (gen__part)p) != GEN_OK)
            fatal(path);
        if (values != GEN__F32 && gen__host_weights_to_dtype(&h->hw[p], h->hw[p], values) != GEN_OK)
            fatal(path);
    }
}

static void host_model_close(host_model *h)
{
    for (int p = 0; p < GEN__PART_COUNT; p++)
        gen__host_weights_destroy(h->hw[p]);
    gen__model_close(h->model);
}

static void nets_close(nets *n)
{
    gen__text_encoder_destroy(n->te);
    gen__unet_destroy(n->unet);
    gen__vae_destroy(n->vae);
    for (int p = 0; p < GEN__PART_COUNT; p++)
        gen__device_weights_release(n->dw[p]);
    memset(n, 0, sizeof(*n));
}

static gen_status nets_open(nets *n, const host_model *h, gen__backend *be, gen__dtype dtype,
                            gen__dtype values)
{
    memset(n, 0, sizeof(*n));
    n->be = be;
    n->dtype = dtype;
    n->values = values;
    snprintf(n->label, sizeof(n->label), "%s%s", gen__dtype_name(values),
             values != dtype ? "w" : "");
    gen_status st = GEN_OK;
    for (int p = 0; st == GEN_OK && p < GEN__PART_COUNT; p++)
        st = gen__device_weights_upload(&n->dw[p], h->hw[p], be, dtype);
    if (st == GEN_OK)
        st = gen__text_encoder_create(&n->te, gen__model_text_config(h->model),
                                      n->dw[GEN__PART_TEXT_ENCODER]);
    if (st == GEN_OK)
        st = gen__unet_create(&n->unet, gen__model_unet_config(h->model), n->dw[GEN__PART_UNET]);
    if (st == GEN_OK)
        st = gen__vae_create(&n->vae, gen__model_vae_config(h->model), n->dw[GEN__PART_VAE], true);
    if (st != GEN_OK)
        nets_close(n);
    return st;
}

/* ---- tensors ------------------------------------------------------------------------ */

/* `data` (f32) as a `dtype` tensor on `be`. */
static gen_status upload_as(gen__tensor *t, gen__backend *be, gen__dtype dtype, const float *data,
                            int ndim, const int64_t *shape)
{
    gen_status st = gen__tensor_alloc(t, be, dtype, ndim, shape);
    if (st != GEN_OK)
        return st;
    size_t n = (size_t)gen__tensor_numel(t);
    void *conv = malloc(gen__tensor_nbytes(t) + 1);
    if (!conv) {
        gen__tensor_free(t);
        return GEN_ENOMEM;
    }
    gen__convert_host(conv, dtype, data, GEN__F32, n);
    st = gen__tensor_upload(t, conv, gen__tensor_nbytes(t));
    free(conv);
    if (st != GEN_OK)
        gen__tensor_free(t);
    return st;
}

/* `data` rounded to `dtype` in place: what the GPU side gets as input, so the
 * CPU reference sees the same values. */
static void round_to(float *data, size_t n, gen__dtype dtype)
{
    void *conv = malloc(n * sizeof(float) + 1);
    gen__convert_host(conv, dtype, data, GEN__F32, n);
    gen__convert_host(data, GEN__F32, conv, dtype, n);
    free(conv);
}

static double stage_limit(gen__dtype dt)
{
    return dt == GEN__F32 ? 1e-4 : dt == GEN__F16 ? 1e-2 : 5e-2;
}

/* Relative L2 error of `g` against `c` (NaN anywhere makes it NaN); -1 with
 * `why` filled when they cannot be compared. */
static double rel_l2(const gen__tensor *g, const gen__tensor *c, char *why, size_t why_size)
{
    if (!gen__tensor_same_shape(g, c)) {
        snprintf(why, why_size, "shapes differ");
        return -1.0;
    }
    size_t n = (size_t)gen__tensor_numel(c);
    float *got = tu_download_f32(g), *ref = tu_download_f32(c);
    double err = -1.0;
    if (!got || !ref) {
        snprintf(why, why_size, "download: %s", gen_last_error_message());
    } else {
        double num = 0.0, den = 0.0;
        for (size_t i = 0; i < n; i++) {
            double d = (double)got[i] - (double)ref[i];
            num += d * d;
            den += (double)ref[i] * (double)ref[i];
        }
        err = sqrt(num / (den > 0 ? den : 1e-30));
    }
    free(got);
    free(ref);
    return err;
}

/* GPU output `g` (or the error that stopped it: st) against CPU output `c`. */
static void compare(const char *stage, const char *label, const nets *n, gen_status st,
                    const gen__tensor *g, const gen__tensor *c)
{
    char why[600] = "";
    double err = INFINITY;
    if (st != GEN_OK)
        snprintf(why, sizeof(why), "%s: %s", gen_status_string(st), gen_last_error_message());
    else
        err = rel_l2(g, c, why, sizeof(why));
    result(stage, n->label, label, err, stage_limit(n->values), why[0] ? why : NULL);
    if (st != GEN_OK && gen__backend_synchronize(gpu) != GEN_OK)
        fatal("the device is unusable after the failure");
}

/* A fixture tensor as f32 (token ids narrowed into `ids` instead). */
typedef struct fx {
    int ndim;
    int64_t shape[GEN__TENSOR_MAX_DIMS];
    size_t numel;
    float *f;
    int32_t *ids;
} fx;

static bool fx_get(gen__st_file *f, const char *name, fx *t)
{
    memset(t, 0, sizeof(*t));
    const gen__st_view *v = gen__st_find(f, name);
    if (!v)
        return false;
    t->ndim = v->ndim;
    memcpy(t->shape, v->shape, sizeof(int64_t) * (size_t)v->ndim);
    t->numel = (size_t)v->numel;
    if (v->dtype == GEN__ST_I64) {
        t->ids = malloc(t->numel * sizeof(int32_t));
        for (size_t k = 0; k < t->numel; k++) {
            int64_t x;
            memcpy(&x, (const char *)v->data + k * 8, 8);
            t->ids[k] = (int32_t)x;
        }
    } else if (v->dtype == GEN__ST_F32) {
        t->f = malloc(t->numel * sizeof(float));
        memcpy(t->f, v->data, t->numel * sizeof(float));
    } else {
        fprintf(stderr, "FATAL fixture tensor %s: unexpected dtype\n", name);
        exit(1);
    }
    return true;
}

static void fx_free(fx *t)
{
    free(t->f);
    free(t->ids);
}

/* ---- stages --------------------------------------------------------------------------- */

typedef struct stage_case {
    const char *name;
    gen__st_file *file;
    int clip_skip;
    float t0;
    bool img2img;
} stage_case;

static void stage_text(const nets *g, const nets *c, const stage_case *k)
{
    const char *which[] = {"ids_cond", "ids_uncond"};
    for (int w = 0; w < 2; w++) {
        fx ids;
        if (!fx_get(k->file, which[w], &ids))
            continue; /* no unconditional pass in this case */
        gen__tensor go = GEN__TENSOR_EMPTY, co = GEN__TENSOR_EMPTY;
        if (gen__text_encoder_forward(c->te, &co, ids.ids, 1, (int)ids.shape[1], k->clip_skip) !=
            GEN_OK)
            fatal("CPU text encoder");
        gen_status st =
            gen__text_encoder_forward(g->te, &go, ids.ids, 1, (int)ids.shape[1], k->clip_skip);
        char label[128];
        snprintf(label, sizeof(label), "%s %s", k->name, w ? "uncond" : "cond");
        compare("text_encoder", label, g, st, &go, &co);
        gen__tensor_free(&go);
        gen__tensor_free(&co);
        fx_free(&ids);
    }
}

/* The UNet's context: [uncond, cond] under CFG (batch 2), else cond. */
static float *context_for(const stage_case *k, int64_t batch, int64_t shape[3])
{
    fx cond, uncond;
    if (!fx_get(k->file, "embeds_cond", &cond))
        fatal("fixture without embeds_cond");
    float *buf = malloc((size_t)batch * cond.numel * sizeof(float));
    memcpy(buf + (batch - 1) * (int64_t)cond.numel, cond.f, cond.numel * sizeof(float));
    if (batch == 2) {
        if (!fx_get(k->file, "embeds_uncond", &uncond))
            fatal("CFG fixture without embeds_uncond");
        memcpy(buf, uncond.f, cond.numel * sizeof(float));
        fx_free(&uncond);
    }
    shape[0] = batch;
    shape[1] = cond.shape[1];
    shape[2] = cond.shape[2];
    fx_free(&cond);
    return buf;
}

static void stage_unet(const nets *g, const nets *c, const stage_case *k)
{
    fx in;
    if (!fx_get(k->file, "unet_in_0", &in))
        fatal("fixture without unet_in_0");
    int64_t ctx_shape[3];
    float *ctx = context_for(k, in.shape[0], ctx_shape);
    size_t ctx_n = (size_t)(ctx_shape[0] * ctx_shape[1] * ctx_shape[2]);
    round_to(in.f, in.numel, g->values);
    round_to(ctx, ctx_n, g->values);
    float t[2] = {k->t0, k->t0};
    gen__tensor cx, cc, co = GEN__TENSOR_EMPTY, gx = GEN__TENSOR_EMPTY, gc = GEN__TENSOR_EMPTY,
                        go = GEN__TENSOR_EMPTY;
    if (upload_as(&cx, c->be, GEN__F32, in.f, in.ndim, in.shape) != GEN_OK ||
        upload_as(&cc, c->be, GEN__F32, ctx, 3, ctx_shape) != GEN_OK ||
        gen__unet_forward(c->unet, &co, &cx, t, &cc) != GEN_OK)
        fatal("CPU UNet");
    gen_status st = upload_as(&gx, g->be, g->dtype, in.f, in.ndim, in.shape);
    if (st == GEN_OK)
        st = upload_as(&gc, g->be, g->dtype, ctx, 3, ctx_shape);
    if (st == GEN_OK)
        st = gen__unet_forward(g->unet, &go, &gx, t, &gc);
    char label[128];
    snprintf(label, sizeof(label), "%s t=%.0f batch %lld", k->name, (double)k->t0,
             (long long)in.shape[0]);
    compare("unet", label, g, st, &go, &co);
    if (self_test && g->values == GEN__F32 && st == GEN_OK) {
        /* Control: the comparison must see a real difference (here the UNet
         * 10 timesteps later), or the zero errors above would prove nothing. */
        gen__tensor later = GEN__TENSOR_EMPTY;
        float t10[2] = {k->t0 - 10, k->t0 - 10};
        char why[600] = "";
        double err = gen__unet_forward(g->unet, &later, &gx, t10, &gc) == GEN_OK
                         ? rel_l2(&later, &co, why, sizeof(why))
                         : -1.0;
        printf("CONTROL unet at t-10 vs t: rel L2 %.3e\n", err);
        result("control_detects", g->label, k->name, err > stage_limit(g->values) ? 0 : 1, 0.5,
               err < 0 ? "cannot compare" : NULL);
        gen__tensor_free(&later);
    }
    gen__tensor *all[] = {&cx, &cc, &co, &gx, &gc, &go};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        gen__tensor_free(all[i]);
    free(ctx);
    fx_free(&in);
}

static void stage_vae(const nets *g, const nets *c, const stage_case *k)
{
    fx lat;
    if (!fx_get(k->file, "latents_final", &lat))
        fatal("fixture without latents_final");
    round_to(lat.f, lat.numel, g->values);
    gen__tensor cz, ci = GEN__TENSOR_EMPTY, gz = GEN__TENSOR_EMPTY, gi = GEN__TENSOR_EMPTY;
    if (upload_as(&cz, c->be, GEN__F32, lat.f, lat.ndim, lat.shape) != GEN_OK ||
        gen__vae_decode(c->vae, &ci, &cz) != GEN_OK)
        fatal("CPU VAE decode");
    gen_status st = upload_as(&gz, g->be, g->dtype, lat.f, lat.ndim, lat.shape);
    if (st == GEN_OK)
        st = gen__vae_decode(g->vae, &gi, &gz);
    compare("vae_decode", k->name, g, st, &gi, &ci);
    gen__tensor *all[] = {&cz, &ci, &gz, &gi};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        gen__tensor_free(all[i]);
    fx_free(&lat);

    fx img;
    if (!k->img2img || !fx_get(k->file, "init_image", &img))
        return;
    round_to(img.f, img.numel, g->values);
    gen__tensor cx, cm = GEN__TENSOR_EMPTY, cs = GEN__TENSOR_EMPTY, gx = GEN__TENSOR_EMPTY,
                    gm = GEN__TENSOR_EMPTY, gs = GEN__TENSOR_EMPTY;
    if (upload_as(&cx, c->be, GEN__F32, img.f, img.ndim, img.shape) != GEN_OK ||
        gen__vae_encode(c->vae, &cm, &cs, &cx) != GEN_OK)
        fatal("CPU VAE encode");
    st = upload_as(&gx, g->be, g->dtype, img.f, img.ndim, img.shape);
    if (st == GEN_OK)
        st = gen__vae_encode(g->vae, &gm, &gs, &gx);
    compare("vae_encode_mean", k->name, g, st, &gm, &cm);
    compare("vae_encode_std", k->name, g, st, &gs, &cs);
    gen__tensor *enc[] = {&cx, &cm, &cs, &gx, &gm, &gs};
    for (size_t i = 0; i < sizeof(enc) / sizeof(enc[0]); i++)
        gen__tensor_free(enc[i]);
    fx_free(&img);
}

/* Every case's stages with the GPU side computing in `dt` on weights and
 * inputs rounded to `values` (= dt, except in the self-test's emulation). */
static void run_stages(json_t *cases, gen__dtype dt, gen__dtype values)
{
    static const char *const models[] = {"tiny-sd15", "tiny-sd2v"};
    for (size_t m = 0; m < 2; m++) {
        host_model h, hr;
        host_model_open(&h, models[m], GEN__F32);
        if (values != GEN__F32)
            host_model_open(&hr, models[m], values);
        nets c, g;
        if (nets_open(&c, &h, cpu, GEN__F32, GEN__F32) != GEN_OK)
            fatal("CPU networks");
        gen_status st = nets_open(&g, values != GEN__F32 ? &hr : &h, gpu, dt, values);
        if (st != GEN_OK) {
            char text[600];
            snprintf(text, sizeof(text), "%s: %s", gen_status_string(st), gen_last_error_message());
            result("load", gen__dtype_name(dt), models[m], INFINITY, 0, text);
            nets_close(&c);
            host_model_close(&h);
            if (values != GEN__F32)
                host_model_close(&hr);
            continue;
        }
        size_t i;
        json_t *cj;
        json_array_foreach(json_object_get(cases, "cases"), i, cj)
        {
            if (strcmp(json_string_value(json_object_get(cj, "model")), models[m]) != 0)
                continue;
            stage_case k = {json_string_value(json_object_get(cj, "name")), NULL, 0,
                            case_first_timestep(cj), json_object_get(cj, "strength") != NULL};
            if (json_object_get(cj, "clip_skip"))
                k.clip_skip = (int)json_integer_value(json_object_get(cj, "clip_skip"));
            char path[512];
            snprintf(path, sizeof(path), "%s/pipeline/%s.safetensors", GEN_FIXTURES_DIR, k.name);
            if (gen__st_open(&k.file, path) != GEN_OK)
                fatal(path);
            stage_text(&g, &c, &k);
            stage_unet(&g, &c, &k);
            stage_vae(&g, &c, &k);
            gen__st_close(k.file);
        }
        nets_close(&g);
        nets_close(&c);
        host_model_close(&h);
        if (values != GEN__F32)
            host_model_close(&hr);
    }
}

/* ---- whole images through the public API ------------------------------------------------ */

static gen_context *make_context(const char *devices, const char *gpu_dtype)
{
    gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
    o.log_level = GEN_LOG_ERROR;
    gen_context *ctx = NULL;
    if (gen_context_options_set(&o, "generation_devices", devices) != GEN_OK ||
        gen_context_options_set(&o, "gpu_dtype", gpu_dtype) != GEN_OK ||
        gen_context_create(&ctx, &o) != GEN_OK)
        fatal(devices);
    return ctx;
}

static void run_images(json_t *cases, const char *gpu_dtype)
{
    char devices[32];
    if (self_test)
        snprintf(devices, sizeof(devices), "cpu:1");
    else
        snprintf(devices, sizeof(devices), "cuda:%d", device_index);
    gen_context *gctx = make_context(devices, gpu_dtype), *cctx = make_context("cpu:0", "auto");
    const char *dname = self_test ? "f32" : gpu_dtype;
    double limit = self_test ? 0.5 : strcmp(gpu_dtype, "f16") == 0 ? 3.0 : 6.0;
    size_t i;
    json_t *cj;
    json_array_foreach(json_object_get(cases, "cases"), i, cj)
    {
        const char *name = json_string_value(json_object_get(cj, "name"));
        gen_job *job = case_job(cj);
        if (!job)
            fatal(name);
        gen_image *ci = NULL, *gi = NULL;
        if (gen_generate(&ci, cctx, 0, job, NULL, NULL) != GEN_OK)
            fatal("CPU image");
        gen_status st = gen_generate(&gi, gctx, 0, job, NULL, NULL);
        char label[160], text[600];
        if (st == GEN_OK && (gen_image_width(gi) != gen_image_width(ci) ||
                             gen_image_height(gi) != gen_image_height(ci))) {
            snprintf(text, sizeof(text), "image is %dx%d, the CPU's %dx%d", gen_image_width(gi),
                     gen_image_height(gi), gen_image_width(ci), gen_image_height(ci));
            result("image_mean_abs", dname, name, INFINITY, limit, text);
        } else if (st != GEN_OK) {
            snprintf(text, sizeof(text), "%s: %s", gen_status_string(st), gen_last_error_message());
            result("image_mean_abs", dname, name, INFINITY, limit, text);
        } else {
            size_t n = (size_t)gen_image_width(ci) * (size_t)gen_image_height(ci) * 3;
            const uint8_t *a = gen_image_pixels(gi), *b = gen_image_pixels(ci);
            double sum = 0.0, sq = 0.0;
            int worst = 0;
            for (size_t p = 0; p < n; p++) {
                int d = abs((int)a[p] - (int)b[p]);
                sum += d;
                sq += (double)d * d;
                worst = d > worst ? d : worst;
            }
            double psnr = sq > 0 ? 10.0 * log10(255.0 * 255.0 / (sq / (double)n)) : INFINITY;
            snprintf(label, sizeof(label), "%s (max %d, PSNR %.1f dB)", name, worst, psnr);
            result("image_mean_abs", dname, label, sum / (double)n, limit, NULL);
        }
        gen_image_destroy(gi);
        gen_image_destroy(ci);
        gen_job_destroy(job);
    }
    /* the device really ran in the dtype asked for (gpu_dtype reached the engine) */
    gen__model *model = NULL;
    char path[512];
    snprintf(path, sizeof(path), "%s/tiny-sd15", GEN_FIXTURES_DIR);
    if (gen__model_open(&model, path, NULL) != GEN_OK)
        fatal(path);
    gen__dtype want = self_test ? GEN__F32 : strcmp(gpu_dtype, "f16") == 0 ? GEN__F16 : GEN__BF16;
    gen__dtype got = gen__engine_weight_dtype(gctx->engine, 0, model);
    char text[160];
    snprintf(text, sizeof(text), "engine stores in %s, %s wanted", gen__dtype_name(got),
             gen__dtype_name(want));
    result("storage_dtype", dname, "gen__engine_weight_dtype", 0, 1, got == want ? NULL : text);
    gen__model_close(model);
    gen_context_destroy(cctx);
    gen_context_destroy(gctx);
}

int main(int argc, char **argv)
{
    self_test = argc > 1 && strcmp(argv[1], "--cpu-as-gpu") == 0;
    device_index = argc > 1 && !self_test ? atoi(argv[1]) : 0;
    const char *why = NULL;
    if (!self_test && gen__gpu_count(&why) == 0) {
        printf("SKIP no CUDA device: %s\n", why ? why : "none");
        return 77;
    }
    json_t *cases = cases_load();
    if (!cases)
        fatal("cases.json");
    gen__cpu_backend_options co = {0, 0, 0};
    if (gen__cpu_backend_create(&cpu, &co) != GEN_OK)
        fatal("CPU backend");
    if (self_test) {
        gen__cpu_backend_options co1 = {1, 0, 0};
        if (gen__cpu_backend_create(&gpu, &co1) != GEN_OK)
            fatal("second CPU backend");
    } else {
        gen__cuda_backend_options o = {.index = device_index};
        if (gen__cuda_backend_create(&gpu, &o) != GEN_OK)
            fatal("CUDA backend");
    }
    for (int d = 0; d < GEN__DTYPE_COUNT; d++) {
        gen__dtype dt = (gen__dtype)d;
        if (!(gpu->compute_dtypes & (1u << d))) {
            printf("SKIP dtype %s (not computed by this device)\n", gen__dtype_name(dt));
            continue;
        }
        run_stages(cases, dt, dt);
    }
    if (self_test) {
        /* What rounding the weights and inputs to f16 / bf16 alone costs, on
         * the CPU: the share of the GPU limits that storage takes, the rest
         * being the GPU's own rounding of intermediate results. */
        run_stages(cases, GEN__F32, GEN__F16);
        run_stages(cases, GEN__F32, GEN__BF16);
    }
    /* The engine makes its own backends: these are done. */
    bool bf16 = !self_test && (gpu->compute_dtypes & (1u << GEN__BF16));
    gen__backend_destroy(gpu);
    gen__backend_destroy(cpu);
    run_images(cases, "f16");
    if (bf16)
        run_images(cases, "bf16");
    json_decref(cases);
    printf("SUMMARY %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
