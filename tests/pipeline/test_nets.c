/* The networks against diffusers/transformers, per stage, for every case of
 * tests/fixtures/pipeline/cases.json (relative L2 error < 1e-4 in f32):
 * text encoder (token ids -> embeddings, clip_skip), UNet at step 0 (the
 * fixture's scaled UNet input, t = the first timestep the pipeline ran, CFG
 * batches of 2), VAE decode (final latents -> image) and VAE encode (img2img:
 * init image -> mean/std, sampled with the fixture's noise). The tiny model is
 * also loaded from the LDM single file and from the fp16 variant and must give
 * the same outputs; bad configs and inputs give errors naming the problem. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <gen/gen.h>

#include "backend/backend.h"
#include "core/alloc.h"
#include "model/model.h"
#include "backend/cpu/cpu_internal.h"
#include "model/safetensors.h"
#include "pipeline/text_encoder.h"
#include "pipeline/unet.h"
#include "pipeline/vae.h"
#include "pipeline/weights.h"
#include "pipeline/weights_model.h"

#define TOL 1e-4
#define FIX GEN_FIXTURES_DIR

static gen__backend *be;

/* ---- a model's three networks on the CPU ----------------------------------------- */

typedef struct nets {
    gen__model *model;
    gen__host_weights *hw[GEN__PART_COUNT];
    gen__device_weights *dw[GEN__PART_COUNT];
    gen__text_encoder *te;
    gen__unet *unet;
    gen__vae *vae;
} nets;

static void nets_close(nets *n)
{
    gen__text_encoder_destroy(n->te);
    gen__unet_destroy(n->unet);
    gen__vae_destroy(n->vae);
    for (int p = 0; p < GEN__PART_COUNT; p++) {
        gen__device_weights_release(n->dw[p]);
        gen__host_weights_destroy(n->hw[p]);
    }
    gen__model_close(n->model);
    memset(n, 0, sizeof *n);
}

static void nets_open(nets *n, const char *path, const char *variant, const char *config_dir)
{
    memset(n, 0, sizeof *n);
    gen__model_open_options o = GEN__MODEL_OPEN_OPTIONS_INIT;
    o.variant = variant;
    o.config_dir = config_dir;
    if (gen__model_open(&n->model, path, &o) != GEN_OK)
        fail_msg("open %s: %s", path, gen_last_error_message());
    for (int p = 0; p < GEN__PART_COUNT; p++) {
        if (gen__host_weights_from_model(&n->hw[p], n->model, (gen__part)p) != GEN_OK ||
            gen__device_weights_upload(&n->dw[p], n->hw[p], be, GEN__F32) != GEN_OK)
            fail_msg("weights of %s: %s", path, gen_last_error_message());
    }
    if (gen__text_encoder_create(&n->te, gen__model_text_config(n->model),
                                 n->dw[GEN__PART_TEXT_ENCODER]) != GEN_OK ||
        gen__unet_create(&n->unet, gen__model_unet_config(n->model), n->dw[GEN__PART_UNET]) !=
            GEN_OK ||
        gen__vae_create(&n->vae, gen__model_vae_config(n->model), n->dw[GEN__PART_VAE], true) !=
            GEN_OK)
        fail_msg("networks of %s: %s", path, gen_last_error_message());
}

static uint64_t weights_bytes(const nets *n)
{
    uint64_t b = 0;
    for (int p = 0; p < GEN__PART_COUNT; p++)
        b += gen__device_weights_bytes(n->dw[p]);
    return b;
}

/* ---- fixture tensors --------------------------------------------------------------- */

typedef struct fx_tensor {
    int ndim;
    int64_t shape[GEN__TENSOR_MAX_DIMS];
    size_t numel;
    float *f;   /* float tensors */
    int32_t *i; /* int64 token ids, narrowed */
} fx_tensor;

static bool fx_get(gen__st_file *f, const char *name, fx_tensor *t)
{
    memset(t, 0, sizeof *t);
    const gen__st_view *v = gen__st_find(f, name);
    if (!v)
        return false;
    assert_true(v->ndim <= GEN__TENSOR_MAX_DIMS);
    t->ndim = v->ndim;
    for (int d = 0; d < v->ndim; d++)
        t->shape[d] = v->shape[d];
    t->numel = (size_t)v->numel;
    if (v->dtype == GEN__ST_F32) {
        t->f = malloc(t->numel * sizeof *t->f);
        memcpy(t->f, v->data, t->numel * sizeof *t->f);
    } else if (v->dtype == GEN__ST_I64) {
        t->i = malloc(t->numel * sizeof *t->i);
        for (size_t k = 0; k < t->numel; k++) {
            int64_t x;
            memcpy(&x, (const char *)v->data + k * 8, 8);
            t->i[k] = (int32_t)x;
        }
    } else {
        fail_msg("fixture tensor %s has an unexpected dtype", name);
    }
    return true;
}

static void fx_free(fx_tensor *t)
{
    free(t->f);
    free(t->i);
    memset(t, 0, sizeof *t);
}

static gen__tensor upload(const float *data, int ndim, const int64_t *shape)
{
    gen__tensor t;
    assert_int_equal(gen__tensor_alloc(&t, be, GEN__F32, ndim, shape), GEN_OK);
    assert_int_equal(gen__tensor_upload(&t, data, gen__tensor_nbytes(&t)), GEN_OK);
    return t;
}

static float *download(const gen__tensor *t)
{
    size_t n = (size_t)gen__tensor_numel(t);
    float *h = malloc(n * sizeof *h);
    assert_int_equal(gen__tensor_download(t, h, n * sizeof *h), GEN_OK);
    return h;
}

static double rel_l2(const float *x, const float *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)x[i] - (double)ref[i];
        num += d * d;
        den += (double)ref[i] * (double)ref[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Compare a device tensor with a fixture tensor (shape and values). */
static double check(const char *what, const char *case_name, const gen__tensor *t,
                    const fx_tensor *ref, double tol)
{
    assert_int_equal(t->ndim, ref->ndim);
    for (int d = 0; d < t->ndim; d++)
        assert_int_equal(t->shape[d], ref->shape[d]);
    float *h = download(t);
    double e = rel_l2(h, ref->f, ref->numel);
    free(h);
    printf("  %-24s %-16s rel L2 %.3e\n", case_name, what, e);
    if (!(e < tol))
        fail_msg("%s %s: relative L2 error %.3e >= %.1e", case_name, what, e, tol);
    return e;
}

static double compare_tensors(const gen__tensor *a, const gen__tensor *b)
{
    assert_true(gen__tensor_same_shape(a, b));
    float *x = download(a), *y = download(b);
    double e = rel_l2(x, y, (size_t)gen__tensor_numel(a));
    free(x);
    free(y);
    return e;
}

static gen__tensor filled_tensor(int ndim, const int64_t *shape)
{
    gen__tensor t;
    assert_int_equal(gen__tensor_alloc(&t, be, GEN__F32, ndim, shape), GEN_OK);
    assert_int_equal(gen__fill(&t, 0.25f), GEN_OK);
    return t;
}

/* ---- cases.json ------------------------------------------------------------------- */

typedef struct fx_case {
    char name[64], model[32];
    int clip_skip;
    float t0; /* the timestep of the first UNet call */
    bool img2img;
    bool ddim; /* DDIM's scale_model_input is the identity */
} fx_case;

/* Python's json writes -Infinity (DPM's lambda_min_clipped), which is not JSON:
 * blank it out (no case field read here uses it). */
static char *read_json_text(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        fail_msg("cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *text = calloc(1, (size_t)size + 1);
    assert_int_equal(fread(text, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    for (char *p = text; (p = strstr(p, "Infinity")) != NULL;) {
        if (p > text && p[-1] == '-')
            p[-1] = ' ';
        memcpy(p, "0       ", 8);
    }
    return text;
}

static int load_cases(fx_case *cases, int max)
{
    json_error_t err;
    char *text = read_json_text(FIX "/pipeline/cases.json");
    json_t *root = json_loads(text, 0, &err);
    free(text);
    if (!root)
        fail_msg("cases.json: %s", err.text);
    json_t *arr = json_object_get(root, "cases");
    int n = 0;
    for (size_t i = 0; i < json_array_size(arr) && n < max; i++) {
        json_t *c = json_array_get(arr, i);
        fx_case *k = &cases[n++];
        memset(k, 0, sizeof *k);
        snprintf(k->name, sizeof k->name, "%s", json_string_value(json_object_get(c, "name")));
        snprintf(k->model, sizeof k->model, "%s", json_string_value(json_object_get(c, "model")));
        json_t *cs = json_object_get(c, "clip_skip");
        k->clip_skip = cs ? (int)json_integer_value(cs) : 0;
        k->img2img = json_object_get(c, "strength") != NULL;
        k->ddim =
            strcmp(json_string_value(json_object_get(c, "scheduler_class")), "DDIMScheduler") == 0;
        /* img2img starts part-way: the UNet runs the last unet_calls timesteps */
        json_t *ts = json_object_get(c, "timesteps");
        size_t steps = json_array_size(ts);
        size_t calls = (size_t)json_integer_value(json_object_get(c, "unet_calls"));
        assert_true(calls >= 1 && calls <= steps);
        k->t0 = (float)json_number_value(json_array_get(ts, steps - calls));
    }
    json_decref(root);
    assert_true(n >= 7);
    return n;
}

static fx_case cases[16];
static int n_cases;
static nets sd15, sd2v;

static nets *nets_for(const fx_case *c)
{
    if (strcmp(c->model, "tiny-sd15") == 0)
        return &sd15;
    if (strcmp(c->model, "tiny-sd2v") == 0)
        return &sd2v;
    fail_msg("unknown model %s", c->model);
    return NULL;
}

static gen__st_file *open_case(const fx_case *c)
{
    char path[512];
    snprintf(path, sizeof path, "%s/pipeline/%s.safetensors", FIX, c->name);
    gen__st_file *f = NULL;
    if (gen__st_open(&f, path) != GEN_OK)
        fail_msg("%s", gen_last_error_message());
    return f;
}

static int setup(void **state)
{
    (void)state;
    gen__cpu_backend_options o = {0, 0, 0};
    if (gen__cpu_backend_create(&be, &o) != GEN_OK)
        return -1;
    n_cases = load_cases(cases, 16);
    nets_open(&sd15, FIX "/tiny-sd15", NULL, NULL);
    nets_open(&sd2v, FIX "/tiny-sd2v", NULL, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nets_close(&sd15);
    nets_close(&sd2v);
    gen__backend_destroy(be);
    return 0;
}

/* Device memory in use. Besides the weights the CPU backend keeps per-thread
 * scratch that grows to the largest op seen, so a leak check runs a stage twice
 * and compares the second pass with the first. */
static uint64_t mem_in_use(void)
{
    gen__backend_mem_info mi;
    gen__backend_memory(be, &mi);
    return mi.bytes_in_use;
}

static uint64_t mark;
static void pass_done(int pass)
{
    if (pass == 0)
        mark = mem_in_use();
    else
        assert_int_equal(mem_in_use(), mark);
    assert_true(mem_in_use() >= weights_bytes(&sd15) + weights_bytes(&sd2v));
}

/* ---- per-stage tests --------------------------------------------------------------- */

static void run_text(const nets *n, const fx_case *c, gen__st_file *f, const char *ids_name,
                     const char *emb_name, double tol)
{
    fx_tensor ids, ref;
    if (!fx_get(f, ids_name, &ids))
        return; /* no unconditional pass in this case */
    assert_true(fx_get(f, emb_name, &ref));
    gen__tensor out;
    assert_int_equal(
        gen__text_encoder_forward(n->te, &out, ids.i, 1, (int)ids.shape[1], c->clip_skip), GEN_OK);
    check(emb_name, c->name, &out, &ref, tol);
    gen__tensor_free(&out);
    fx_free(&ids);
    fx_free(&ref);
}

static void test_text_encoder(void **state)
{
    (void)state;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n_cases; i++) {
            gen__st_file *f = open_case(&cases[i]);
            run_text(nets_for(&cases[i]), &cases[i], f, "ids_cond", "embeds_cond", TOL);
            run_text(nets_for(&cases[i]), &cases[i], f, "ids_uncond", "embeds_uncond", TOL);
            gen__st_close(f);
        }
        pass_done(pass);
    }
}

/* The UNet's context for the fixture's batch: [uncond, cond] under CFG, else cond. */
static gen__tensor context_for(gen__st_file *f, int64_t batch)
{
    fx_tensor cond, uncond;
    assert_true(fx_get(f, "embeds_cond", &cond));
    size_t per = cond.numel;
    float *buf = malloc((size_t)batch * per * sizeof *buf);
    if (batch == 2) {
        assert_true(fx_get(f, "embeds_uncond", &uncond));
        memcpy(buf, uncond.f, per * sizeof *buf);
        memcpy(buf + per, cond.f, per * sizeof *buf);
        fx_free(&uncond);
    } else {
        assert_int_equal(batch, 1);
        memcpy(buf, cond.f, per * sizeof *buf);
    }
    gen__tensor t = upload(buf, 3, (int64_t[]){batch, cond.shape[1], cond.shape[2]});
    free(buf);
    fx_free(&cond);
    return t;
}

static double run_unet(const nets *n, const fx_case *c, gen__st_file *f, double tol,
                       gen__tensor *keep)
{
    fx_tensor in, ref;
    assert_true(fx_get(f, "unet_in_0", &in));
    assert_true(fx_get(f, "unet_out_0", &ref));
    if (c->ddim) {
        /* the UNet input is the initial latents, once per CFG half */
        fx_tensor init;
        assert_true(fx_get(f, "latents_init", &init));
        for (int64_t b = 0; b < in.shape[0]; b++)
            assert_memory_equal(in.f + (size_t)b * init.numel, init.f, init.numel * sizeof(float));
        fx_free(&init);
    }
    gen__tensor x = upload(in.f, in.ndim, in.shape);
    gen__tensor ctx = context_for(f, in.shape[0]);
    float t[2] = {c->t0, c->t0};
    gen__tensor out;
    assert_int_equal(gen__unet_forward(n->unet, &out, &x, t, &ctx), GEN_OK);
    double e = check("unet_out_0", c->name, &out, &ref, tol);
    if (keep)
        *keep = out;
    else
        gen__tensor_free(&out);
    gen__tensor_free(&x);
    gen__tensor_free(&ctx);
    fx_free(&in);
    fx_free(&ref);
    return e;
}

static void test_unet_step0(void **state)
{
    (void)state;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n_cases; i++) {
            gen__st_file *f = open_case(&cases[i]);
            run_unet(nets_for(&cases[i]), &cases[i], f, TOL, NULL);
            gen__st_close(f);
        }
        pass_done(pass);
    }
}

static void run_decode(const nets *n, const fx_case *c, gen__st_file *f, double tol,
                       gen__tensor *keep)
{
    fx_tensor lat, ref;
    assert_true(fx_get(f, "latents_final", &lat));
    assert_true(fx_get(f, "decoded", &ref));
    gen__tensor z = upload(lat.f, lat.ndim, lat.shape), img;
    assert_int_equal(gen__vae_decode(n->vae, &img, &z), GEN_OK);
    check("decoded", c->name, &img, &ref, tol);
    if (keep)
        *keep = img;
    else
        gen__tensor_free(&img);
    gen__tensor_free(&z);
    fx_free(&lat);
    fx_free(&ref);
}

static void test_vae_decode(void **state)
{
    (void)state;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n_cases; i++) {
            gen__st_file *f = open_case(&cases[i]);
            run_decode(nets_for(&cases[i]), &cases[i], f, TOL, NULL);
            gen__st_close(f);
        }
        pass_done(pass);
    }
}

/* Latents stored in f16 (an f16 UNet) into the f32 VAE: converted, and close
 * to the f32 result (only the latents' f16 rounding differs). */
static void test_vae_decode_f16_latents(void **state)
{
    (void)state;
    gen__st_file *f = open_case(&cases[0]);
    fx_tensor lat, ref;
    assert_true(fx_get(f, "latents_final", &lat));
    assert_true(fx_get(f, "decoded", &ref));
    uint16_t *h = malloc(lat.numel * sizeof *h);
    for (size_t i = 0; i < lat.numel; i++)
        h[i] = gen__f32_to_f16(lat.f[i]);
    gen__tensor z16, img;
    assert_int_equal(gen__tensor_alloc(&z16, be, GEN__F16, lat.ndim, lat.shape), GEN_OK);
    assert_int_equal(gen__tensor_upload(&z16, h, lat.numel * sizeof *h), GEN_OK);
    assert_int_equal(gen__vae_decode(sd15.vae, &img, &z16), GEN_OK);
    assert_int_equal(img.dtype, GEN__F32);
    check("decoded (f16 in)", cases[0].name, &img, &ref, 1e-2);
    gen__tensor_free(&img);
    gen__tensor_free(&z16);
    free(h);
    fx_free(&lat);
    fx_free(&ref);
    gen__st_close(f);
}

/* img2img: init_latents = (mean + std * eps) * scaling_factor, where eps is the
 * generator's first draw: torch.randn((1,4,8,8)) with the case's seed (42). */
static void test_vae_encode(void **state)
{
    (void)state;
    gen__st_file *rf = NULL;
    assert_int_equal(gen__st_open(&rf, FIX "/randn/randn.safetensors"), GEN_OK);
    fx_tensor eps;
    assert_true(fx_get(rf, "seed42_1x4x8x8", &eps));
    int done = 0;
    for (int i = 0; i < n_cases; i++) {
        if (!cases[i].img2img)
            continue;
        gen__st_file *f = open_case(&cases[i]);
        fx_tensor img, ref;
        assert_true(fx_get(f, "init_image", &img));
        assert_true(fx_get(f, "init_latents", &ref));
        gen__tensor x = upload(img.f, img.ndim, img.shape), mean, sd, sample;
        const nets *n = nets_for(&cases[i]);
        assert_int_equal(gen__vae_encode(n->vae, &mean, &sd, &x), GEN_OK);
        assert_int_equal(gen__tensor_numel(&mean), (int64_t)eps.numel);
        gen__tensor e = upload(eps.f, 4, mean.shape);
        assert_int_equal(gen__tensor_alloc_like(&sample, be, &mean), GEN_OK);
        assert_int_equal(gen__mul(&sample, &sd, &e), GEN_OK);
        assert_int_equal(gen__add(&sample, &sample, &mean), GEN_OK);
        assert_int_equal(gen__scale(&sample, &sample, (float)gen__vae_scaling_factor(n->vae)),
                         GEN_OK);
        check("init_latents", cases[i].name, &sample, &ref, TOL);
        gen__tensor *all[] = {&x, &mean, &sd, &sample, &e};
        for (size_t k = 0; k < sizeof all / sizeof *all; k++)
            gen__tensor_free(all[k]);
        fx_free(&img);
        fx_free(&ref);
        gen__st_close(f);
        done++;
    }
    assert_true(done >= 1);
    fx_free(&eps);
    gen__st_close(rf);
}

/* Non-square latents and images (8x12 / 64x96), another timestep: catches a
 * swapped H/W anywhere in the layout switches (tools/make_nets_fixtures.py). */
static void test_non_square(void **state)
{
    (void)state;
    gen__st_file *f = NULL;
    assert_int_equal(gen__st_open(&f, FIX "/nets/nonsquare.safetensors"), GEN_OK);
    const char *models[2] = {"tiny-sd15", "tiny-sd2v"};
    nets *all[2] = {&sd15, &sd2v};
    for (int k = 0; k < 2; k++) {
        char name[64];
        fx_tensor x, ctx, t, ref, z, img, mean, sd;
#define FX(var, key)                                                                               \
    snprintf(name, sizeof name, "%s.%s", models[k], key);                                          \
    assert_true(fx_get(f, name, &var))
        FX(x, "unet_x");
        FX(ctx, "unet_ctx");
        FX(t, "unet_t");
        FX(ref, "unet_out");
        gen__tensor dx = upload(x.f, x.ndim, x.shape), dc = upload(ctx.f, ctx.ndim, ctx.shape), out;
        float ts[2] = {t.f[0], t.f[0]};
        assert_int_equal(gen__unet_forward(all[k]->unet, &out, &dx, ts, &dc), GEN_OK);
        check("unet 8x12", models[k], &out, &ref, TOL);
        gen__tensor_free(&out);
        gen__tensor_free(&dx);
        gen__tensor_free(&dc);
        fx_free(&ref);
        /* odd latent 9x7: the up path resizes to each skip's size */
        fx_tensor xo;
        FX(xo, "odd_x");
        FX(ref, "odd_out");
        dx = upload(xo.f, xo.ndim, xo.shape);
        dc = upload(ctx.f, ctx.ndim, ctx.shape);
        assert_int_equal(gen__unet_forward(all[k]->unet, &out, &dx, ts, &dc), GEN_OK);
        check("unet 9x7", models[k], &out, &ref, TOL);
        gen__tensor_free(&out);
        gen__tensor_free(&dx);
        gen__tensor_free(&dc);
        fx_free(&ref);
        fx_free(&xo);
        FX(z, "vae_z");
        FX(ref, "vae_decoded");
        gen__tensor dz = upload(z.f, z.ndim, z.shape);
        assert_int_equal(gen__vae_decode(all[k]->vae, &out, &dz), GEN_OK);
        check("decode 8x12", models[k], &out, &ref, TOL);
        gen__tensor_free(&out);
        gen__tensor_free(&dz);
        FX(img, "vae_image");
        FX(mean, "vae_mean");
        FX(sd, "vae_std");
        gen__tensor di = upload(img.f, img.ndim, img.shape), dm, ds;
        assert_int_equal(gen__vae_encode(all[k]->vae, &dm, &ds, &di), GEN_OK);
        check("encode mean 64x96", models[k], &dm, &mean, TOL);
        check("encode std 64x96", models[k], &ds, &sd, TOL);
#undef FX
        gen__tensor *dev[] = {&di, &dm, &ds};
        for (size_t i = 0; i < 3; i++)
            gen__tensor_free(dev[i]);
        fx_tensor *host[] = {&x, &ctx, &t, &ref, &z, &img, &mean, &sd};
        for (size_t i = 0; i < 8; i++)
            fx_free(host[i]);
    }
    gen__st_close(f);
}

/* ---- other ways to load the same model ----------------------------------------------- */

/* The first case of `model` through a second copy of the model: same outputs as
 * the diffusers folder in f32 (identical numbers: the weights are f16-representable). */
static void same_as_folder(nets *other, const char *model, const char *label)
{
    const fx_case *c = NULL;
    for (int i = 0; i < n_cases && !c; i++)
        if (strcmp(cases[i].model, model) == 0)
            c = &cases[i];
    assert_non_null(c);
    nets *folder = nets_for(c);
    gen__st_file *f = open_case(c);
    gen__tensor a, b;
    run_unet(folder, c, f, TOL, &a);
    run_unet(other, c, f, TOL, &b);
    double e = compare_tensors(&a, &b);
    printf("  %-24s unet vs folder   rel L2 %.3e\n", label, e);
    assert_true(e < 1e-6);
    gen__tensor_free(&a);
    gen__tensor_free(&b);
    run_decode(folder, c, f, TOL, &a);
    run_decode(other, c, f, TOL, &b);
    e = compare_tensors(&a, &b);
    printf("  %-24s vae vs folder    rel L2 %.3e\n", label, e);
    assert_true(e < 1e-6);
    gen__tensor_free(&a);
    gen__tensor_free(&b);
    run_text(other, c, f, "ids_cond", "embeds_cond", TOL);
    run_text(other, c, f, "ids_uncond", "embeds_uncond", TOL);
    gen__st_close(f);
}

static void test_single_file(void **state)
{
    (void)state;
    nets single;
    nets_open(&single, FIX "/tiny-sd15.safetensors", NULL, FIX "/tiny-sd15");
    assert_int_equal(gen__model_layout(single.model), GEN__LAYOUT_SINGLE_FILE);
    /* the file stores f16; the device copy is f32 */
    assert_int_equal(gen__device_weights_bytes(single.dw[GEN__PART_UNET]),
                     gen__device_weights_bytes(sd15.dw[GEN__PART_UNET]));
    same_as_folder(&single, "tiny-sd15", "single file");
    nets_close(&single);
}

/* SD2 single file in OpenCLIP naming (fused in_proj split by the model layer). */
static void test_single_file_sd2(void **state)
{
    (void)state;
    nets single;
    nets_open(&single, GEN_MODEL_FIXTURES_DIR "/tiny-sd2v.safetensors", NULL, FIX "/tiny-sd2v");
    same_as_folder(&single, "tiny-sd2v", "sd2 single file");
    nets_close(&single);
}

static void test_fp16_variant(void **state)
{
    (void)state;
    nets half;
    nets_open(&half, FIX "/tiny-sd15", "fp16", NULL);
    assert_true(gen__host_weights_at(half.hw[GEN__PART_UNET], 0)->dtype == GEN__F16);
    same_as_folder(&half, "tiny-sd15", "fp16 variant");
    nets_close(&half);
}

/* ---- errors -------------------------------------------------------------------------- */

static void test_bad_config(void **state)
{
    (void)state;
    gen__unet_config uc = *gen__model_unet_config(sd15.model);
    uc.cross_attention_dim = 33;
    gen__unet *u = (gen__unet *)1;
    assert_int_equal(gen__unet_create(&u, &uc, sd15.dw[GEN__PART_UNET]), GEN_EINVAL);
    assert_null(u);
    assert_non_null(strstr(gen_last_error_message(),
                           "'down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight' "
                           "is f32[24,32], expected [24,33]"));
    uc = *gen__model_unet_config(sd15.model);
    uc.layers_per_block = 3;
    assert_int_equal(gen__unet_create(&u, &uc, sd15.dw[GEN__PART_UNET]), GEN_ENOTFOUND);
    assert_non_null(
        strstr(gen_last_error_message(), "'down_blocks.0.resnets.2.norm1.weight' is missing"));

    gen__text_config tc = *gen__model_text_config(sd15.model);
    tc.num_hidden_layers = 4;
    gen__text_encoder *te = (gen__text_encoder *)1;
    assert_int_equal(gen__text_encoder_create(&te, &tc, sd15.dw[GEN__PART_TEXT_ENCODER]),
                     GEN_ENOTFOUND);
    assert_null(te);
    assert_non_null(strstr(gen_last_error_message(),
                           "'text_model.encoder.layers.3.layer_norm1.weight' is missing"));

    gen__vae_config vc = *gen__model_vae_config(sd15.model);
    vc.latent_channels = 8;
    gen__vae *v = (gen__vae *)1;
    assert_int_equal(gen__vae_create(&v, &vc, sd15.dw[GEN__PART_VAE], false), GEN_EINVAL);
    assert_null(v);
    assert_non_null(strstr(gen_last_error_message(), "post_quant_conv.weight"));
}

static void test_bad_inputs(void **state)
{
    (void)state;
    gen__tensor out, x, ctx;
    float t[2] = {10, 10};
    assert_int_equal(gen__tensor_alloc(&x, be, GEN__F32, 4, (int64_t[]){1, 4, 9, 9}), GEN_OK);
    assert_int_equal(gen__tensor_alloc(&ctx, be, GEN__F32, 3, (int64_t[]){1, 77, 32}), GEN_OK);
    assert_int_equal(gen__fill(&x, 0.5f), GEN_OK);
    assert_int_equal(gen__fill(&ctx, 0.5f), GEN_OK);
    /* wrong channel count */
    gen__tensor x3;
    assert_int_equal(gen__tensor_view4(&x3, &x, 1, 3, 9, 9, 0), GEN_OK);
    assert_int_equal(gen__unet_forward(sd15.unet, &out, &x3, t, &ctx), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "f32[1,3,9,9]"));
    gen__tensor_free(&ctx);
    assert_int_equal(gen__tensor_alloc(&ctx, be, GEN__F32, 3, (int64_t[]){1, 77, 31}), GEN_OK);
    gen__tensor_free(&x);
    assert_int_equal(gen__tensor_alloc(&x, be, GEN__F32, 4, (int64_t[]){1, 4, 8, 8}), GEN_OK);
    assert_int_equal(gen__unet_forward(sd15.unet, &out, &x, t, &ctx), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "context"));
    assert_int_equal(out.ndim, 0);

    int32_t ids[77] = {0};
    ids[3] = 5000; /* beyond the tiny vocabulary */
    assert_int_equal(gen__text_encoder_forward(sd15.te, &out, ids, 1, 77, 0), GEN_EINVAL);
    assert_int_equal(gen__text_encoder_forward(sd15.te, &out, ids, 1, 78, 0), GEN_EINVAL);
    ids[3] = 1;
    assert_int_equal(gen__text_encoder_forward(sd15.te, &out, ids, 1, 77, 3), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "clip_skip 3"));

    gen__vae *dec_only;
    assert_int_equal(gen__vae_create(&dec_only, gen__model_vae_config(sd15.model),
                                     sd15.dw[GEN__PART_VAE], false),
                     GEN_OK);
    gen__tensor img, m, s;
    assert_int_equal(gen__tensor_alloc(&img, be, GEN__F32, 4, (int64_t[]){1, 3, 64, 64}), GEN_OK);
    assert_int_equal(gen__vae_encode(dec_only, &m, &s, &img), GEN_ESTATE);
    gen__vae_destroy(dec_only);
    gen__tensor_free(&img);
    assert_int_equal(gen__tensor_alloc(&img, be, GEN__F32, 4, (int64_t[]){1, 3, 60, 64}), GEN_OK);
    assert_int_equal(gen__vae_encode(sd15.vae, &m, &s, &img), GEN_EINVAL);
    gen__tensor_free(&img);
    gen__tensor_free(&x);
    gen__tensor_free(&ctx);
}

/* ---- allocation failures ---------------------------------------------------------- */

typedef struct stage_input {
    gen__tensor x, ctx, z, img;
    int32_t ids[2 * 77];
} stage_input;

static gen_status stage_text(stage_input *in, gen__tensor *out)
{
    return gen__text_encoder_forward(sd15.te, out, in->ids, 2, 77, 1);
}

static gen_status stage_unet(stage_input *in, gen__tensor *out)
{
    float t[2] = {400, 400};
    return gen__unet_forward(sd15.unet, out, &in->x, t, &in->ctx);
}

static gen_status stage_decode(stage_input *in, gen__tensor *out)
{
    return gen__vae_decode(sd15.vae, out, &in->z);
}

static gen_status stage_encode(stage_input *in, gen__tensor *out)
{
    gen__tensor sd;
    gen_status st = gen__vae_encode(sd15.vae, out, &sd, &in->img);
    gen__tensor_free(&sd);
    return st;
}

static gen_status stage_create(stage_input *in, gen__tensor *out)
{
    (void)in;
    (void)out;
    gen__unet *u = NULL;
    gen__vae *v = NULL;
    gen__text_encoder *te = NULL;
    gen_status st =
        gen__unet_create(&u, gen__model_unet_config(sd15.model), sd15.dw[GEN__PART_UNET]);
    if (st == GEN_OK)
        st = gen__vae_create(&v, gen__model_vae_config(sd15.model), sd15.dw[GEN__PART_VAE], true);
    if (st == GEN_OK)
        st = gen__text_encoder_create(&te, gen__model_text_config(sd15.model),
                                      sd15.dw[GEN__PART_TEXT_ENCODER]);
    gen__unet_destroy(u);
    gen__vae_destroy(v);
    gen__text_encoder_destroy(te);
    return st;
}

/* Make allocation n (and every later one) fail, for n = 1, 2, ... until the
 * stage succeeds: every failure is a clean error and leaves no device memory
 * behind (host leaks are caught by the ASan build). */
static void test_alloc_failures(void **state)
{
    (void)state;
    stage_input in;
    in.x = filled_tensor(4, (int64_t[]){2, 4, 8, 8});
    in.ctx = filled_tensor(3, (int64_t[]){2, 77, 32});
    in.z = filled_tensor(4, (int64_t[]){1, 4, 8, 8});
    in.img = filled_tensor(4, (int64_t[]){1, 3, 64, 64});
    for (int i = 0; i < 2 * 77; i++)
        in.ids[i] = (i * 13) % 1000;
    struct {
        const char *name;
        gen_status (*fn)(stage_input *, gen__tensor *);
    } stages[] = {{"create", stage_create},
                  {"text", stage_text},
                  {"unet", stage_unet},
                  {"decode", stage_decode},
                  {"encode", stage_encode}};
    for (size_t k = 0; k < sizeof stages / sizeof *stages; k++) {
        gen__tensor out = GEN__TENSOR_EMPTY;
        assert_int_equal(stages[k].fn(&in, &out), GEN_OK); /* warm-up: scratch at its size */
        gen__tensor_free(&out);
        const uint64_t base = mem_in_use();
        long n = 1;
        for (; n < 20000; n++) {
            gen__alloc_fail_after(n, 1);
            gen_status st = stages[k].fn(&in, &out);
            gen__alloc_fail_after(0, 0);
            gen__tensor_free(&out);
            if (st == GEN_OK)
                break;
            if (st != GEN_ENOMEM && st != GEN_EDEVICE_OOM)
                fail_msg("%s, allocation %ld failing: status %d (%s)", stages[k].name, n, st,
                         gen_last_error_message());
            if (mem_in_use() != base)
                fail_msg("%s, allocation %ld failing: %llu device bytes left behind",
                         stages[k].name, n, (unsigned long long)(mem_in_use() - base));
        }
        printf("  %-8s succeeds once %ld allocations may succeed\n", stages[k].name, n - 1);
        assert_true(n < 20000);
    }
    gen__tensor_free(&in.x);
    gen__tensor_free(&in.ctx);
    gen__tensor_free(&in.z);
    gen__tensor_free(&in.img);
}

int main(void)
{
    /* The winograd run of this test (meson.build) sends every 3x3 convolution
     * through Winograd, which the tiny model's few channels never choose. */
    const char *algo = getenv("GEN_TEST_CONV_ALGORITHM");
    if (algo && strcmp(algo, "winograd") == 0)
        gen__cpu_conv_algorithm = GEN__CPU_CONV_WINOGRAD;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_encoder),   cmocka_unit_test(test_unet_step0),
        cmocka_unit_test(test_vae_decode),     cmocka_unit_test(test_vae_decode_f16_latents),
        cmocka_unit_test(test_vae_encode),     cmocka_unit_test(test_non_square),
        cmocka_unit_test(test_single_file),    cmocka_unit_test(test_single_file_sd2),
        cmocka_unit_test(test_fp16_variant),   cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_alloc_failures), cmocka_unit_test(test_bad_inputs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
