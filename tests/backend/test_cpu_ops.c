/* Every CPU op against a naive double-precision reference on random inputs of
 * odd shapes (relative L2 error < 1e-5), plus the error paths. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <gen/gen.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_internal.h"
#include "backend_test_util.h"
#include "core/alloc.h"

#define TOL 1e-5

static gen__backend *be;

static int setup(void **state)
{
    (void)state;
    /* 3 threads by default: uneven splits even on a 2-core machine; meson also
     * runs the suite with 1 thread (the inline path of a cpu:N budget of 1) */
    const char *env = getenv("GEN_TEST_CPU_THREADS");
    gen__cpu_backend_options o = {0, env ? atoi(env) : 3, 0};
    return gen__cpu_backend_create(&be, &o) == GEN_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    gen__backend_mem_info mi;
    gen__backend_memory(be, &mi);
    gen__backend_destroy(be);
    return 0;
}

/* a tensor of random values; the host copy is returned in *host */
static gen__tensor rnd(int ndim, const int64_t *shape, uint64_t seed, float **host)
{
    gen__tensor t;
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    float *h = tu_random(n, seed);
    assert_int_equal(tu_tensor(&t, be, ndim, shape, h), GEN_OK);
    if (host)
        *host = h;
    else
        free(h);
    return t;
}

static gen__tensor empty(int ndim, const int64_t *shape)
{
    gen__tensor t;
    assert_int_equal(gen__tensor_alloc(&t, be, GEN__F32, ndim, shape), GEN_OK);
    return t;
}

static void check(const gen__tensor *t, const double *ref, const char *what)
{
    float *got = tu_download(t);
    assert_non_null(got);
    double err = tu_rel_l2(got, ref, (size_t)gen__tensor_numel(t));
    if (!(err < TOL))
        fail_msg("%s: relative L2 error %g", what, err);
    free(got);
}

/* ---- gemm / linear ------------------------------------------------------------------ */

static void gemm_case(int64_t batch, int64_t ba, int64_t bb, int64_t m, int64_t n, int64_t k,
                      bool ta, bool tb, float alpha, float beta, uint64_t seed)
{
    int64_t as[3] = {ba, ta ? k : m, ta ? m : k};
    int64_t bs[3] = {bb, tb ? n : k, tb ? k : n};
    int64_t cs[3] = {batch, m, n};
    float *ha, *hb, *hc;
    gen__tensor a = rnd(3, as, seed, &ha), b = rnd(3, bs, seed + 1, &hb), c = rnd(3, cs, seed + 2, &hc);
    double *ref = malloc(sizeof(double) * (size_t)(batch * m * n));
    for (int64_t z = 0; z < batch; z++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                const float *pa = ha + (ba == 1 ? 0 : z * m * k);
                const float *pb = hb + (bb == 1 ? 0 : z * k * n);
                double s = 0.0;
                for (int64_t p = 0; p < k; p++)
                    s += (double)(ta ? pa[p * m + i] : pa[i * k + p]) *
                         (double)(tb ? pb[j * k + p] : pb[p * n + j]);
                double old = beta == 0.0f ? 0.0 : (double)beta * hc[(z * m + i) * n + j];
                ref[(z * m + i) * n + j] = alpha * s + old;
            }
    assert_int_equal(gen__gemm(&c, &a, &b, ta, tb, alpha, beta), GEN_OK);
    char what[128];
    snprintf(what, sizeof(what), "gemm b%lld m%lld n%lld k%lld ta%d tb%d", (long long)batch,
             (long long)m, (long long)n, (long long)k, ta, tb);
    check(&c, ref, what);
    free(ha), free(hb), free(hc), free(ref);
    gen__tensor_free(&a), gen__tensor_free(&b), gen__tensor_free(&c);
}

static void test_gemm(void **state)
{
    (void)state;
    for (int t = 0; t < 4; t++) {
        gemm_case(1, 1, 1, 7, 13, 5, t & 1, t & 2, 1.0f, 0.0f, 10 + t);
        gemm_case(3, 3, 3, 33, 65, 17, t & 1, t & 2, 0.5f, 1.5f, 20 + t);
        gemm_case(5, 1, 5, 19, 3, 29, t & 1, t & 2, 1.0f, 0.0f, 30 + t);
        gemm_case(2, 2, 1, 131, 77, 41, t & 1, t & 2, -2.0f, 0.25f, 40 + t);
        gemm_case(1, 1, 1, 3, 301, 11, t & 1, t & 2, 1.0f, 0.0f, 50 + t);
    }
}

static void test_linear(void **state)
{
    (void)state;
    int64_t xs[3] = {2, 5, 37}, ws[2] = {23, 37}, bs[1] = {23}, os[3] = {2, 5, 23};
    float *hx, *hw, *hb;
    gen__tensor x = rnd(3, xs, 1, &hx), w = rnd(2, ws, 2, &hw), b = rnd(1, bs, 3, &hb);
    gen__tensor out = empty(3, os);
    double ref[2 * 5 * 23], ref_nb[2 * 5 * 23];
    for (int r = 0; r < 10; r++)
        for (int o = 0; o < 23; o++) {
            double s = 0.0;
            for (int i = 0; i < 37; i++)
                s += (double)hx[r * 37 + i] * hw[o * 37 + i];
            ref[r * 23 + o] = s + hb[o];
            ref_nb[r * 23 + o] = s;
        }
    assert_int_equal(gen__linear(&out, &x, &w, &b), GEN_OK);
    check(&out, ref, "linear");
    assert_int_equal(gen__linear(&out, &x, &w, NULL), GEN_OK);
    check(&out, ref_nb, "linear without bias");
    /* errors name the op and the shapes */
    int64_t bad[2] = {23, 36};
    gen__tensor wb = empty(2, bad);
    assert_int_equal(gen__linear(&out, &x, &wb, &b), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "linear"));
    assert_non_null(strstr(gen_last_error_message(), "f32[23,36]"));
    free(hx), free(hw), free(hb);
    gen__tensor_free(&x), gen__tensor_free(&w), gen__tensor_free(&b), gen__tensor_free(&out);
    gen__tensor_free(&wb);
}

/* ---- conv2d -------------------------------------------------------------------------- */

static void conv_case(int64_t n, int64_t ci, int64_t h, int64_t w, int64_t co, int kh, int kw,
                      gen__conv2d_params p, bool bias, uint64_t seed)
{
    int64_t ho = gen__conv2d_out_size(h, kh, p.stride_h, p.pad_top, p.pad_bottom);
    int64_t wo = gen__conv2d_out_size(w, kw, p.stride_w, p.pad_left, p.pad_right);
    int64_t xs[4] = {n, ci, h, w}, ws[4] = {co, ci, kh, kw}, bs[1] = {co}, os[4] = {n, co, ho, wo};
    float *hx, *hw, *hb;
    gen__tensor x = rnd(4, xs, seed, &hx), wt = rnd(4, ws, seed + 1, &hw), b = rnd(1, bs, seed + 2, &hb);
    gen__tensor out = empty(4, os);
    double *ref = malloc(sizeof(double) * (size_t)(n * co * ho * wo));
    for (int64_t in = 0; in < n; in++)
        for (int64_t o = 0; o < co; o++)
            for (int64_t y = 0; y < ho; y++)
                for (int64_t xx = 0; xx < wo; xx++) {
                    double s = bias ? hb[o] : 0.0;
                    for (int64_t c = 0; c < ci; c++)
                        for (int ky = 0; ky < kh; ky++)
                            for (int kx = 0; kx < kw; kx++) {
                                int64_t iy = y * p.stride_h - p.pad_top + ky;
                                int64_t ix = xx * p.stride_w - p.pad_left + kx;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                                    continue;
                                s += (double)hx[((in * ci + c) * h + iy) * w + ix] *
                                     hw[((o * ci + c) * kh + ky) * kw + kx];
                            }
                    ref[((in * co + o) * ho + y) * wo + xx] = s;
                }
    assert_int_equal(gen__conv2d(&out, &x, &wt, bias ? &b : NULL, &p), GEN_OK);
    char what[160];
    snprintf(what, sizeof(what), "conv2d %lldx%lldx%lldx%lld -> %lld k%dx%d s%d,%d p%d,%d,%d,%d",
             (long long)n, (long long)ci, (long long)h, (long long)w, (long long)co, kh, kw,
             p.stride_h, p.stride_w, p.pad_top, p.pad_bottom, p.pad_left, p.pad_right);
    check(&out, ref, what);
    free(hx), free(hw), free(hb), free(ref);
    gen__tensor_free(&x), gen__tensor_free(&wt), gen__tensor_free(&b), gen__tensor_free(&out);
}

static void test_conv2d(void **state)
{
    (void)state;
    conv_case(2, 3, 9, 11, 5, 3, 3, gen__conv2d_simple(1, 1), true, 1);
    conv_case(1, 7, 13, 10, 6, 3, 3, gen__conv2d_simple(2, 1), true, 2);
    gen__conv2d_params down = {2, 2, 0, 1, 0, 1}; /* VAE Downsample2D */
    conv_case(2, 4, 11, 9, 3, 3, 3, down, false, 3);
    conv_case(3, 5, 7, 9, 11, 1, 1, gen__conv2d_simple(1, 0), true, 4);  /* 1x1 fast path */
    conv_case(1, 5, 7, 9, 4, 1, 1, gen__conv2d_simple(2, 0), true, 5);   /* strided 1x1 */
    conv_case(1, 3, 8, 12, 2, 5, 3, (gen__conv2d_params){1, 2, 2, 1, 0, 3}, true, 6);
    conv_case(1, 37, 41, 43, 9, 3, 3, gen__conv2d_simple(1, 1), true, 7); /* several pixel blocks */
    conv_case(1, 64, 3, 3, 65, 3, 3, gen__conv2d_simple(1, 1), true, 8); /* channel split */
}

/* Winograd F(2x2, 3x3): forced on small and odd shapes (partial tiles at the
 * right and bottom, every padding), then chosen by itself for a UNet-like
 * shape; each against the direct double-precision reference. */
static void test_conv2d_winograd(void **state)
{
    (void)state;
    gen__cpu_conv_algorithm = GEN__CPU_CONV_WINOGRAD;
    conv_case(2, 3, 9, 11, 5, 3, 3, gen__conv2d_simple(1, 1), true, 21);
    conv_case(1, 7, 13, 10, 6, 3, 3, gen__conv2d_simple(1, 0), false, 22);   /* valid: 11x8 */
    conv_case(1, 5, 6, 7, 4, 3, 3, gen__conv2d_simple(1, 2), true, 23);      /* pad 2: 8x9 */
    conv_case(3, 4, 5, 5, 3, 3, 3, (gen__conv2d_params){1, 1, 0, 2, 2, 0}, true, 24);
    conv_case(1, 37, 41, 43, 9, 3, 3, gen__conv2d_simple(1, 1), true, 25);  /* several tile blocks */
    conv_case(1, 1, 2, 2, 1, 3, 3, gen__conv2d_simple(1, 1), true, 26);     /* one partial... */
    conv_case(1, 2, 1, 1, 3, 3, 3, gen__conv2d_simple(1, 1), true, 27);     /* ...tile of one pixel */
    gen__cpu_conv_algorithm = GEN__CPU_CONV_AUTO;
    gen__conv2d_params same = gen__conv2d_simple(1, 1);
    assert_true(gen__cpu_winograd_fits(64, 48, 3, 3, &same, 32, 34));
    assert_false(gen__cpu_winograd_fits(64, 48, 3, 3, &same, 8, 8));          /* too few tiles */
    gen__conv2d_params down = {2, 2, 0, 1, 0, 1};
    assert_false(gen__cpu_winograd_fits(64, 48, 3, 3, &down, 32, 32));        /* stride 2 */
    conv_case(2, 64, 32, 34, 48, 3, 3, same, true, 28);
}

static void test_conv2d_errors(void **state)
{
    (void)state;
    int64_t xs[4] = {1, 4, 8, 8}, ws[4] = {6, 3, 3, 3}, os[4] = {1, 6, 8, 8};
    gen__tensor x = empty(4, xs), w = empty(4, ws), out = empty(4, os);
    gen__conv2d_params p = gen__conv2d_simple(1, 1);
    assert_int_equal(gen__conv2d(&out, &x, &w, NULL, &p), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "conv2d"));
    assert_non_null(strstr(gen_last_error_message(), "f32[6,3,3,3]"));
    assert_non_null(strstr(gen_last_error_message(), "f32[1,4,8,8]"));
    int64_t ws2[4] = {6, 4, 3, 3}, os2[4] = {1, 6, 7, 8};
    gen__tensor w2 = empty(4, ws2), out2 = empty(4, os2);
    assert_int_equal(gen__conv2d(&out2, &x, &w2, NULL, &p), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "[1,6,8,8]"));
    gen__tensor_free(&x), gen__tensor_free(&w), gen__tensor_free(&out);
    gen__tensor_free(&w2), gen__tensor_free(&out2);
}

/* ---- norms and softmax ------------------------------------------------------------------ */

static void group_norm_case(int ndim, const int64_t *shape, int groups, bool affine, bool silu,
                            uint64_t seed)
{
    float *hx, *hg, *hb;
    int64_t cs[1] = {shape[1]};
    gen__tensor x = rnd(ndim, shape, seed, &hx), g = rnd(1, cs, seed + 1, &hg), b = rnd(1, cs, seed + 2, &hb);
    gen__tensor out = empty(ndim, shape);
    int64_t n = shape[0], c = shape[1], sp = 1;
    for (int i = 2; i < ndim; i++)
        sp *= shape[i];
    int64_t cpg = c / groups, len = cpg * sp;
    double *ref = malloc(sizeof(double) * (size_t)(n * c * sp));
    for (int64_t i = 0; i < n * groups; i++) {
        const float *xs = hx + i * len;
        double mean = 0, var = 0;
        for (int64_t k = 0; k < len; k++)
            mean += xs[k];
        mean /= (double)len;
        for (int64_t k = 0; k < len; k++)
            var += (xs[k] - mean) * (xs[k] - mean);
        var /= (double)len;
        for (int64_t k = 0; k < len; k++) {
            int64_t ch = (i % groups) * cpg + k / sp;
            double y = (xs[k] - mean) / sqrt(var + 1e-5);
            if (affine)
                y = y * hg[ch] + hb[ch];
            if (silu)
                y = y / (1.0 + exp(-y));
            ref[i * len + k] = y;
        }
    }
    assert_int_equal(gen__group_norm(&out, &x, affine ? &g : NULL, affine ? &b : NULL, groups,
                                     1e-5f, silu), GEN_OK);
    check(&out, ref, "group_norm");
    /* in place */
    assert_int_equal(gen__group_norm(&x, &x, affine ? &g : NULL, affine ? &b : NULL, groups,
                                     1e-5f, silu), GEN_OK);
    check(&x, ref, "group_norm in place");
    free(hx), free(hg), free(hb), free(ref);
    gen__tensor_free(&x), gen__tensor_free(&g), gen__tensor_free(&b), gen__tensor_free(&out);
}

static void test_group_norm(void **state)
{
    (void)state;
    int64_t s1[4] = {2, 6, 5, 7}, s2[3] = {3, 8, 9}, s3[4] = {1, 32, 3, 5};
    group_norm_case(4, s1, 3, true, false, 1);
    group_norm_case(4, s1, 2, true, true, 2);
    group_norm_case(3, s2, 4, false, false, 3);
    group_norm_case(4, s3, 32, true, true, 4);
    int64_t cs[1] = {6};
    gen__tensor x = empty(4, s1), g = empty(1, cs);
    assert_int_equal(gen__group_norm(&x, &x, &g, &g, 4, 1e-5f, false), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "4 groups"));
    gen__tensor_free(&x), gen__tensor_free(&g);
}

static void test_layer_norm(void **state)
{
    (void)state;
    int64_t s[3] = {3, 5, 19}, d[1] = {19};
    float *hx, *hg, *hb;
    gen__tensor x = rnd(3, s, 1, &hx), g = rnd(1, d, 2, &hg), b = rnd(1, d, 3, &hb), out = empty(3, s);
    double ref[3 * 5 * 19], ref2[3 * 5 * 19];
    for (int r = 0; r < 15; r++) {
        double mean = 0, var = 0;
        for (int i = 0; i < 19; i++)
            mean += hx[r * 19 + i];
        mean /= 19;
        for (int i = 0; i < 19; i++)
            var += (hx[r * 19 + i] - mean) * (hx[r * 19 + i] - mean);
        var /= 19;
        for (int i = 0; i < 19; i++) {
            double y = (hx[r * 19 + i] - mean) / sqrt(var + 1e-5);
            ref[r * 19 + i] = y * hg[i] + hb[i];
            ref2[r * 19 + i] = y * hg[i];
        }
    }
    assert_int_equal(gen__layer_norm(&out, &x, &g, &b, 1e-5f), GEN_OK);
    check(&out, ref, "layer_norm");
    assert_int_equal(gen__layer_norm(&out, &x, &g, NULL, 1e-5f), GEN_OK);
    check(&out, ref2, "layer_norm gamma only");
    free(hx), free(hg), free(hb);
    gen__tensor_free(&x), gen__tensor_free(&g), gen__tensor_free(&b), gen__tensor_free(&out);
}

static void test_softmax(void **state)
{
    (void)state;
    int64_t s[2] = {37, 33};
    float *hx;
    gen__tensor x = rnd(2, s, 5, &hx), out = empty(2, s);
    double ref[37 * 33];
    for (int r = 0; r < 37; r++) {
        double mx = -INFINITY, sum = 0;
        for (int i = 0; i < 33; i++)
            mx = fmax(mx, 3.0 * hx[r * 33 + i]);
        for (int i = 0; i < 33; i++)
            sum += exp(3.0 * hx[r * 33 + i] - mx);
        for (int i = 0; i < 33; i++)
            ref[r * 33 + i] = exp(3.0 * hx[r * 33 + i] - mx) / sum;
    }
    assert_int_equal(gen__softmax(&out, &x, 3.0f), GEN_OK);
    check(&out, ref, "softmax");
    assert_int_equal(gen__softmax(&x, &x, 3.0f), GEN_OK);
    check(&x, ref, "softmax in place");
    free(hx);
    gen__tensor_free(&x), gen__tensor_free(&out);
}

/* ---- attention ------------------------------------------------------------------------ */

/* reference for the query rows [r0, r1) of batch b; ref is [rows, H*Dv] */
static void attention_ref(const float *q, const float *k, const float *v, int64_t nq, int64_t nk,
                          int heads, int64_t dk, int64_t dv, float scale, bool causal, int64_t b,
                          int64_t r0, int64_t r1, double *ref)
{
    double *s = malloc(sizeof(double) * (size_t)nk);
    for (int h = 0; h < heads; h++)
        for (int64_t i = r0; i < r1; i++) {
            const float *qi = q + (b * nq + i) * heads * dk + h * dk;
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < nk; j++) {
                const float *kj = k + (b * nk + j) * heads * dk + h * dk;
                double d = 0;
                for (int64_t c = 0; c < dk; c++)
                    d += (double)qi[c] * kj[c];
                s[j] = causal && j > i ? -INFINITY : d * scale;
                mx = fmax(mx, s[j]);
            }
            for (int64_t j = 0; j < nk; j++)
                sum += s[j] = exp(s[j] - mx);
            for (int64_t c = 0; c < dv; c++) {
                double o = 0;
                for (int64_t j = 0; j < nk; j++)
                    o += s[j] / sum * v[(b * nk + j) * heads * dv + h * dv + c];
                ref[(i - r0) * heads * dv + h * dv + c] = o;
            }
        }
    free(s);
}

static void attention_case(int64_t bsz, int64_t nq, int64_t nk, int heads, int64_t dk, int64_t dv,
                           bool causal, uint64_t seed)
{
    int64_t qs[3] = {bsz, nq, heads * dk}, ks[3] = {bsz, nk, heads * dk}, vs[3] = {bsz, nk, heads * dv};
    int64_t os[3] = {bsz, nq, heads * dv};
    float *hq, *hk, *hv;
    gen__tensor q = rnd(3, qs, seed, &hq), k = rnd(3, ks, seed + 1, &hk), v = rnd(3, vs, seed + 2, &hv);
    gen__tensor out = empty(3, os);
    float scale = 1.0f / sqrtf((float)dk) * 2.0f; /* sharper than uniform */
    double *ref = malloc(sizeof(double) * (size_t)(bsz * nq * heads * dv));
    for (int64_t b = 0; b < bsz; b++)
        attention_ref(hq, hk, hv, nq, nk, heads, dk, dv, scale, causal, b, 0, nq,
                      ref + b * nq * heads * dv);
    assert_int_equal(gen__attention(&out, &q, &k, &v, heads, scale, causal), GEN_OK);
    check(&out, ref, causal ? "attention causal" : "attention");
    free(hq), free(hk), free(hv), free(ref);
    gen__tensor_free(&q), gen__tensor_free(&k), gen__tensor_free(&v), gen__tensor_free(&out);
}

static void test_attention(void **state)
{
    (void)state;
    attention_case(2, 67, 45, 3, 7, 5, false, 1);
    attention_case(1, 130, 130, 2, 16, 16, false, 2);
    attention_case(2, 77, 77, 3, 8, 8, true, 3);   /* CLIP-like */
    attention_case(1, 150, 77, 4, 5, 6, false, 4); /* cross-attention shape */
    attention_case(1, 70, 50, 1, 9, 9, true, 5);
    attention_case(2, 50, 170, 2, 9, 4, true, 6); /* more keys than queries */
    /* several key blocks (512 keys each): the online softmax's rescaling */
    attention_case(1, 140, 1200, 2, 8, 8, false, 7);
    attention_case(1, 1100, 1100, 2, 8, 6, true, 8);   /* causal across key blocks */
    attention_case(2, 600, 1300, 1, 12, 12, true, 9);  /* causal, more keys than queries */
    int64_t s[3] = {1, 8, 12};
    gen__tensor q = empty(3, s), o = empty(3, s);
    assert_int_equal(gen__attention(&o, &q, &q, &q, 5, 1.0f, false), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "5 heads"));
    assert_int_equal(gen__attention(&q, &q, &q, &q, 4, 1.0f, false), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "overlaps"));
    gen__tensor_free(&q), gen__tensor_free(&o);
}

/* N = 4096 (a 64x64 latent): the [heads, N, N] scores would take 8*4096*4096*4
 * = 512 MiB; the backend's whole working set must stay far below it. */
static void test_attention_4096_memory(void **state)
{
    (void)state;
    if (getenv("GEN_UNDER_VALGRIND"))
        skip(); /* 21 GFLOP: minutes under valgrind; the ASan/TSan runs cover it */
    int64_t n = 4096, heads = 8, d = 40;
    int64_t s[3] = {1, n, heads * d};
    float *hq, *hk, *hv;
    gen__tensor q = rnd(3, s, 11, &hq), k = rnd(3, s, 12, &hk), v = rnd(3, s, 13, &hv);
    gen__tensor out = empty(3, s);
    gen__backend_mem_info before, after;
    gen__backend_memory(be, &before);
    gen__backend_reset_peak(be);
    assert_int_equal(gen__attention(&out, &q, &k, &v, (int)heads, 1.0f / sqrtf(40.0f), false), GEN_OK);
    gen__backend_memory(be, &after);
    uint64_t extra = after.peak_bytes - before.bytes_in_use;
    uint64_t full = (uint64_t)heads * n * n * sizeof(float);
    print_message("attention N=4096: %llu bytes of working memory (full score matrix: %llu)\n",
                  (unsigned long long)extra, (unsigned long long)full);
    assert_true(extra < full / 64);
    /* spot-check rows at both ends and in the middle */
    float *got = tu_download(&out);
    double *ref = malloc(sizeof(double) * 3 * heads * d);
    int64_t rows[3] = {0, 2047, 4095};
    for (int r = 0; r < 3; r++) {
        attention_ref(hq, hk, hv, n, n, (int)heads, d, d, 1.0f / sqrtf(40.0f), false, 0, rows[r],
                      rows[r] + 1, ref);
        double err = tu_rel_l2(got + rows[r] * heads * d, ref, (size_t)(heads * d));
        assert_true(err < TOL);
    }
    free(got), free(ref), free(hq), free(hk), free(hv);
    gen__tensor_free(&q), gen__tensor_free(&k), gen__tensor_free(&v), gen__tensor_free(&out);
}

/* ---- element-wise ------------------------------------------------------------------- */

static double ref_unary(double x, gen__unary_op op)
{
    switch (op) {
    case GEN__UNARY_SILU: return x / (1 + exp(-x));
    case GEN__UNARY_GELU: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case GEN__UNARY_GELU_TANH: return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    case GEN__UNARY_QUICK_GELU: return x / (1 + exp(-1.702 * x));
    default: return NAN;
    }
}

static void test_unary_geglu(void **state)
{
    (void)state;
    int64_t s[3] = {3, 7, 2 * 2053};
    int64_t n = 3 * 7 * 2 * 2053;
    float *hx;
    gen__tensor x = rnd(3, s, 3, &hx), out = empty(3, s);
    for (size_t i = 0; i < (size_t)n; i++)
        hx[i] *= 6.0f; /* reach the tails */
    assert_int_equal(gen__tensor_upload(&x, hx, gen__tensor_nbytes(&x)), GEN_OK);
    double *ref = malloc(sizeof(double) * (size_t)n);
    for (int op = 0; op < GEN__UNARY_COUNT; op++) {
        for (int64_t i = 0; i < n; i++)
            ref[i] = ref_unary(hx[i], (gen__unary_op)op);
        assert_int_equal(gen__unary(&out, &x, (gen__unary_op)op), GEN_OK);
        check(&out, ref, "unary");
    }
    int64_t gs[3] = {3, 7, 2053};
    gen__tensor g = empty(3, gs);
    for (int64_t r = 0; r < 21; r++)
        for (int64_t i = 0; i < 2053; i++)
            ref[r * 2053 + i] = hx[r * 4106 + i] * ref_unary(hx[r * 4106 + 2053 + i], GEN__UNARY_GELU);
    assert_int_equal(gen__geglu(&g, &x), GEN_OK);
    check(&g, ref, "geglu");
    /* in place silu */
    for (int64_t i = 0; i < n; i++)
        ref[i] = ref_unary(hx[i], GEN__UNARY_SILU);
    assert_int_equal(gen__silu(&x, &x), GEN_OK);
    check(&x, ref, "silu in place");
    /* in place is allowed, a shifted overlap is not; GEGLU never in place */
    gen__tensor a, b;
    assert_int_equal(gen__tensor_view(&a, &x, 1, (int64_t[]){1000}, 0), GEN_OK);
    assert_int_equal(gen__tensor_view(&b, &x, 1, (int64_t[]){1000}, 1), GEN_OK);
    assert_int_equal(gen__silu(&b, &a), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "overlaps"));
    gen__tensor gv;
    assert_int_equal(gen__tensor_view3(&gv, &x, 3, 7, 2053, 0), GEN_OK);
    assert_int_equal(gen__geglu(&gv, &x), GEN_EINVAL);
    free(hx), free(ref);
    gen__tensor_free(&x), gen__tensor_free(&out), gen__tensor_free(&g);
}

static void binary_case(int na, const int64_t *sa, int nb, const int64_t *sb, uint64_t seed)
{
    float *ha, *hb;
    gen__tensor a = rnd(na, sa, seed, &ha), b = rnd(nb, sb, seed + 1, &hb);
    int nd = na > nb ? na : nb;
    int64_t so[5];
    for (int i = 0; i < nd; i++) {
        int ia = na - nd + i, ib = nb - nd + i;
        int64_t da = ia >= 0 ? sa[ia] : 1, db = ib >= 0 ? sb[ib] : 1;
        so[i] = da > db ? da : db;
    }
    gen__tensor out = empty(nd, so);
    int64_t n = gen__tensor_numel(&out);
    double *radd = malloc(sizeof(double) * (size_t)n), *rmul = malloc(sizeof(double) * (size_t)n);
    for (int64_t e = 0; e < n; e++) {
        int64_t rem = e, ia = 0, ib = 0, mula = 1, mulb = 1;
        for (int i = nd - 1; i >= 0; i--) {
            int64_t idx = rem % so[i];
            rem /= so[i];
            int da_i = na - nd + i, db_i = nb - nd + i;
            if (da_i >= 0) {
                ia += (sa[da_i] == 1 ? 0 : idx) * mula;
                mula *= sa[da_i];
            }
            if (db_i >= 0) {
                ib += (sb[db_i] == 1 ? 0 : idx) * mulb;
                mulb *= sb[db_i];
            }
        }
        radd[e] = (double)ha[ia] + hb[ib];
        rmul[e] = (double)ha[ia] * hb[ib];
    }
    assert_int_equal(gen__add(&out, &a, &b), GEN_OK);
    check(&out, radd, "add");
    assert_int_equal(gen__mul(&out, &a, &b), GEN_OK);
    check(&out, rmul, "mul");
    free(ha), free(hb), free(radd), free(rmul);
    gen__tensor_free(&a), gen__tensor_free(&b), gen__tensor_free(&out);
}

static void test_binary(void **state)
{
    (void)state;
    int64_t x[4] = {2, 5, 7, 9}, ch[4] = {1, 5, 1, 1}, nc[4] = {2, 5, 1, 1}, row[1] = {9};
    int64_t t1[3] = {3, 11, 13}, t2[2] = {11, 13}, t3[3] = {3, 1, 13}, t4[2] = {11, 1};
    int64_t big[2] = {300, 257};
    binary_case(4, x, 4, x, 1);
    binary_case(4, x, 4, ch, 2);
    binary_case(4, x, 4, nc, 3);
    binary_case(4, x, 1, row, 4);
    binary_case(3, t1, 2, t2, 5);
    binary_case(3, t3, 2, t4, 6); /* both broadcast: [3,11,13] */
    binary_case(4, ch, 4, x, 7);
    binary_case(2, big, 2, big, 8);
    int64_t bad[1] = {8};
    gen__tensor a = empty(4, x), b = empty(1, bad);
    assert_int_equal(gen__add(&a, &a, &b), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "add"));
    assert_non_null(strstr(gen_last_error_message(), "f32[8]"));
    gen__tensor_free(&a), gen__tensor_free(&b);
}

static void test_axpby_fill(void **state)
{
    (void)state;
    int64_t s[2] = {123, 457};
    int64_t n = 123 * 457;
    float *ha, *hb;
    gen__tensor a = rnd(2, s, 1, &ha), b = rnd(2, s, 2, &hb), out = empty(2, s);
    double *ref = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        ref[i] = 0.75 * ha[i] - 1.5 * hb[i];
    assert_int_equal(gen__axpby(&out, 0.75f, &a, -1.5f, &b), GEN_OK);
    check(&out, ref, "axpby");
    for (int64_t i = 0; i < n; i++)
        ref[i] = 3.0 * ha[i];
    assert_int_equal(gen__scale(&a, &a, 3.0f), GEN_OK);
    check(&a, ref, "scale in place");
    for (int64_t i = 0; i < n; i++)
        ref[i] = -0.5;
    assert_int_equal(gen__fill(&out, -0.5f), GEN_OK);
    check(&out, ref, "fill");
    free(ha), free(hb), free(ref);
    gen__tensor_free(&a), gen__tensor_free(&b), gen__tensor_free(&out);
}

/* ---- layout ----------------------------------------------------------------------------- */

static void test_upsample_concat_transpose(void **state)
{
    (void)state;
    int64_t xs[4] = {2, 3, 5, 7}, us[4] = {2, 3, 10, 14};
    float *hx;
    gen__tensor x = rnd(4, xs, 1, &hx), up = empty(4, us);
    double *ref = malloc(sizeof(double) * 2 * 3 * 10 * 14);
    for (int c = 0; c < 6; c++)
        for (int y = 0; y < 10; y++)
            for (int xx = 0; xx < 14; xx++)
                ref[(c * 10 + y) * 14 + xx] = hx[(c * 5 + y / 2) * 7 + xx / 2];
    assert_int_equal(gen__upsample_nearest2x(&up, &x), GEN_OK);
    check(&up, ref, "upsample");
    free(ref);

    int64_t bs[4] = {2, 4, 5, 7}, cs[4] = {2, 7, 5, 7};
    float *hb;
    gen__tensor b = rnd(4, bs, 2, &hb), cat = empty(4, cs);
    ref = malloc(sizeof(double) * 2 * 7 * 35);
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 7; c++)
            for (int i = 0; i < 35; i++)
                ref[(n * 7 + c) * 35 + i] = c < 3 ? hx[(n * 3 + c) * 35 + i] : hb[(n * 4 + c - 3) * 35 + i];
    assert_int_equal(gen__concat(&cat, &x, &b, 1), GEN_OK);
    check(&cat, ref, "concat dim 1");
    free(ref);
    int64_t ls[4] = {2, 3, 5, 14};
    gen__tensor last = empty(4, ls);
    ref = malloc(sizeof(double) * 2 * 3 * 5 * 14);
    for (int r = 0; r < 30; r++)
        for (int i = 0; i < 14; i++)
            ref[r * 14 + i] = hx[r * 7 + i % 7];
    assert_int_equal(gen__concat(&last, &x, &x, -1), GEN_OK);
    check(&last, ref, "concat last dim");
    free(ref);

    /* NCHW [2,3,35] <-> N(HW)C [2,35,3] */
    gen__tensor v, t;
    assert_int_equal(gen__tensor_view3(&v, &x, 2, 3, 35, 0), GEN_OK);
    int64_t ts[3] = {2, 35, 3};
    t = empty(3, ts);
    ref = malloc(sizeof(double) * 2 * 35 * 3);
    for (int n = 0; n < 2; n++)
        for (int p = 0; p < 35; p++)
            for (int c = 0; c < 3; c++)
                ref[(n * 35 + p) * 3 + c] = hx[(n * 3 + c) * 35 + p];
    assert_int_equal(gen__transpose(&t, &v), GEN_OK);
    check(&t, ref, "transpose");
    free(ref);
    int64_t big[3] = {1, 77, 130}, bigt[3] = {1, 130, 77};
    float *hbig;
    gen__tensor tb = rnd(3, big, 9, &hbig), tbt = empty(3, bigt);
    ref = malloc(sizeof(double) * 77 * 130);
    for (int p = 0; p < 77; p++)
        for (int q = 0; q < 130; q++)
            ref[q * 77 + p] = hbig[p * 130 + q];
    assert_int_equal(gen__transpose(&tbt, &tb), GEN_OK);
    check(&tbt, ref, "transpose tiles");
    free(ref), free(hbig), free(hx), free(hb);
    gen__tensor_free(&x), gen__tensor_free(&up), gen__tensor_free(&b), gen__tensor_free(&cat);
    gen__tensor_free(&last), gen__tensor_free(&t), gen__tensor_free(&tb), gen__tensor_free(&tbt);
}

/* ---- embeddings and dtype conversion ------------------------------------------------------ */

static void test_timestep_embedding(void **state)
{
    (void)state;
    const float ts[3] = {0.0f, 1.5f, 7.0f}; /* small t: f32 steps agree with double to 1e-6 */
    int64_t s[2] = {3, 321};
    gen__tensor out = empty(2, s);
    double ref[3 * 321];
    for (int flip = 0; flip < 2; flip++) {
        for (int r = 0; r < 3; r++) {
            int half = 160;
            for (int i = 0; i < half; i++) {
                double e = exp(-log(10000.0) * i / (half - 1.0)) * ts[r] * 2.0;
                ref[r * 321 + i] = flip ? cos(e) : sin(e);
                ref[r * 321 + half + i] = flip ? sin(e) : cos(e);
            }
            ref[r * 321 + 320] = 0.0;
        }
        assert_int_equal(gen__timestep_embedding(&out, ts, 3, flip, 1.0f, 2.0f, 10000.0f), GEN_OK);
        check(&out, ref, "timestep_embedding");
    }
    /* t = 999 follows torch's f32 steps: within f32 rounding of the argument */
    const float big[1] = {999.0f};
    int64_t s1[2] = {1, 320};
    gen__tensor o1 = empty(2, s1);
    assert_int_equal(gen__timestep_embedding(&o1, big, 1, true, 0.0f, 1.0f, 10000.0f), GEN_OK);
    float *got = tu_download(&o1);
    for (int i = 0; i < 160; i++) {
        double e = 999.0 * exp(-log(10000.0) * i / 160.0);
        assert_true(fabs(got[i] - cos(e)) < 2e-4);
        assert_true(fabs(got[160 + i] - sin(e)) < 2e-4);
    }
    free(got);
    gen__tensor_free(&out), gen__tensor_free(&o1);
}

static void test_embedding_convert(void **state)
{
    (void)state;
    int64_t ts[2] = {11, 6}, os[3] = {2, 3, 6};
    float *ht;
    gen__tensor table = rnd(2, ts, 4, &ht), out = empty(3, os);
    const int32_t ids[6] = {10, 0, 3, 3, 7, 1};
    double ref[36];
    for (int r = 0; r < 6; r++)
        for (int i = 0; i < 6; i++)
            ref[r * 6 + i] = ht[ids[r] * 6 + i];
    assert_int_equal(gen__embedding(&out, &table, ids, 6), GEN_OK);
    check(&out, ref, "embedding");
    const int32_t bad[6] = {1, 2, 11, 0, 0, 0};
    assert_int_equal(gen__embedding(&out, &table, bad, 6), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "id 11"));

    /* f32 -> f16 -> f32 on the device equals the host conversion */
    gen__tensor h, back;
    assert_int_equal(gen__tensor_alloc(&h, be, GEN__F16, 2, ts), GEN_OK);
    back = empty(2, ts);
    assert_int_equal(gen__convert(&h, &table), GEN_OK);
    assert_int_equal(gen__convert(&back, &h), GEN_OK);
    double ref2[66];
    for (int i = 0; i < 66; i++)
        ref2[i] = gen__f16_to_f32(gen__f32_to_f16(ht[i]));
    check(&back, ref2, "convert");
    /* the CPU backend stores f16 but does not compute in it */
    assert_int_equal(gen__silu(&h, &h), GEN_EUNSUPPORTED);
    assert_non_null(strstr(gen_last_error_message(), "f16"));
    assert_int_equal(gen__add(&back, &back, &h), GEN_EINVAL);
    free(ht);
    gen__tensor_free(&table), gen__tensor_free(&out), gen__tensor_free(&h), gen__tensor_free(&back);
}

/* ---- memory --------------------------------------------------------------------------------- */

static void test_memory_accounting_and_oom(void **state)
{
    (void)state;
    gen__backend *small;
    gen__cpu_backend_options o = {1, 1, 1 << 20};
    assert_int_equal(gen__cpu_backend_create(&small, &o), GEN_OK);
    assert_string_equal(small->name, "cpu:1");
    gen__backend_mem_info mi;
    gen__backend_memory(small, &mi);
    assert_int_equal(mi.bytes_in_use, 0);
    assert_int_equal(mi.capacity, 1 << 20);
    int64_t s[1] = {100000};
    gen__tensor a, b;
    assert_int_equal(gen__tensor_alloc(&a, small, GEN__F32, 1, s), GEN_OK);
    gen__backend_memory(small, &mi);
    assert_int_equal(mi.bytes_in_use, 400000);
    assert_true(mi.available <= (1 << 20) - 400000);
    s[0] = 200000;
    assert_int_equal(gen__tensor_alloc(&b, small, GEN__F32, 1, s), GEN_EDEVICE_OOM);
    assert_non_null(strstr(gen_last_error_message(), "cpu:1"));
    assert_non_null(strstr(gen_last_error_message(), "f32[200000]"));
    assert_null(b.data);
    /* an op whose scratch does not fit fails cleanly */
    int64_t xs[4] = {1, 64, 32, 32}, ws[4] = {8, 64, 3, 3}, os[4] = {1, 8, 32, 32};
    gen__tensor x, w, out;
    assert_int_equal(gen__tensor_alloc(&x, small, GEN__F32, 4, xs), GEN_OK);
    assert_int_equal(gen__tensor_alloc(&w, small, GEN__F32, 4, ws), GEN_OK);
    assert_int_equal(gen__tensor_alloc(&out, small, GEN__F32, 4, os), GEN_OK);
    gen__conv2d_params p = gen__conv2d_simple(1, 1);
    assert_int_equal(gen__conv2d(&out, &x, &w, NULL, &p), GEN_EDEVICE_OOM);
    assert_non_null(strstr(gen_last_error_message(), "conv2d"));
    gen__tensor_free(&a), gen__tensor_free(&x), gen__tensor_free(&w), gen__tensor_free(&out);
    gen__backend_memory(small, &mi);
    assert_int_equal(mi.bytes_in_use, 0);
    gen__backend_destroy(small);

    /* A convolution that picks Winograd, on a device too small for its
     * working memory (about 5 MiB) but not for im2col's (about 1.2 MiB):
     * it falls back and gives the same result as on a roomy device. */
    gen__cpu_backend_options o3 = {1, 1, 3 << 20};
    assert_int_equal(gen__cpu_backend_create(&small, &o3), GEN_OK);
    int64_t wxs[4] = {1, 32, 32, 32}, wws[4] = {256, 32, 3, 3}, wos[4] = {1, 256, 32, 32};
    assert_true(gen__cpu_winograd_fits(32, 256, 3, 3, &p, 32, 32));
    float *hx, *hw;
    gen__tensor rx = rnd(4, wxs, 91, &hx), rw = rnd(4, wws, 92, &hw), rout = empty(4, wos);
    assert_int_equal(gen__conv2d(&rout, &rx, &rw, NULL, &p), GEN_OK); /* roomy: Winograd */
    float *want = tu_download(&rout);
    assert_int_equal(gen__tensor_alloc(&x, small, GEN__F32, 4, wxs), GEN_OK);
    assert_int_equal(gen__tensor_alloc(&w, small, GEN__F32, 4, wws), GEN_OK);
    assert_int_equal(gen__tensor_alloc(&out, small, GEN__F32, 4, wos), GEN_OK);
    assert_int_equal(gen__tensor_upload(&x, hx, sizeof(float) * 32 * 32 * 32), GEN_OK);
    assert_int_equal(gen__tensor_upload(&w, hw, sizeof(float) * 256 * 32 * 9), GEN_OK);
    assert_int_equal(gen__conv2d(&out, &x, &w, NULL, &p), GEN_OK);
    float *got = tu_download(&out);
    double *ref = malloc(sizeof(double) * 256 * 32 * 32);
    for (int i = 0; i < 256 * 32 * 32; i++)
        ref[i] = want[i];
    assert_true(tu_rel_l2(got, ref, 256 * 32 * 32) < TOL);
    gen__cpu_conv_algorithm = GEN__CPU_CONV_WINOGRAD; /* forced: the OOM is reported */
    assert_int_equal(gen__conv2d(&out, &x, &w, NULL, &p), GEN_EDEVICE_OOM);
    gen__cpu_conv_algorithm = GEN__CPU_CONV_AUTO;
    free(hx), free(hw), free(want), free(got), free(ref);
    gen__tensor_free(&rx), gen__tensor_free(&rw), gen__tensor_free(&rout);
    gen__tensor_free(&x), gen__tensor_free(&w), gen__tensor_free(&out);
    assert_true(mi.peak_bytes >= 400000);
    gen__backend_destroy(small);

    /* host allocation failure: every allocation of tensor_alloc */
    gen__alloc_fail_after(1, 0);
    assert_int_equal(gen__tensor_alloc(&a, be, GEN__F32, 1, s), GEN_EDEVICE_OOM);
    gen__alloc_fail_after(0, 0);
    /* creating a backend under allocation failure never crashes or leaks */
    for (long n = 1; n < 12; n++) {
        gen__backend *t = NULL;
        gen__cpu_backend_options o2 = {2, 2, 0};
        gen__alloc_fail_after(n, 1);
        gen_status st = gen__cpu_backend_create(&t, &o2);
        gen__alloc_fail_after(0, 0);
        if (st == GEN_OK)
            gen__backend_destroy(t);
        else
            assert_null(t);
    }
}

static void test_thread_budget(void **state)
{
    (void)state;
    int cores = gen__cpu_thread_budget(0, 1);
    assert_true(cores >= 1);
    int total = 0;
    for (int i = 0; i < 3; i++)
        total += gen__cpu_thread_budget(i, 3);
    assert_true(total == (cores >= 3 ? cores : 3));
    if (cores == 2) {
        assert_int_equal(gen__cpu_thread_budget(0, 2), 1);
        assert_int_equal(gen__cpu_thread_budget(1, 2), 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_conv2d),
        cmocka_unit_test(test_conv2d_winograd),
        cmocka_unit_test(test_conv2d_errors),
        cmocka_unit_test(test_group_norm),
        cmocka_unit_test(test_layer_norm),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_attention_4096_memory),
        cmocka_unit_test(test_unary_geglu),
        cmocka_unit_test(test_binary),
        cmocka_unit_test(test_axpby_fill),
        cmocka_unit_test(test_upsample_concat_transpose),
        cmocka_unit_test(test_timestep_embedding),
        cmocka_unit_test(test_embedding_convert),
        cmocka_unit_test(test_memory_accounting_and_oom),
        cmocka_unit_test(test_thread_budget),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
