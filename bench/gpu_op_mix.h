/* Part of bench/gpu.c: one SD1.5 UNet step (512x512 -> 64x64 latent, CFG
 * batch 2, f16) replayed as the sequence of backend ops at the real layer
 * shapes (conv_in, 4 down / mid / 4 up levels of ResNet and transformer blocks
 * with skip concats, conv_out), with random weights: what our ops cost in that
 * mix, the whole step back-to-back, then each op synchronised to attribute the
 * time per op kind (the real UNet, unet_step_hook() below, gives the step time
 * but no breakdown). */

enum { MIX_CONV, MIX_GN, MIX_LINEAR, MIX_ATTN, MIX_LN, MIX_ELEM, MIX_LAYOUT, MIX_KINDS };
static const char *mix_names[MIX_KINDS] = {"conv2d", "group_norm", "linear", "attention",
                                           "layer_norm", "elementwise", "layout"};
static double mix_time[MIX_KINDS];
static int mix_count[MIX_KINDS];
static bool mix_per_op;

#define MIX(kind, call)                                                                            \
    do {                                                                                           \
        int64_t t0_ = 0;                                                                           \
        if (mix_per_op) {                                                                          \
            sync_backend();                                                                        \
            t0_ = gen__monotonic_ns();                                                             \
        }                                                                                          \
        OK(call);                                                                                  \
        if (mix_per_op) {                                                                          \
            sync_backend();                                                                        \
            mix_time[kind] += (double)(gen__monotonic_ns() - t0_) * 1e-9;                          \
            mix_count[kind]++;                                                                     \
        }                                                                                          \
    } while (0)

/* Weights are made once per shape key and kept (like a loaded model). */
typedef struct mix_weight {
    char key[48];
    gen__tensor t;
} mix_weight;
static mix_weight mix_weights[512];
static int mix_nweights;

static gen__tensor *weight(const char *kind, int nd, const int64_t *shape)
{
    char key[48];
    snprintf(key, sizeof(key), "%s:%lld:%lld:%lld", kind, (long long)shape[0],
             (long long)(nd > 1 ? shape[1] : 0), (long long)(nd > 2 ? shape[2] : 0));
    for (int i = 0; i < mix_nweights; i++)
        if (strcmp(mix_weights[i].key, key) == 0)
            return &mix_weights[i].t;
    if (mix_nweights == 512)
        die("too many weights");
    mix_weight *w = &mix_weights[mix_nweights++];
    snprintf(w->key, sizeof(w->key), "%s", key);
    w->t = tensor(GEN__F16, nd, shape);
    OK(gen__scale(&w->t, &w->t, 0.05f));
    return &w->t;
}

static gen__tensor act(int nd, const int64_t *shape)
{
    gen__tensor t;
    OK(gen__tensor_alloc(&t, be, GEN__F16, nd, shape));
    return t;
}

static gen__tensor mix_temb, mix_ctx;

/* y = conv(x) with bias */
static gen__tensor conv(const gen__tensor *x, int64_t co, int k, int stride)
{
    int64_t n = x->shape[0], ci = x->shape[1];
    gen__conv2d_params p = gen__conv2d_simple(stride, k / 2);
    int64_t ho = gen__conv2d_out_size(x->shape[2], k, stride, k / 2, k / 2);
    int64_t wo = gen__conv2d_out_size(x->shape[3], k, stride, k / 2, k / 2);
    gen__tensor y = act(4, SHAPE(n, co, ho, wo));
    MIX(MIX_CONV, gen__conv2d(&y, x, weight("conv", 4, SHAPE(co, ci, k, k)),
                              weight("bias", 1, SHAPE(co)), &p));
    return y;
}

static gen__tensor linear(const gen__tensor *x, int64_t out_features)
{
    int64_t in = x->shape[x->ndim - 1];
    int64_t shape[3] = {x->shape[0], x->shape[1], out_features};
    shape[x->ndim - 1] = out_features;
    gen__tensor y = act(x->ndim, shape);
    MIX(MIX_LINEAR, gen__linear(&y, x, weight("lin", 2, SHAPE(out_features, in)),
                                weight("bias", 1, SHAPE(out_features))));
    return y;
}

static gen__tensor resblock(gen__tensor *x, int64_t co)
{
    int64_t ci = x->shape[1];
    gen__tensor h = act(4, x->shape);
    MIX(MIX_GN, gen__group_norm(&h, x, weight("g", 1, SHAPE(ci)), weight("b", 1, SHAPE(ci)), 32,
                                1e-5f, true));
    gen__tensor h2 = conv(&h, co, 3, 1);
    gen__tensor_free(&h);
    gen__tensor t = act(2, SHAPE(2, 1280));
    MIX(MIX_ELEM, gen__silu(&t, &mix_temb));
    gen__tensor tp = linear(&t, co);
    gen__tensor tv;
    OK(gen__tensor_view4(&tv, &tp, 2, co, 1, 1, 0));
    MIX(MIX_ELEM, gen__add(&h2, &h2, &tv));
    gen__tensor_free(&t);
    gen__tensor_free(&tp);
    gen__tensor h3 = act(4, h2.shape);
    MIX(MIX_GN, gen__group_norm(&h3, &h2, weight("g", 1, SHAPE(co)), weight("b", 1, SHAPE(co)), 32,
                                1e-5f, true));
    gen__tensor_free(&h2);
    gen__tensor h4 = conv(&h3, co, 3, 1);
    gen__tensor_free(&h3);
    if (ci != co) {
        gen__tensor s = conv(x, co, 1, 1);
        MIX(MIX_ELEM, gen__add(&h4, &h4, &s));
        gen__tensor_free(&s);
    } else {
        MIX(MIX_ELEM, gen__add(&h4, &h4, x));
    }
    return h4;
}

static void attention_part(gen__tensor *hs, const gen__tensor *ctx, int64_t c)
{
    gen__tensor n = act(3, hs->shape);
    MIX(MIX_LN, gen__layer_norm(&n, hs, weight("g", 1, SHAPE(c)), weight("b", 1, SHAPE(c)), 1e-5f));
    const gen__tensor *kv_src = ctx ? ctx : &n;
    gen__tensor q = linear(&n, c), k = linear(kv_src, c), v = linear(kv_src, c);
    gen__tensor o = act(3, q.shape);
    MIX(MIX_ATTN, gen__attention(&o, &q, &k, &v, 8, 1.0f / sqrtf((float)(c / 8)), false));
    gen__tensor p = linear(&o, c);
    MIX(MIX_ELEM, gen__add(hs, hs, &p));
    gen__tensor_free(&n);
    gen__tensor_free(&q);
    gen__tensor_free(&k);
    gen__tensor_free(&v);
    gen__tensor_free(&o);
    gen__tensor_free(&p);
}

static void transformer(gen__tensor *x)
{
    int64_t n = x->shape[0], c = x->shape[1], hw = x->shape[2] * x->shape[3];
    gen__tensor g = act(4, x->shape);
    MIX(MIX_GN, gen__group_norm(&g, x, weight("g", 1, SHAPE(c)), weight("b", 1, SHAPE(c)), 32,
                                1e-6f, false));
    gen__tensor gv, hs = act(3, SHAPE(n, hw, c));
    OK(gen__tensor_view3(&gv, &g, n, c, hw, 0));
    MIX(MIX_LAYOUT, gen__transpose(&hs, &gv));
    gen__tensor_free(&g);
    gen__tensor h = linear(&hs, c); /* proj_in */
    gen__tensor_free(&hs);
    attention_part(&h, NULL, c);
    attention_part(&h, &mix_ctx, c);
    gen__tensor n3 = act(3, h.shape);
    MIX(MIX_LN, gen__layer_norm(&n3, &h, weight("g", 1, SHAPE(c)), weight("b", 1, SHAPE(c)), 1e-5f));
    gen__tensor ff = linear(&n3, 8 * c);
    gen__tensor ge = act(3, SHAPE(n, hw, 4 * c));
    MIX(MIX_ELEM, gen__geglu(&ge, &ff));
    gen__tensor ffo = linear(&ge, c);
    MIX(MIX_ELEM, gen__add(&h, &h, &ffo));
    gen__tensor_free(&n3);
    gen__tensor_free(&ff);
    gen__tensor_free(&ge);
    gen__tensor_free(&ffo);
    gen__tensor po = linear(&h, c); /* proj_out */
    gen__tensor back = act(3, SHAPE(n, c, hw)), xv;
    MIX(MIX_LAYOUT, gen__transpose(&back, &po));
    OK(gen__tensor_view3(&xv, x, n, c, hw, 0));
    MIX(MIX_ELEM, gen__add(&xv, &xv, &back));
    gen__tensor_free(&h);
    gen__tensor_free(&po);
    gen__tensor_free(&back);
}

static gen__tensor concat_ch(gen__tensor *a, gen__tensor *b)
{
    gen__tensor y = act(4, SHAPE(a->shape[0], a->shape[1] + b->shape[1], a->shape[2], a->shape[3]));
    MIX(MIX_LAYOUT, gen__concat(&y, a, b, 1));
    return y;
}

/* One UNet step; returns nothing (the output is freed). */
static void unet_step_mix(const gen__tensor *latent)
{
    float ts[2] = {500.0f, 500.0f};
    gen__tensor te = act(2, SHAPE(2, 320));
    MIX(MIX_ELEM, gen__timestep_embedding(&te, ts, 2, true, 0.0f, 1.0f, 10000.0f));
    gen__tensor t1 = linear(&te, 1280);
    MIX(MIX_ELEM, gen__silu(&t1, &t1));
    mix_temb = linear(&t1, 1280);
    gen__tensor_free(&te);
    gen__tensor_free(&t1);

    gen__tensor skips[12];
    int ns = 0;
    gen__tensor x = conv(latent, 320, 3, 1);
    skips[ns++] = x;
    const int64_t chans[4] = {320, 640, 1280, 1280};
    gen__tensor cur = x;
    for (int lvl = 0; lvl < 4; lvl++) {
        for (int r = 0; r < 2; r++) {
            gen__tensor y = resblock(&cur, chans[lvl]);
            if (lvl < 3)
                transformer(&y);
            skips[ns++] = y;
            cur = y;
        }
        if (lvl < 3) {
            cur = conv(&cur, chans[lvl], 3, 2);
            skips[ns++] = cur;
        }
    }
    gen__tensor m = resblock(&cur, 1280);
    transformer(&m);
    gen__tensor m2 = resblock(&m, 1280);
    gen__tensor_free(&m);
    cur = m2;
    for (int lvl = 3; lvl >= 0; lvl--) {
        for (int r = 0; r < 3; r++) {
            gen__tensor *s = &skips[--ns];
            gen__tensor cat = concat_ch(&cur, s);
            gen__tensor_free(&cur);
            gen__tensor_free(s);
            cur = resblock(&cat, chans[lvl]);
            gen__tensor_free(&cat);
            if (lvl < 3)
                transformer(&cur);
        }
        if (lvl > 0) {
            gen__tensor up = act(4, SHAPE(2, chans[lvl], cur.shape[2] * 2, cur.shape[3] * 2));
            MIX(MIX_LAYOUT, gen__upsample_nearest2x(&up, &cur));
            gen__tensor_free(&cur);
            cur = conv(&up, chans[lvl], 3, 1);
            gen__tensor_free(&up);
        }
    }
    gen__tensor g = act(4, cur.shape);
    MIX(MIX_GN, gen__group_norm(&g, &cur, weight("g", 1, SHAPE(320)), weight("b", 1, SHAPE(320)),
                                32, 1e-5f, true));
    gen__tensor out = conv(&g, 4, 3, 1);
    gen__tensor_free(&g);
    gen__tensor_free(&cur);
    gen__tensor_free(&out);
    gen__tensor_free(&mix_temb);
}

static void mix_run(void *arg)
{
    unet_step_mix(arg);
}

static void bench_op_mix(const char *attention_kernel)
{
    gen__tensor latent = tensor(GEN__F16, 4, SHAPE(2, 4, 64, 64));
    mix_ctx = tensor(GEN__F16, 3, SHAPE(2, 77, 768));
    mix_per_op = false;
    double step = time_calls(mix_run, &latent, sync_backend);
    printf("{\"bench\":\"op_mix\",\"what\":\"SD1.5 UNet step shapes, 512x512, batch 2, f16\","
           "\"attention\":\"%s\",\"step_ms\":%.3f}\n",
           attention_kernel, step * 1e3);
    mix_per_op = true;
    memset(mix_time, 0, sizeof(mix_time));
    memset(mix_count, 0, sizeof(mix_count));
    unet_step_mix(&latent);
    double total = 0;
    for (int k = 0; k < MIX_KINDS; k++)
        total += mix_time[k];
    for (int k = 0; k < MIX_KINDS; k++)
        printf("{\"bench\":\"op_mix_breakdown\",\"attention\":\"%s\",\"op\":\"%s\","
               "\"calls\":%d,\"ms\":%.3f,\"share\":%.3f}\n",
               attention_kernel, mix_names[k], mix_count[k], mix_time[k] * 1e3,
               total > 0 ? mix_time[k] / total : 0);
    mix_per_op = false;
    for (int i = 0; i < mix_nweights; i++)
        gen__tensor_free(&mix_weights[i].t);
    mix_nweights = 0;
    gen__tensor_free(&latent);
    gen__tensor_free(&mix_ctx);
    fflush(stdout);
}

/* The real networks of lib/pipeline at full SD1.5 shapes (512x512, CFG batch
 * 2, f16): a sparse SD1.5 single file is generated (tests/model/sd_ldm.c: every
 * tensor at its real shape, zero weights; speed does not depend on values),
 * loaded with the model loader, uploaded in f16, and timed: text encoder
 * (batch 2), one UNet step (batch 2, each call synchronised) with each
 * attention kernel, VAE decode, and the 20-step image estimate. A failure is
 * reported as a JSON line and the rest of the bench goes on. */
static void sd15_fail(const char *stage)
{
    printf("{\"bench\":\"unet_step\",\"error\":\"%s: ", stage);
    for (const char *p = gen_last_error_message(); *p; p++)
        putchar(*p == '"' || *p == '\\' ? '\'' : *p);
    printf("\"}\n");
    fflush(stdout);
}

static double sd15_time(gen_status (*fn)(void *), void *arg, int reps, bool *ok)
{
    double s[16];
    for (int r = 0; r <= reps; r++) { /* the first is a warm-up */
        int64_t t0 = gen__monotonic_ns();
        if (fn(arg) != GEN_OK || gen__backend_synchronize(be) != GEN_OK) {
            *ok = false;
            return 0;
        }
        if (r > 0)
            s[r - 1] = (double)(gen__monotonic_ns() - t0) * 1e-9;
    }
    return bench_median(s, reps);
}

typedef struct sd15_ctx {
    gen__text_encoder *te;
    gen__unet *unet;
    gen__vae *vae;
    gen__tensor latent2, latent1, ctx;
} sd15_ctx;

static gen_status sd15_text(void *p)
{
    sd15_ctx *c = p;
    int32_t ids[2 * 77];
    for (int i = 0; i < 2 * 77; i++)
        ids[i] = (int32_t)((i * 37 + 11) % 49408);
    gen__tensor out;
    gen_status st = gen__text_encoder_forward(c->te, &out, ids, 2, 77, 0);
    gen__tensor_free(&out);
    return st;
}

static gen_status sd15_unet(void *p)
{
    sd15_ctx *c = p;
    float t[2] = {500.0f, 500.0f};
    gen__tensor out;
    gen_status st = gen__unet_forward(c->unet, &out, &c->latent2, t, &c->ctx);
    gen__tensor_free(&out);
    return st;
}

static gen_status sd15_vae(void *p)
{
    sd15_ctx *c = p;
    gen__tensor img;
    gen_status st = gen__vae_decode(c->vae, &img, &c->latent1);
    gen__tensor_free(&img);
    return st;
}

static void unet_step_hook(void)
{
    const char *dir = getenv("GEN_BENCH_DIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/libgen-bench-sd15-f16.safetensors", dir && *dir ? dir : "/tmp");
    if (sd_ldm_write_sparse(path, &sd_ldm_sd15, "F16") == 0) {
        printf("{\"bench\":\"unet_step\",\"error\":\"cannot write %s\"}\n", path);
        return;
    }
    gen__model *m = NULL;
    gen__device_weights *dw[GEN__PART_COUNT] = {0};
    sd15_ctx c = {0};
    gen__tensor emb = GEN__TENSOR_EMPTY;
    int64_t t0 = gen__monotonic_ns();
    if (gen__model_open(&m, path, NULL) != GEN_OK) {
        sd15_fail("open");
        goto done;
    }
    for (int p = 0; p < GEN__PART_COUNT; p++) {
        gen__host_weights *hw = NULL;
        gen_status st = gen__host_weights_from_model(&hw, m, (gen__part)p);
        if (st == GEN_OK)
            st = gen__device_weights_upload(&dw[p], hw, be, GEN__F16);
        gen__host_weights_destroy(hw);
        if (st != GEN_OK) {
            sd15_fail("weights");
            goto done;
        }
    }
    printf("{\"bench\":\"sd15_load\",\"seconds\":%.2f}\n",
           (double)(gen__monotonic_ns() - t0) * 1e-9);
    if (gen__text_encoder_create(&c.te, gen__model_text_config(m), dw[GEN__PART_TEXT_ENCODER]) ||
        gen__unet_create(&c.unet, gen__model_unet_config(m), dw[GEN__PART_UNET]) ||
        gen__vae_create(&c.vae, gen__model_vae_config(m), dw[GEN__PART_VAE], false)) {
        sd15_fail("networks");
        goto done;
    }
    c.latent2 = tensor(GEN__F16, 4, SHAPE(2, 4, 64, 64));
    c.latent1 = tensor(GEN__F16, 4, SHAPE(1, 4, 64, 64));
    int32_t ids[2 * 77] = {0};
    if (gen__text_encoder_forward(c.te, &emb, ids, 2, 77, 0) != GEN_OK) {
        sd15_fail("text encoder");
        goto done;
    }
    c.ctx = emb;
    /* a failing text encoder or VAE is reported and the UNet still timed
     * (-1 marks a time that could not be measured) */
    bool ok = true;
    double te = sd15_time(sd15_text, &c, 5, &ok);
    if (!ok) {
        sd15_fail("text encoder");
        te = -1;
        ok = true;
    }
    double vae = sd15_time(sd15_vae, &c, 3, &ok);
    if (!ok) {
        sd15_fail("vae decode");
        vae = -1;
        ok = true;
    }
    const char *kernels[2] = {"simple", "mma"};
    int ids_k[2] = {GEN__CUDA_ATTENTION_SIMPLE, GEN__CUDA_ATTENTION_MMA};
    for (int k = 0; k < 2; k++) {
        if (!gen__cuda_backend_set_attention(be, ids_k[k]))
            continue;
        gen__backend_reset_peak(be);
        double unet = sd15_time(sd15_unet, &c, 5, &ok);
        if (!ok) {
            sd15_fail(kernels[k]);
            ok = true;
            continue;
        }
        gen__backend_mem_info mi;
        gen__backend_memory(be, &mi);
        printf("{\"bench\":\"unet_step\",\"attention\":\"%s\",\"ms\":%.2f,"
               "\"text_encoder_ms\":%.2f,\"vae_decode_ms\":%.2f,\"image_20_steps_s\":%.3f,"
               "\"peak_mib\":%.0f}\n",
               kernels[k], unet * 1e3, te < 0 ? -1.0 : te * 1e3, vae < 0 ? -1.0 : vae * 1e3,
               te < 0 || vae < 0 ? -1.0 : te + 20 * unet + vae,
               (double)mi.peak_bytes / (1 << 20));
        fflush(stdout);
    }
    gen__cuda_backend_set_attention(be, GEN__CUDA_ATTENTION_SIMPLE);
done:
    gen__tensor_free(&emb);
    gen__tensor_free(&c.latent2);
    gen__tensor_free(&c.latent1);
    gen__text_encoder_destroy(c.te);
    gen__unet_destroy(c.unet);
    gen__vae_destroy(c.vae);
    for (int p = 0; p < GEN__PART_COUNT; p++)
        gen__device_weights_release(dw[p]);
    bool opened = m != NULL;
    gen__model_close(m);
    if (opened) /* the file is good: whole images from it through the public API */
        generate_images_hook(path, bench_device_index);
    remove(path);
}
