/* Our CUDA kernels (the .cu files of lib/backend/cuda/kernels), their real bodies, run on
 * the CPU emulator of tests/backend/cuda_emu and compared with the CPU
 * backend's ops on random inputs, in f32, f16 and bf16: the launchers of
 * kernels.h are called with host pointers as if they were device memory.
 * Inputs are rounded to the dtype first so both sides see the same values;
 * limits on the relative L2 error: f32 1e-5, f16 1e-2, bf16 2e-2 (the gpu
 * suite's). The emulator also fails a launch whose geometry a GPU would refuse
 * or whose barriers or warp collectives could never complete. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/backend.h"
#include "backend/cuda/kernels/kernels.h"
#include "cuda_emu/cuda_emu_c.h"
#include "tensor/tensor.h"

static gen__backend *cpu;
static uint64_t seed = 0x9e3779b97f4a7c15ull;

static float uniform(void)
{
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return (float)((seed >> 40) / (double)(1 << 24)) * 2.0f - 1.0f;
}

static double limit_of(gen__dtype dt)
{
    return dt == GEN__F32 ? 1e-5 : dt == GEN__F16 ? 1e-2 : 2e-2;
}

/* A host buffer seen two ways: `dev` in the kernel's dtype (what the kernel
 * reads and writes) and `ref` a CPU-backend f32 tensor of the same values. */
typedef struct buf {
    gen__dtype dt;
    size_t n;
    void *dev;
    gen__tensor ref;
} buf;

static buf make(gen__dtype dt, int ndim, const int64_t *shape, float scale)
{
    buf b = {dt, 1, NULL, GEN__TENSOR_EMPTY};
    for (int i = 0; i < ndim; i++)
        b.n *= (size_t)shape[i];
    float *h = malloc(b.n * sizeof(float) + 1);
    for (size_t i = 0; i < b.n; i++)
        h[i] = uniform() * scale;
    b.dev = malloc(b.n * gen__dtype_size(dt) + 1);
    gen__convert_host(b.dev, dt, h, GEN__F32, b.n);
    gen__convert_host(h, GEN__F32, b.dev, dt, b.n); /* the CPU sees the rounded values */
    assert_int_equal(gen__tensor_alloc(&b.ref, cpu, GEN__F32, ndim, shape), GEN_OK);
    assert_int_equal(gen__tensor_upload(&b.ref, h, b.n * sizeof(float)), GEN_OK);
    free(h);
    return b;
}

static void drop(buf *b)
{
    free(b->dev);
    gen__tensor_free(&b->ref);
}

/* The kernel's output (b.dev) against the CPU's (b.ref). */
static void check(const char *what, cudaError_t err, const buf *b)
{
    if (err != cudaSuccess)
        fail_msg("%s %s: launch failed: cudaError %d (%s)", what, gen__dtype_name(b->dt),
                 (int)err, gen_emu_last_failure());
    float *got = malloc(b->n * sizeof(float) + 1), *ref = malloc(b->n * sizeof(float) + 1);
    gen__convert_host(got, GEN__F32, b->dev, b->dt, b->n);
    assert_int_equal(gen__tensor_download(&b->ref, ref, b->n * sizeof(float)), GEN_OK);
    double num = 0, den = 0;
    for (size_t i = 0; i < b->n; i++) {
        double d = (double)got[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    double e = sqrt(num / (den > 0 ? den : 1e-30));
    print_message("  %-34s %-4s rel L2 %.2e\n", what, gen__dtype_name(b->dt), e);
    if (!(e < limit_of(b->dt)))
        fail_msg("%s %s: relative L2 %.3e >= %.0e", what, gen__dtype_name(b->dt), e,
                 limit_of(b->dt));
    free(got);
    free(ref);
}

#define SHAPE(...) (int64_t[]){__VA_ARGS__}
#define ND(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))

/* ---- attention --------------------------------------------------------------------- */

static void attention_case(gen__dtype dt, bool mma, int64_t b, int64_t nq, int64_t nk, int heads,
                           int dk, int dv, bool causal)
{
    buf q = make(dt, 3, SHAPE(b, nq, heads * dk), 1.0f), k = make(dt, 3, SHAPE(b, nk, heads * dk), 1.0f),
        v = make(dt, 3, SHAPE(b, nk, heads * dv), 1.0f), o = make(dt, 3, SHAPE(b, nq, heads * dv), 0);
    float scale = 1.0f / sqrtf((float)dk);
    assert_int_equal(gen__attention(&o.ref, &q.ref, &k.ref, &v.ref, heads, scale, causal), GEN_OK);
    cudaError_t err = mma ? gen__cuk_attention_mma(NULL, dt, o.dev, q.dev, k.dev, v.dev, b, nq, nk,
                                                   heads, dk, dv, scale, causal)
                          : gen__cuk_attention(NULL, dt, o.dev, q.dev, k.dev, v.dev, b, nq, nk,
                                               heads, dk, dv, scale, causal);
    char what[96];
    snprintf(what, sizeof(what), "%s b%lld q%lld k%lld h%d d%d/%d%s", mma ? "attn_mma" : "attention",
             (long long)b, (long long)nq, (long long)nk, heads, dk, dv, causal ? " causal" : "");
    check(what, err, &o);
    drop(&q);
    drop(&k);
    drop(&v);
    drop(&o);
}

/* The kernels with shared tiles reused across iterations run under each
 * schedule of the emulator (lockstep, warp 0 ahead, the last warp ahead). */
static const int schedules[3] = {0, 1, -1};

static void test_attention(void **state)
{
    (void)state;
    for (int d = 0; d < GEN__DTYPE_COUNT * 3; d++) {
        gen__dtype dt = (gen__dtype)(d % GEN__DTYPE_COUNT);
        int schedule = schedules[d / GEN__DTYPE_COUNT];
        gen_emu_set_schedule(schedule);
        attention_case(dt, false, 1, 40, 77, 2, 40, 40, false);   /* cross-attention, SD1.5 d40 */
        attention_case(dt, false, 2, 70, 70, 1, 64, 64, true);    /* CLIP-style causal */
        attention_case(dt, false, 1, 33, 45, 2, 80, 72, false);   /* dv != dk, ragged tiles */
        attention_case(dt, false, 1, 17, 40, 1, 160, 160, false); /* the widest head */
        if (schedule == 0)
            attention_case(dt, false, 1, 256, 256, 2, 40, 40, false); /* many blocks and tiles */
    }
    gen_emu_set_schedule(0);
}

static void test_attention_mma(void **state)
{
    (void)state;
    const gen__dtype dts[2] = {GEN__F16, GEN__BF16};
    for (int i = 0; i < 6; i++) {
        int d = i % 2, schedule = schedules[i / 2];
        gen_emu_set_schedule(schedule);
        attention_case(dts[d], true, 1, 70, 77, 2, 40, 40, false); /* padded to 48 */
        attention_case(dts[d], true, 2, 65, 65, 1, 64, 64, true);
        attention_case(dts[d], true, 1, 64, 100, 1, 80, 80, false); /* the MAXD 160 build */
        attention_case(dts[d], true, 1, 20, 33, 1, 160, 152, false);
        if (schedule == 0)
            attention_case(dts[d], true, 1, 256, 256, 2, 40, 40, false);
    }
    gen_emu_set_schedule(0);
    /* f32 has no tensor-core path */
    buf x = make(GEN__F32, 3, SHAPE(1, 4, 8), 1.0f);
    assert_int_equal(gen__cuk_attention_mma(NULL, GEN__F32, x.dev, x.dev, x.dev, x.dev, 1, 4, 4, 1,
                                            8, 8, 1.0f, false),
                     cudaErrorInvalidValue);
    drop(&x);
}

/* ---- norms and softmax ------------------------------------------------------------- */

static void test_norms(void **state)
{
    (void)state;
    for (int d = 0; d < GEN__DTYPE_COUNT * 3; d++) {
        gen__dtype dt = (gen__dtype)(d % GEN__DTYPE_COUNT);
        gen_emu_set_schedule(schedules[d / GEN__DTYPE_COUNT]);
        /* group norm: [n, c, spatial], with and without affine and SiLU */
        for (int variant = 0; variant < 3; variant++) {
            int64_t n = 2, c = 64, hw = variant == 2 ? 1000 : 48;
            buf x = make(dt, 3, SHAPE(n, c, hw), 2.0f), o = make(dt, 3, SHAPE(n, c, hw), 0);
            buf g = make(dt, 1, SHAPE(c), 1.0f), be = make(dt, 1, SHAPE(c), 1.0f);
            bool affine = variant != 1, silu = variant >= 1;
            assert_int_equal(gen__group_norm(&o.ref, &x.ref, affine ? &g.ref : NULL,
                                             affine ? &be.ref : NULL, 32, 1e-5f, silu),
                             GEN_OK);
            check(variant == 0 ? "group_norm" : variant == 1 ? "group_norm silu, no affine"
                                                             : "group_norm silu 1000",
                  gen__cuk_group_norm(NULL, dt, o.dev, x.dev, affine ? g.dev : NULL,
                                      affine ? be.dev : NULL, n, c, hw, 32, 1e-5f, silu),
                  &o);
            drop(&x);
            drop(&o);
            drop(&g);
            drop(&be);
        }
        /* layer norm and softmax over rows of several widths (one warp .. many) */
        const int64_t widths[3] = {20, 320, 1100};
        for (int w = 0; w < 3; w++) {
            int64_t rows = 5, dd = widths[w];
            buf x = make(dt, 2, SHAPE(rows, dd), 3.0f), o = make(dt, 2, SHAPE(rows, dd), 0);
            buf g = make(dt, 1, SHAPE(dd), 1.0f), be = make(dt, 1, SHAPE(dd), 1.0f);
            assert_int_equal(gen__layer_norm(&o.ref, &x.ref, &g.ref, &be.ref, 1e-5f), GEN_OK);
            check("layer_norm",
                  gen__cuk_layer_norm(NULL, dt, o.dev, x.dev, g.dev, be.dev, rows, dd, 1e-5f), &o);
            assert_int_equal(gen__softmax(&o.ref, &x.ref, 0.7f), GEN_OK);
            check("softmax", gen__cuk_softmax(NULL, dt, o.dev, x.dev, rows, dd, 0.7f), &o);
            drop(&x);
            drop(&o);
            drop(&g);
            drop(&be);
        }
    }
    gen_emu_set_schedule(0);
}

/* ---- element-wise ------------------------------------------------------------------ */

static void test_elementwise(void **state)
{
    (void)state;
    for (int d = 0; d < GEN__DTYPE_COUNT; d++) {
        gen__dtype dt = (gen__dtype)d;
        int64_t n = 3000;
        buf x = make(dt, 1, SHAPE(n), 3.0f), o = make(dt, 1, SHAPE(n), 0);
        assert_int_equal(gen__fill(&o.ref, 0.375f), GEN_OK);
        check("fill", gen__cuk_fill(NULL, dt, o.dev, n, 0.375f), &o);
        const gen__unary_op ops[4] = {GEN__UNARY_SILU, GEN__UNARY_GELU, GEN__UNARY_GELU_TANH,
                                      GEN__UNARY_QUICK_GELU};
        const int kops[4] = {GEN__CUK_SILU, GEN__CUK_GELU, GEN__CUK_GELU_TANH, GEN__CUK_QUICK_GELU};
        for (int u = 0; u < 4; u++) {
            assert_int_equal(gen__unary(&o.ref, &x.ref, ops[u]), GEN_OK);
            check("unary", gen__cuk_unary(NULL, dt, o.dev, x.dev, n, kops[u]), &o);
        }
        buf y = make(dt, 1, SHAPE(n), 2.0f);
        assert_int_equal(gen__axpby(&o.ref, 0.5f, &x.ref, -2.0f, &y.ref), GEN_OK);
        check("axpby", gen__cuk_axpby(NULL, dt, o.dev, 0.5f, x.dev, -2.0f, y.dev, n), &o);
        drop(&y);
        drop(&x);
        drop(&o);

        buf gx = make(dt, 2, SHAPE(30, 2 * 70), 2.0f), go = make(dt, 2, SHAPE(30, 70), 0);
        assert_int_equal(gen__geglu(&go.ref, &gx.ref), GEN_OK);
        check("geglu", gen__cuk_geglu(NULL, dt, go.dev, gx.dev, 30, 70), &go);
        drop(&gx);
        drop(&go);

        /* broadcasting add/mul: the UNet's bias-per-channel and time-embedding shapes */
        struct {
            int na, nb;
            int64_t a[4], b[4];
        } cases[3] = {{4, 4, {2, 32, 6, 7}, {1, 32, 1, 1}},
                      {4, 2, {2, 32, 6, 7}, {2, 32, 0, 0}},
                      {3, 1, {3, 5, 9, 0}, {9, 0, 0, 0}}};
        for (int c = 0; c < 3; c++) {
            int64_t bs[4];
            memcpy(bs, cases[c].b, sizeof(bs));
            if (c == 1) { /* [2, 32] -> [2, 32, 1, 1] */
                bs[2] = bs[3] = 1;
                cases[c].nb = 4;
            }
            buf a = make(dt, cases[c].na, cases[c].a, 1.0f), bb = make(dt, cases[c].nb, bs, 1.0f);
            buf out = make(dt, cases[c].na, cases[c].a, 0);
            gen__bcast_plan plan;
            assert_true(gen__bcast_make(&plan, cases[c].na, cases[c].a, cases[c].na, cases[c].a,
                                        cases[c].nb, bs));
            for (int op = 0; op < 2; op++) {
                assert_int_equal(op ? gen__mul(&out.ref, &a.ref, &bb.ref)
                                    : gen__add(&out.ref, &a.ref, &bb.ref),
                                 GEN_OK);
                check(op ? "mul broadcast" : "add broadcast",
                      gen__cuk_binary(NULL, dt, out.dev, a.dev, bb.dev, &plan, op), &out);
            }
            drop(&a);
            drop(&bb);
            drop(&out);
        }
    }
}

/* ---- layout ------------------------------------------------------------------------ */

static void test_layout(void **state)
{
    (void)state;
    for (int d = 0; d < GEN__DTYPE_COUNT; d++) {
        gen__dtype dt = (gen__dtype)d;
        buf x = make(dt, 4, SHAPE(2, 3, 5, 7), 1.0f), up = make(dt, 4, SHAPE(2, 3, 10, 14), 0);
        assert_int_equal(gen__upsample_nearest2x(&up.ref, &x.ref), GEN_OK);
        check("upsample2x", gen__cuk_upsample2x(NULL, dt, up.dev, x.dev, 6, 5, 7), &up);
        drop(&up);

        buf y = make(dt, 4, SHAPE(2, 4, 5, 7), 1.0f), cat = make(dt, 4, SHAPE(2, 7, 5, 7), 0);
        assert_int_equal(gen__concat(&cat.ref, &x.ref, &y.ref, 1), GEN_OK);
        check("concat dim 1", gen__cuk_concat(NULL, dt, cat.dev, x.dev, y.dev, 2, 3 * 35, 4 * 35),
              &cat);
        drop(&y);
        drop(&cat);
        drop(&x);

        /* transpose of the last two dims, shapes that are not tile multiples */
        const int64_t sizes[3][3] = {{3, 33, 70}, {1, 1, 40}, {2, 64, 31}};
        for (int s = 0; s < 3; s++) {
            int64_t bt = sizes[s][0], p = sizes[s][1], q = sizes[s][2];
            buf tx = make(dt, 3, SHAPE(bt, p, q), 1.0f), to = make(dt, 3, SHAPE(bt, q, p), 0);
            assert_int_equal(gen__transpose(&to.ref, &tx.ref), GEN_OK);
            check("transpose", gen__cuk_transpose(NULL, dt, to.dev, tx.dev, bt, p, q), &to);
            drop(&tx);
            drop(&to);
        }

        /* pad2d (conv's asymmetric padding): zeros around, checked by hand */
        buf px = make(dt, 3, SHAPE(3, 4, 5), 1.0f), po = make(dt, 3, SHAPE(3, 4 + 1 + 2, 5 + 0 + 3), 0);
        float *hx = malloc(60 * sizeof(float)), *hp = calloc(3 * 7 * 8, sizeof(float));
        assert_int_equal(gen__tensor_download(&px.ref, hx, 60 * sizeof(float)), GEN_OK);
        for (int c = 0; c < 3; c++)
            for (int r = 0; r < 4; r++)
                for (int col = 0; col < 5; col++)
                    hp[(c * 7 + r + 1) * 8 + col] = hx[(c * 4 + r) * 5 + col];
        assert_int_equal(gen__tensor_upload(&po.ref, hp, 3 * 7 * 8 * sizeof(float)), GEN_OK);
        check("pad2d", gen__cuk_pad2d(NULL, dt, po.dev, px.dev, 3, 4, 5, 1, 2, 0, 3), &po);
        free(hx);
        free(hp);
        drop(&px);
        drop(&po);

        /* bias_add: out [outer, C, inner] += bias[C], in place */
        buf bo = make(dt, 3, SHAPE(2, 6, 35), 1.0f), bias = make(dt, 2, SHAPE(6, 1), 1.0f);
        buf bref = make(dt, 3, SHAPE(2, 6, 35), 0);
        assert_int_equal(gen__add(&bref.ref, &bo.ref, &bias.ref), GEN_OK);
        memcpy(bref.dev, bo.dev, bo.n * gen__dtype_size(dt));
        check("bias_add", gen__cuk_bias_add(NULL, dt, bref.dev, bias.dev, 2, 6, 35), &bref);
        drop(&bo);
        drop(&bias);
        drop(&bref);

        buf table = make(dt, 2, SHAPE(50, 24), 1.0f), emb = make(dt, 2, SHAPE(6, 24), 0);
        const int32_t ids[6] = {0, 49, 7, 7, 13, 1};
        assert_int_equal(gen__embedding(&emb.ref, &table.ref, ids, 6), GEN_OK);
        check("embedding", gen__cuk_embedding(NULL, dt, emb.dev, table.dev, ids, 6, 24), &emb);
        drop(&table);
        drop(&emb);
    }
}

/* ---- conversion: bit-exact with the host conversions ------------------------------------ */

static void test_convert_exact(void **state)
{
    (void)state;
    const size_t n = 4096 + 6;
    float *f = malloc(n * sizeof(float));
    for (size_t i = 0; i < 4096; i++) {
        uint32_t bits = (uint32_t)(i * 1048573u) ^ 0x5bd1e995u; /* all exponents, signs */
        memcpy(&f[i], &bits, 4);
    }
    const float specials[6] = {INFINITY, -INFINITY, NAN, -NAN, 0.0f, -0.0f};
    memcpy(f + 4096, specials, sizeof(specials));
    for (int to = 1; to < GEN__DTYPE_COUNT; to++) {
        uint16_t *want = malloc(n * 2), *got = malloc(n * 2);
        gen__convert_host(want, (gen__dtype)to, f, GEN__F32, n);
        assert_int_equal(gen__cuk_convert(NULL, got, to, f, GEN__F32, (int64_t)n), cudaSuccess);
        assert_memory_equal(got, want, n * 2);
        float *back_want = malloc(n * 4), *back_got = malloc(n * 4);
        gen__convert_host(back_want, GEN__F32, want, (gen__dtype)to, n);
        assert_int_equal(gen__cuk_convert(NULL, back_got, GEN__F32, want, to, (int64_t)n),
                         cudaSuccess);
        assert_memory_equal(back_got, back_want, n * 4);
        free(want);
        free(got);
        free(back_want);
        free(back_got);
    }
    free(f);
}

/* ---- the emulator itself catches what a GPU would refuse ------------------------------- */

static void test_emulator_catches_mistakes(void **state)
{
    (void)state;
    float out[4096], x[512];
    for (int i = 0; i < 512; i++)
        x[i] = (float)(i % 7) - 3.0f;
    gen_emu_clear_failure();
    /* a barrier half the block never reaches */
    assert_int_equal(gen_emu_selftest(0, out, x), cudaErrorLaunchFailure);
    assert_non_null(strstr(gen_emu_last_failure(), "divergent __syncthreads"));
    /* a full-warp shuffle after half the lanes left */
    assert_int_equal(gen_emu_selftest(1, out, x), cudaErrorLaunchFailure);
    assert_non_null(strstr(gen_emu_last_failure(), "without all 32 lanes"));
    /* positive control: the block reduction of common.cuh */
    assert_int_equal(gen_emu_selftest(2, out, x), cudaSuccess);
    for (int b = 0; b < 2; b++) {
        float want = 0;
        for (int i = 0; i < 256; i++)
            want += x[i];
        assert_true(fabsf(out[b] - want) < 1e-3f);
    }
    /* dynamic shared memory above 48 KiB needs the opt-in, as on the GPU */
    assert_int_equal(gen_emu_selftest(3, out, x), cudaErrorInvalidValue);
    assert_int_equal(gen_emu_selftest(4, out, x), cudaSuccess);
    for (int i = 0; i < 128; i++)
        assert_true(out[i] == (float)(127 - i));
    /* shared memory nobody wrote reads as NaN */
    assert_int_equal(gen_emu_selftest(5, out, x), cudaSuccess);
    assert_true(isnan(out[3]));
    /* blocks above 1024 threads */
    assert_int_equal(gen_emu_selftest(6, out, x), cudaErrorInvalidConfiguration);
    /* a missing "tile consumed" barrier: hidden in lockstep, seen with warp 0 ahead */
    for (int schedule = 0; schedule <= 1; schedule++) {
        gen_emu_set_schedule(schedule);
        assert_int_equal(gen_emu_selftest(7, out, x), cudaSuccess);
        bool race_seen = false;
        for (int t = 32; t < 64; t++) /* warp 1's first round should read 0..31 */
            race_seen |= out[t] != (float)(t - 32);
        assert_int_equal(race_seen, schedule == 1);
    }
    gen_emu_set_schedule(0);
    /* and the launchers' own argument checks */
    buf y = make(GEN__F16, 1, SHAPE(64), 1.0f);
    assert_int_equal(gen__cuk_attention(NULL, GEN__F16, y.dev, y.dev, y.dev, y.dev, 65536, 1, 1, 1,
                                        1, 1, 1.0f, false),
                     cudaErrorInvalidValue);
    drop(&y);
    gen_emu_clear_failure();
}

static int setup(void **state)
{
    (void)state;
    gen__cpu_backend_options o = {0, 0, 0};
    return gen__cpu_backend_create(&cpu, &o) == GEN_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    gen__backend_destroy(cpu);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_attention_mma),
        cmocka_unit_test(test_norms),
        cmocka_unit_test(test_elementwise),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_convert_exact),
        cmocka_unit_test(test_emulator_catches_mistakes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
