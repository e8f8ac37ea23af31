/* The gpu suite: every op of the CUDA backend against the CPU backend on the
 * same random inputs, in f32, f16 and bf16 (inputs rounded to the dtype first,
 * so both sides see identical values; the CPU computes in f32). Relative L2
 * error limits: f32 1e-5, f16 1e-2, bf16 2e-2. Plus exact dtype conversion
 * (bit-for-bit with tensor.h, NaN/inf/subnormals included), memory accounting
 * and the out-of-memory path.
 *
 * Exits 77 (skipped) when there is no CUDA device. Prints one line per check:
 *   RESULT <op> <dtype> <case> <rel_l2> <limit> PASS|FAIL
 * and exits 1 if any check failed. Usage: test_gpu_ops [device index]
 * `test_gpu_ops --cpu-as-gpu` runs the f32 checks with a second CPU backend in
 * the GPU's place: a self-test of this harness on machines without a GPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gen/gen.h>

#include "backend/backend.h"
#include "backend/cuda_backend.h"
#include "backend/gpu_probe.h"
#include "../backend/backend_test_util.h"

static gen__backend *cpu, *gpu, *gpu_mma; /* gpu_mma: tensor-core attention */
static gen__dtype dt;   /* dtype of the GPU tensors in the current round */
static int failures, checks;
static uint64_t seed_state = 12345;

static const char *dname(void)
{
    return gen__dtype_name(dt);
}

static double limit(void)
{
    return dt == GEN__F32 ? 1e-5 : dt == GEN__F16 ? 1e-2 : 2e-2;
}

static void fatal(const char *what, gen_status st)
{
    fprintf(stderr, "FATAL %s: %s (%s)\n", what, gen_status_string(st), gen_last_error_message());
    exit(1);
}

#define OK(call)                                                                                   \
    do {                                                                                           \
        gen_status st_ = (call);                                                                   \
        if (st_ != GEN_OK)                                                                         \
            fatal(#call, st_);                                                                     \
    } while (0)

/* An op on the GPU that fails is a failed check (reported by the next
 * compare), not the end of the run: the other ops still get their verdicts. */
static char op_error[512];

#define G(call)                                                                                    \
    do {                                                                                           \
        gen_status st_ = (call);                                                                   \
        if (st_ != GEN_OK && !op_error[0])                                                         \
            snprintf(op_error, sizeof(op_error), "%s: %s", gen_status_string(st_),                 \
                     gen_last_error_message());                                                    \
    } while (0)

/* A tensor on each backend: c (f32 on the CPU) and g (dt on the GPU). */
typedef struct pair {
    gen__tensor c, g;
} pair;

static float uniform(void)
{
    seed_state = seed_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(seed_state >> 11) / (double)(1ULL << 53)) * 2.0f - 1.0f;
}

static size_t count_of(int nd, const int64_t *shape)
{
    size_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= (size_t)shape[i];
    return n;
}

static void upload_pair(pair *p, float *h)
{
    size_t n = (size_t)gen__tensor_numel(&p->c);
    void *conv = malloc(n * 4 + 1);
    gen__convert_host(conv, dt, h, GEN__F32, n);
    gen__convert_host(h, GEN__F32, conv, dt, n); /* the CPU sees the rounded values */
    OK(gen__tensor_upload(&p->c, h, n * 4));
    OK(gen__tensor_upload(&p->g, conv, gen__tensor_nbytes(&p->g)));
    free(conv);
}

static pair out_pair(int nd, const int64_t *shape)
{
    pair p;
    OK(gen__tensor_alloc(&p.c, cpu, GEN__F32, nd, shape));
    G(gen__tensor_alloc(&p.g, gpu, dt, nd, shape));
    return p;
}

static pair in_pair(int nd, const int64_t *shape, float scale)
{
    pair p = out_pair(nd, shape);
    size_t n = count_of(nd, shape);
    float *h = malloc(n * 4 + 1);
    for (size_t i = 0; i < n; i++)
        h[i] = uniform() * scale;
    upload_pair(&p, h);
    free(h);
    return p;
}

static void free_pair(pair *p)
{
    gen__tensor_free(&p->c);
    gen__tensor_free(&p->g);
}

static float *download_f32(const gen__tensor *t)
{
    float *f = tu_download_f32(t);
    if (!f)
        fatal("download", gen_last_error_status());
    return f;
}

static void compare(const char *op, const char *label, const pair *p)
{
    if (op_error[0]) {
        checks++;
        failures++;
        printf("RESULT %-20s %-4s %-40s error %s FAIL\n", op, dname(), label, op_error);
        fflush(stdout);
        op_error[0] = 0;
        if (gen__backend_synchronize(gpu) != GEN_OK) /* a sticky device error: stop here */
            fatal("device unusable after the failure", gen_last_error_status());
        return;
    }
    size_t n = (size_t)gen__tensor_numel(&p->c);
    float *ref = download_f32(&p->c), *got = download_f32(&p->g);
    double num = 0.0, den = 0.0;
    bool nan_mismatch = false;
    for (size_t i = 0; i < n; i++) {
        if (isnan(ref[i]) || isnan(got[i])) {
            nan_mismatch |= isnan(ref[i]) != isnan(got[i]);
            continue;
        }
        double d = (double)got[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    double err = nan_mismatch ? INFINITY : sqrt(num / (den > 0 ? den : 1e-30));
    bool pass = err < limit();
    checks++;
    failures += !pass;
    printf("RESULT %-20s %-4s %-40s %.3e %.0e %s\n", op, dname(), label, err, limit(),
           pass ? "PASS" : "FAIL");
    fflush(stdout);
    free(ref);
    free(got);
}

#define SHAPE(...) (int64_t[]){__VA_ARGS__}
#define ND(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))

/* ---- cases ------------------------------------------------------------------------ */

static void run_gemm(const char *label, int nda, const int64_t *sa, int ndb, const int64_t *sb,
                     int ndc, const int64_t *sc, bool ta, bool tb, float alpha, float beta)
{
    pair a = in_pair(nda, sa, 1.0f), b = in_pair(ndb, sb, 1.0f), c = in_pair(ndc, sc, 1.0f);
    OK(gen__gemm(&c.c, &a.c, &b.c, ta, tb, alpha, beta));
    G(gen__gemm(&c.g, &a.g, &b.g, ta, tb, alpha, beta));
    compare("gemm", label, &c);
    free_pair(&a);
    free_pair(&b);
    free_pair(&c);
}

static void test_gemm_linear(void)
{
    run_gemm("[37,53]x[53,29]", 2, SHAPE(37, 53), 2, SHAPE(53, 29), 2, SHAPE(37, 29), false, false, 1, 0);
    run_gemm("A^T B^T alpha beta", 2, SHAPE(53, 37), 2, SHAPE(29, 53), 2, SHAPE(37, 29), true, true, 0.5f, 0.25f);
    run_gemm("batched [3,2,17,40]", 4, SHAPE(3, 2, 17, 40), 4, SHAPE(3, 2, 40, 9), 4, SHAPE(3, 2, 17, 9), false, false, 1, 0);
    run_gemm("broadcast a, b^T", 2, SHAPE(17, 40), 3, SHAPE(6, 9, 40), 3, SHAPE(6, 17, 9), false, true, 1, 0);
    run_gemm("big 256x320x1280", 2, SHAPE(256, 1280), 2, SHAPE(1280, 320), 2, SHAPE(256, 320), false, false, 1, 0);

    struct { int nd; int64_t x[3]; int64_t o, i; bool bias; } cases[] = {
        {3, {2, 7, 24}, 40, 24, true}, {2, {5, 3}, 8, 3, false}, {3, {2, 77, 768}, 320, 768, true},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        int nd = cases[k].nd;
        int64_t xs[3], os[3];
        memcpy(xs, cases[k].x, sizeof(xs));
        memcpy(os, xs, sizeof(os));
        os[nd - 1] = cases[k].o;
        pair x = in_pair(nd, xs, 1.0f), out = out_pair(nd, os);
        pair w = in_pair(2, SHAPE(cases[k].o, cases[k].i), 0.2f), b = in_pair(1, SHAPE(cases[k].o), 1.0f);
        OK(gen__linear(&out.c, &x.c, &w.c, cases[k].bias ? &b.c : NULL));
        G(gen__linear(&out.g, &x.g, &w.g, cases[k].bias ? &b.g : NULL));
        char label[64];
        snprintf(label, sizeof(label), "rows %lld, %lld->%lld%s", (long long)(xs[0] * (nd == 3 ? xs[1] : 1)),
                 (long long)cases[k].i, (long long)cases[k].o, cases[k].bias ? " +bias" : "");
        compare("linear", label, &out);
        free_pair(&x);
        free_pair(&out);
        free_pair(&w);
        free_pair(&b);
    }
}

static void run_conv(const char *label, int64_t n, int64_t ci, int64_t h, int64_t w, int64_t co,
                     int k, gen__conv2d_params p, bool bias)
{
    int64_t ho = gen__conv2d_out_size(h, k, p.stride_h, p.pad_top, p.pad_bottom);
    int64_t wo = gen__conv2d_out_size(w, k, p.stride_w, p.pad_left, p.pad_right);
    pair x = in_pair(4, SHAPE(n, ci, h, w), 1.0f), wt = in_pair(4, SHAPE(co, ci, k, k), 0.3f);
    pair b = in_pair(1, SHAPE(co), 1.0f), out = out_pair(4, SHAPE(n, co, ho, wo));
    OK(gen__conv2d(&out.c, &x.c, &wt.c, bias ? &b.c : NULL, &p));
    G(gen__conv2d(&out.g, &x.g, &wt.g, bias ? &b.g : NULL, &p));
    compare("conv2d", label, &out);
    /* the second call of a shape reuses the cached plan */
    G(gen__conv2d(&out.g, &x.g, &wt.g, bias ? &b.g : NULL, &p));
    compare("conv2d", "(cached plan)", &out);
    free_pair(&x);
    free_pair(&wt);
    free_pair(&b);
    free_pair(&out);
}

static void test_conv(void)
{
    run_conv("3x3 p1 [2,16,13,11]->24", 2, 16, 13, 11, 24, 3, gen__conv2d_simple(1, 1), true);
    run_conv("conv_in 4ch [1,4,16,16]->32", 1, 4, 16, 16, 32, 3, gen__conv2d_simple(1, 1), true);
    run_conv("3x3 s2 p1 [1,8,15,15]->8", 1, 8, 15, 15, 8, 3, gen__conv2d_simple(2, 1), false);
    run_conv("1x1 [2,40,9,7]->24", 2, 40, 9, 7, 24, 1, gen__conv2d_simple(1, 0), true);
    gen__conv2d_params vae = {2, 2, 0, 1, 0, 1};
    run_conv("VAE down pad(0,1,0,1) s2", 1, 16, 12, 10, 16, 3, vae, true);
    run_conv("3ch odd [1,3,7,9]->5", 1, 3, 7, 9, 5, 3, gen__conv2d_simple(1, 1), true);
    run_conv("UNet 3x3 [2,320,32,32]->320", 2, 320, 32, 32, 320, 3, gen__conv2d_simple(1, 1), true);
}

static void test_norms(void)
{
    struct { int nd; int64_t s[4]; int groups; bool affine, silu; } gn[] = {
        {4, {2, 32, 9, 7}, 8, true, false}, {4, {1, 64, 16, 16}, 32, true, true},
        {3, {3, 12, 5}, 3, false, false}, {2, {2, 6}, 2, true, true},
    };
    for (size_t k = 0; k < sizeof(gn) / sizeof(gn[0]); k++) {
        pair x = in_pair(gn[k].nd, gn[k].s, 2.0f), out = out_pair(gn[k].nd, gn[k].s);
        pair g = in_pair(1, SHAPE(gn[k].s[1]), 1.0f), b = in_pair(1, SHAPE(gn[k].s[1]), 1.0f);
        OK(gen__group_norm(&out.c, &x.c, gn[k].affine ? &g.c : NULL, gn[k].affine ? &b.c : NULL,
                           gn[k].groups, 1e-5f, gn[k].silu));
        G(gen__group_norm(&out.g, &x.g, gn[k].affine ? &g.g : NULL, gn[k].affine ? &b.g : NULL,
                           gn[k].groups, 1e-5f, gn[k].silu));
        char label[64];
        snprintf(label, sizeof(label), "case %zu groups %d%s%s", k, gn[k].groups,
                 gn[k].affine ? " affine" : "", gn[k].silu ? " +silu" : "");
        compare("group_norm", label, &out);
        /* in place */
        OK(gen__group_norm(&x.c, &x.c, NULL, NULL, gn[k].groups, 1e-6f, false));
        G(gen__group_norm(&x.g, &x.g, NULL, NULL, gn[k].groups, 1e-6f, false));
        compare("group_norm", "in place", &x);
        free_pair(&x);
        free_pair(&out);
        free_pair(&g);
        free_pair(&b);
    }
    int64_t ds[] = {8, 320, 768, 1000};
    for (size_t k = 0; k < 4; k++) {
        pair x = in_pair(3, SHAPE(2, 9, ds[k]), 3.0f), out = out_pair(3, SHAPE(2, 9, ds[k]));
        pair g = in_pair(1, SHAPE(ds[k]), 1.0f), b = in_pair(1, SHAPE(ds[k]), 1.0f);
        const gen__tensor *gc = k % 2 ? &g.c : NULL, *gg = k % 2 ? &g.g : NULL;
        OK(gen__layer_norm(&out.c, &x.c, gc, k < 3 ? &b.c : NULL, 1e-5f));
        G(gen__layer_norm(&out.g, &x.g, gg, k < 3 ? &b.g : NULL, 1e-5f));
        char label[48];
        snprintf(label, sizeof(label), "D=%lld", (long long)ds[k]);
        compare("layer_norm", label, &out);
        free_pair(&x);
        free_pair(&out);
        free_pair(&g);
        free_pair(&b);
    }
    int64_t ns[] = {1, 7, 77, 1024, 4133};
    for (size_t k = 0; k < 5; k++) {
        pair x = in_pair(2, SHAPE(6, ns[k]), 4.0f), out = out_pair(2, SHAPE(6, ns[k]));
        OK(gen__softmax(&out.c, &x.c, 0.7f));
        G(gen__softmax(&out.g, &x.g, 0.7f));
        char label[48];
        snprintf(label, sizeof(label), "rows 6 x %lld scale 0.7", (long long)ns[k]);
        compare("softmax", label, &out);
        free_pair(&x);
        free_pair(&out);
    }
}

static void run_attention(int64_t b, int64_t nq, int64_t nk, int heads, int dk, int dv, bool causal)
{
    pair q = in_pair(3, SHAPE(b, nq, (int64_t)heads * dk), 1.5f);
    pair k = in_pair(3, SHAPE(b, nk, (int64_t)heads * dk), 1.5f);
    pair v = in_pair(3, SHAPE(b, nk, (int64_t)heads * dv), 1.0f);
    pair out = out_pair(3, SHAPE(b, nq, (int64_t)heads * dv));
    float scale = 1.0f / sqrtf((float)dk);
    OK(gen__attention(&out.c, &q.c, &k.c, &v.c, heads, scale, causal));
    G(gen__attention(&out.g, &q.g, &k.g, &v.g, heads, scale, causal));
    char label[64];
    snprintf(label, sizeof(label), "B%lld Nq%lld Nk%lld H%d D%d/%d%s", (long long)b, (long long)nq,
             (long long)nk, heads, dk, dv, causal ? " causal" : "");
    compare(gpu == gpu_mma ? "attention_mma" : "attention", label, &out);
    free_pair(&q);
    free_pair(&k);
    free_pair(&v);
    free_pair(&out);
}

static void test_attention(void)
{
    int dims[] = {3, 5, 8, 12, 40, 64, 80, 160};
    for (size_t i = 0; i < sizeof(dims) / sizeof(dims[0]); i++) {
        run_attention(2, 67, 67, 2, dims[i], dims[i], false);
        run_attention(1, 77, 77, 3, dims[i], dims[i], true);
    }
    run_attention(2, 100, 77, 8, 40, 40, false);   /* cross-attention: Nk = 77 text tokens */
    run_attention(1, 33, 50, 2, 24, 48, false);    /* Dk != Dv */
    run_attention(1, 40, 20, 1, 16, 16, true);     /* causal with Nq > Nk */
    run_attention(2, 1024, 1024, 8, 40, 40, false); /* SD 32x32 self-attention */
    /* head dims above the fused kernels' limit go through cuBLAS + softmax */
    run_attention(1, 300, 300, 1, 512, 512, false); /* the VAE's one 512-wide head */
    run_attention(2, 70, 45, 2, 200, 168, false);   /* batch, heads, Dk != Dv */
    run_attention(1, 50, 60, 3, 64, 192, false);    /* only Dv above the limit */
}

/* The same cases through the tensor-core kernel (f16/bf16 on sm_80+). */
static void test_attention_mma(void)
{
    if (!gpu_mma || dt == GEN__F32)
        return;
    gen__backend *saved = gpu;
    gpu = gpu_mma;
    test_attention();
    run_attention(1, 300, 300, 2, 64, 64, true);
    run_attention(2, 129, 77, 8, 80, 80, false);
    gpu = saved;
}

static void test_elementwise(void)
{
    const char *names[] = {"silu", "gelu", "gelu_tanh", "quick_gelu"};
    for (int op = 0; op < GEN__UNARY_COUNT; op++) {
        pair x = in_pair(3, SHAPE(3, 17, 29), 5.0f), out = out_pair(3, SHAPE(3, 17, 29));
        OK(gen__unary(&out.c, &x.c, (gen__unary_op)op));
        G(gen__unary(&out.g, &x.g, (gen__unary_op)op));
        compare(names[op], "[3,17,29]", &out);
        OK(gen__unary(&x.c, &x.c, (gen__unary_op)op));
        G(gen__unary(&x.g, &x.g, (gen__unary_op)op));
        compare(names[op], "in place", &x);
        free_pair(&x);
        free_pair(&out);
    }
    {
        pair x = in_pair(3, SHAPE(2, 9, 2 * 37), 3.0f), out = out_pair(3, SHAPE(2, 9, 37));
        OK(gen__geglu(&out.c, &x.c));
        G(gen__geglu(&out.g, &x.g));
        compare("geglu", "[2,9,74]->[2,9,37]", &out);
        free_pair(&x);
        free_pair(&out);
    }
    struct { int na; int64_t a[4]; int nb; int64_t b[4]; int no; int64_t o[4]; } bc[] = {
        {4, {2, 8, 5, 3}, 4, {1, 8, 1, 1}, 4, {2, 8, 5, 3}},
        {4, {2, 8, 5, 3}, 4, {2, 8, 1, 1}, 4, {2, 8, 5, 3}},
        {3, {3, 7, 6}, 2, {7, 6}, 3, {3, 7, 6}},
        {3, {4, 1, 3}, 3, {1, 5, 1}, 3, {4, 5, 3}},
        {2, {6, 10}, 2, {6, 10}, 2, {6, 10}},
    };
    for (size_t k = 0; k < sizeof(bc) / sizeof(bc[0]); k++) {
        for (int op = 0; op < 2; op++) {
            pair a = in_pair(bc[k].na, bc[k].a, 1.0f), b = in_pair(bc[k].nb, bc[k].b, 1.0f);
            pair out = out_pair(bc[k].no, bc[k].o);
            OK(gen__binary(&out.c, &a.c, &b.c, (gen__binary_op)op));
            G(gen__binary(&out.g, &a.g, &b.g, (gen__binary_op)op));
            char label[48];
            snprintf(label, sizeof(label), "broadcast case %zu", k);
            compare(op ? "mul" : "add", label, &out);
            free_pair(&a);
            free_pair(&b);
            free_pair(&out);
        }
    }
    {
        pair a = in_pair(2, SHAPE(5, 123), 1.0f), b = in_pair(2, SHAPE(5, 123), 1.0f);
        pair out = out_pair(2, SHAPE(5, 123));
        OK(gen__axpby(&out.c, 0.3f, &a.c, -1.7f, &b.c));
        G(gen__axpby(&out.g, 0.3f, &a.g, -1.7f, &b.g));
        compare("axpby", "alpha a + beta b", &out);
        OK(gen__scale(&a.c, &a.c, 2.5f));
        G(gen__scale(&a.g, &a.g, 2.5f));
        compare("axpby", "scale in place", &a);
        OK(gen__fill(&out.c, -0.375f));
        G(gen__fill(&out.g, -0.375f));
        compare("fill", "-0.375", &out);
        free_pair(&a);
        free_pair(&b);
        free_pair(&out);
    }
}

static void test_layout(void)
{
    {
        pair x = in_pair(4, SHAPE(2, 3, 5, 7), 1.0f), out = out_pair(4, SHAPE(2, 3, 10, 14));
        OK(gen__upsample_nearest2x(&out.c, &x.c));
        G(gen__upsample_nearest2x(&out.g, &x.g));
        compare("upsample_nearest2x", "[2,3,5,7]", &out);
        free_pair(&x);
        free_pair(&out);
    }
    int dims[] = {0, 1, -1};
    for (int k = 0; k < 3; k++) {
        int64_t sa[3] = {2, 3, 4}, sb[3] = {2, 3, 4}, so[3] = {2, 3, 4};
        int d = dims[k] < 0 ? 3 + dims[k] : dims[k];
        sb[d] = 5;
        so[d] = sa[d] + sb[d];
        pair a = in_pair(3, sa, 1.0f), b = in_pair(3, sb, 1.0f), out = out_pair(3, so);
        OK(gen__concat(&out.c, &a.c, &b.c, dims[k]));
        G(gen__concat(&out.g, &a.g, &b.g, dims[k]));
        char label[32];
        snprintf(label, sizeof(label), "dim %d", dims[k]);
        compare("concat", label, &out);
        free_pair(&a);
        free_pair(&b);
        free_pair(&out);
    }
    int64_t tp[][3] = {{2, 37, 45}, {1, 320, 64}, {3, 1, 33}, {2, 100, 1}};
    for (int k = 0; k < 4; k++) {
        pair x = in_pair(3, tp[k], 1.0f), out = out_pair(3, SHAPE(tp[k][0], tp[k][2], tp[k][1]));
        OK(gen__transpose(&out.c, &x.c));
        G(gen__transpose(&out.g, &x.g));
        char label[48];
        snprintf(label, sizeof(label), "[%lld,%lld,%lld]", (long long)tp[k][0], (long long)tp[k][1],
                 (long long)tp[k][2]);
        compare("transpose", label, &out);
        free_pair(&x);
        free_pair(&out);
    }
    {
        float ts[3] = {999.0f, 500.5f, 1.0f};
        int64_t widths[2] = {320, 7};
        for (int k = 0; k < 2; k++) {
            pair out = out_pair(2, SHAPE(3, widths[k]));
            OK(gen__timestep_embedding(&out.c, ts, 3, k == 0, 0.0f, 1.0f, 10000.0f));
            G(gen__timestep_embedding(&out.g, ts, 3, k == 0, 0.0f, 1.0f, 10000.0f));
            compare("timestep_embedding", k == 0 ? "D=320 flip" : "D=7 odd", &out);
            free_pair(&out);
        }
    }
    {
        pair table = in_pair(2, SHAPE(50, 24), 1.0f), out = out_pair(3, SHAPE(2, 5, 24));
        int32_t ids[10] = {0, 49, 3, 3, 17, 25, 1, 48, 2, 10};
        OK(gen__embedding(&out.c, &table.c, ids, 10));
        G(gen__embedding(&out.g, &table.g, ids, 10));
        compare("embedding", "10 ids of 50", &out);
        free_pair(&table);
        free_pair(&out);
    }
}

/* GPU conversion is bit-exact with tensor.h's host rounding, specials included. */
static void test_convert_exact(void)
{
    enum { N = 4096 };
    float *h = malloc(N * 4);
    for (int i = 0; i < N; i++)
        h[i] = uniform() * powf(2.0f, (float)(i % 60 - 30));
    const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 65504.0f, 65520.0f,
                              1e-8f, 6e-8f, 3.0e-5f, 3.4e38f, 1.0f + 1.0f / 2048.0f};
    memcpy(h, specials, sizeof(specials));
    for (int to = 1; to < GEN__DTYPE_COUNT; to++) {
        if (!(gpu->compute_dtypes & (1u << to)))
            continue;
        gen__tensor src, dst, back;
        OK(gen__tensor_alloc(&src, gpu, GEN__F32, 1, SHAPE(N)));
        OK(gen__tensor_alloc(&dst, gpu, (gen__dtype)to, 1, SHAPE(N)));
        OK(gen__tensor_alloc(&back, gpu, GEN__F32, 1, SHAPE(N)));
        OK(gen__tensor_upload(&src, h, N * 4));
        OK(gen__convert(&dst, &src));
        OK(gen__convert(&back, &dst));
        uint16_t *got = malloc(N * 2), *want = malloc(N * 2);
        float *gb = malloc(N * 4), *wb = malloc(N * 4);
        OK(gen__tensor_download(&dst, got, N * 2));
        OK(gen__tensor_download(&back, gb, N * 4));
        gen__convert_host(want, (gen__dtype)to, h, GEN__F32, N);
        gen__convert_host(wb, GEN__F32, want, (gen__dtype)to, N);
        int bad = 0;
        for (int i = 0; i < N; i++)
            bad += got[i] != want[i] || memcmp(&gb[i], &wb[i], 4) != 0;
        checks++;
        failures += bad != 0;
        printf("RESULT %-20s %-4s %-40s %d mismatches %s\n", "convert", gen__dtype_name(to),
               "f32 -> dtype -> f32 bit-exact", bad, bad ? "FAIL" : "PASS");
        free(got);
        free(want);
        free(gb);
        free(wb);
        gen__tensor_free(&src);
        gen__tensor_free(&dst);
        gen__tensor_free(&back);
    }
    free(h);
}

static void test_memory(int index)
{
    gen__backend_mem_info a, b;
    gen__backend_memory(gpu, &a);
    gen__tensor t;
    OK(gen__tensor_alloc(&t, gpu, GEN__F16, 2, SHAPE(1000, 1001)));
    gen__backend_memory(gpu, &b);
    bool ok = b.bytes_in_use - a.bytes_in_use == 2002000 && b.peak_bytes >= b.bytes_in_use &&
              b.capacity > 0 && b.available > 0 && b.available <= b.capacity;
    gen__tensor_free(&t);
    gen__backend_memory(gpu, &b);
    ok = ok && b.bytes_in_use == a.bytes_in_use;
    checks++;
    failures += !ok;
    printf("RESULT %-20s %-4s %-40s %s\n", "memory", "-", "in-use exact, capacity, available",
           ok ? "PASS" : "FAIL");

    /* a limited second backend on the same device: OOM names the device and the size */
    gen__backend *small = NULL;
    gen__cuda_backend_options o = {.index = index, .memory_limit = (uint64_t)64 << 20};
    OK(gen__cuda_backend_create(&small, &o));
    gen__tensor big;
    gen_status st = gen__tensor_alloc(&big, small, GEN__F32, 1, SHAPE((int64_t)32 << 20));
    char want[32];
    snprintf(want, sizeof(want), "cuda:%d", index);
    ok = st == GEN_EDEVICE_OOM && strstr(gen_last_error_message(), want) &&
         strstr(gen_last_error_message(), "134217728");
    /* and a device-sized request fails cleanly too (no limit, real cudaMalloc failure) */
    gen__tensor huge;
    st = gen__tensor_alloc(&huge, gpu, GEN__F32, 2, SHAPE((int64_t)1 << 20, (int64_t)1 << 20));
    ok = ok && st == GEN_EDEVICE_OOM && strstr(gen_last_error_message(), want);
    gen__backend_destroy(small);
    /* the device still works afterwards */
    pair x = in_pair(1, SHAPE(100), 1.0f);
    compare("after_oom", "upload/download", &x);
    free_pair(&x);
    checks++;
    failures += !ok;
    printf("RESULT %-20s %-4s %-40s %s\n", "oom", "-", "GEN_EDEVICE_OOM names device and size",
           ok ? "PASS" : "FAIL");
}

/* A backend left in the default AUTO mode takes the tensor-core attention for
 * f16/bf16 once its on-device check agrees (sm_80+): FAIL here means the check
 * disagreed and users get the CUDA-core kernel (see attention_mma above). */
static void test_attention_auto(int index)
{
    gen__backend *aut = NULL;
    gen__cuda_backend_options o = {.index = index};
    OK(gen__cuda_backend_create(&aut, &o));
    gen__gpu_props props;
    OK(gen__gpu_props_get(index, &props));
    for (int d = GEN__F16; d <= GEN__BF16; d++) {
        if (!(aut->compute_dtypes & (1u << d)))
            continue;
        double err = NAN;
        int kernel = gen__cuda_backend_attention_kernel(aut, (gen__dtype)d, &err);
        bool want_mma = props.compute_capability >= 80;
        bool pass = (kernel == GEN__CUDA_ATTENTION_MMA) == want_mma;
        checks++;
        failures += !pass;
        printf("RESULT %-20s %-4s %-40s %.3e 2e-02 %s\n", "attention_auto",
               gen__dtype_name((gen__dtype)d),
               kernel == GEN__CUDA_ATTENTION_MMA ? "tensor_cores_after_the_device_check"
                                                 : "CUDA_core_kernel_chosen",
               err, pass ? "PASS" : "FAIL");
    }
    gen__backend_destroy(aut);
}

int main(int argc, char **argv)
{
    bool self_test = argc > 1 && strcmp(argv[1], "--cpu-as-gpu") == 0;
    int index = argc > 1 && !self_test ? atoi(argv[1]) : 0;
    const char *why = NULL;
    if (!self_test && gen__gpu_count(&why) == 0) {
        printf("SKIP no CUDA device: %s\n", why ? why : "none");
        return 77;
    }
    gen__cpu_backend_options co = {0, 0, 0};
    OK(gen__cpu_backend_create(&cpu, &co));
    if (self_test) {
        gen__cpu_backend_options co1 = {1, 0, 0};
        OK(gen__cpu_backend_create(&gpu, &co1));
    } else {
        gen__cuda_backend_options o = {.index = index};
        OK(gen__cuda_backend_create(&gpu, &o));
        gen__cuda_backend_set_attention(gpu, GEN__CUDA_ATTENTION_SIMPLE);
        OK(gen__cuda_backend_create(&gpu_mma, &o));
        if (!gen__cuda_backend_set_attention(gpu_mma, GEN__CUDA_ATTENTION_MMA)) {
            gen__backend_destroy(gpu_mma); /* before sm_80 */
            gpu_mma = NULL;
        }
    }
    gen__gpu_props props;
    if (!self_test && gen__gpu_props_get(index, &props) == GEN_OK)
        printf("DEVICE %s, %llu MiB, compute capability %d.%d\n", props.name,
               (unsigned long long)(props.total_memory >> 20), props.compute_capability / 10,
               props.compute_capability % 10);
    for (int d = 0; d < GEN__DTYPE_COUNT; d++) {
        dt = (gen__dtype)d;
        if (!(gpu->compute_dtypes & (1u << d))) {
            printf("SKIP dtype %s (not supported by this GPU)\n", dname());
            continue;
        }
        test_gemm_linear();
        test_conv();
        test_norms();
        test_attention();
        test_attention_mma();
        test_elementwise();
        test_layout();
    }
    if (!self_test) {
        test_attention_auto(index);
        test_convert_exact();
        dt = GEN__F32;
        test_memory(index);
    }
    OK(gen__backend_synchronize(gpu));
    gen__backend_destroy(gpu_mma);
    gen__backend_destroy(gpu);
    gen__backend_destroy(cpu);
    printf("SUMMARY %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
