/* The index and tiling arithmetic of the CUDA kernels (lib/backend/cuda/
 * kernels/plan.h), checked on the host: these are the very functions the
 * kernels call, so a GPU-less machine still verifies broadcasting, concat,
 * upsampling, padding and both attention kernels' tile loops (emulated lane by
 * lane with the kernels' online-softmax steps and, for the tensor-core kernel,
 * its mma fragment maps, against a naive softmax attention). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/cuda/kernels/plan.h"

/* naive broadcast offset of output index idx */
static void naive_offsets(int nd, const int64_t *out, int a_nd, const int64_t *as, int b_nd,
                          const int64_t *bs, int64_t idx, int64_t *oa, int64_t *ob)
{
    int64_t coord[GEN__PLAN_MAX_DIMS];
    for (int i = nd - 1; i >= 0; i--) {
        coord[i] = idx % out[i];
        idx /= out[i];
    }
    int64_t a = 0, b = 0;
    for (int i = 0; i < nd; i++) {
        int ia = i - (nd - a_nd), ib = i - (nd - b_nd);
        if (ia >= 0)
            a = a * as[ia] + (as[ia] == 1 ? 0 : coord[i]);
        if (ib >= 0)
            b = b * bs[ib] + (bs[ib] == 1 ? 0 : coord[i]);
    }
    *oa = a;
    *ob = b;
}

static void check_bcast(int nd, const int64_t *out, int a_nd, const int64_t *as, int b_nd,
                        const int64_t *bs, int expect_nd)
{
    gen__bcast_plan p;
    assert_true(gen__bcast_make(&p, nd, out, a_nd, as, b_nd, bs));
    if (expect_nd > 0)
        assert_int_equal(p.nd, expect_nd);
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= out[i];
    for (int64_t i = 0; i < n; i++) {
        int64_t oa, ob, ra, rb;
        gen__bcast_offsets(&p, i, &oa, &ob);
        naive_offsets(nd, out, a_nd, as, b_nd, bs, i, &ra, &rb);
        assert_int_equal(oa, ra);
        assert_int_equal(ob, rb);
    }
}

static void test_bcast(void **state)
{
    (void)state;
    /* UNet bias / time embedding: [N,C,H,W] + [1,C,1,1] and + [N,C,1,1] */
    check_bcast(4, (int64_t[]){2, 5, 3, 4}, 4, (int64_t[]){2, 5, 3, 4}, 4, (int64_t[]){1, 5, 1, 1}, 3);
    check_bcast(4, (int64_t[]){2, 5, 3, 4}, 4, (int64_t[]){2, 5, 3, 4}, 4, (int64_t[]){2, 5, 1, 1}, 2);
    /* positions: [B,T,D] + [T,D] merges to one dimension for a, two for b */
    check_bcast(3, (int64_t[]){3, 7, 6}, 3, (int64_t[]){3, 7, 6}, 2, (int64_t[]){7, 6}, 2);
    /* same shapes collapse to one dimension */
    check_bcast(3, (int64_t[]){3, 7, 6}, 3, (int64_t[]){3, 7, 6}, 3, (int64_t[]){3, 7, 6}, 1);
    /* both sides broadcast: [4,1,3] * [1,5,1] -> [4,5,3] */
    check_bcast(3, (int64_t[]){4, 5, 3}, 3, (int64_t[]){4, 1, 3}, 3, (int64_t[]){1, 5, 1}, 3);
    /* scalar-like operand and size-1 output dims */
    check_bcast(5, (int64_t[]){1, 2, 1, 3, 2}, 5, (int64_t[]){1, 2, 1, 3, 2}, 1, (int64_t[]){1}, 1);
    check_bcast(2, (int64_t[]){1, 1}, 2, (int64_t[]){1, 1}, 1, (int64_t[]){1}, 1);
    check_bcast(4, (int64_t[]){2, 3, 1, 4}, 3, (int64_t[]){3, 1, 4}, 4, (int64_t[]){2, 1, 1, 1}, 2);
    gen__bcast_plan p;
    assert_false(gen__bcast_make(&p, 6, (int64_t[]){1, 1, 1, 1, 1, 1}, 1, (int64_t[]){1}, 1,
                                 (int64_t[]){1}));
}

static void test_layout_maps(void **state)
{
    (void)state;
    /* concat along dim 1 of [2,3,4] and [2,5,4]: wa = 12, wb = 20 */
    int64_t wa = 12, wb = 20;
    for (int64_t i = 0; i < 2 * (wa + wb); i++) {
        int64_t row = i / (wa + wb), col = i % (wa + wb), off;
        int which = gen__concat_source(i, wa, wb, &off);
        if (col < wa) {
            assert_int_equal(which, 0);
            assert_int_equal(off, row * wa + col);
        } else {
            assert_int_equal(which, 1);
            assert_int_equal(off, row * wb + col - wa);
        }
    }
    /* upsample [2, 3, 5] -> [2, 6, 10] */
    for (int64_t nc = 0; nc < 2; nc++)
        for (int64_t y = 0; y < 6; y++)
            for (int64_t x = 0; x < 10; x++) {
                int64_t idx = (nc * 6 + y) * 10 + x;
                assert_int_equal(gen__upsample2x_source(idx, 3, 5), (nc * 3 + y / 2) * 5 + x / 2);
            }
    /* pad (top 0, bottom 1, left 0, right 1) of [2, 3, 4] -> [2, 4, 5]; and (1,2,3,1) */
    int pads[2][4] = {{0, 1, 0, 1}, {1, 2, 3, 1}};
    for (int k = 0; k < 2; k++) {
        int t = pads[k][0], b = pads[k][1], l = pads[k][2], r = pads[k][3];
        int64_t oh = 3 + t + b, ow = 4 + l + r;
        for (int64_t nc = 0; nc < 2; nc++)
            for (int64_t y = 0; y < oh; y++)
                for (int64_t x = 0; x < ow; x++) {
                    int64_t idx = (nc * oh + y) * ow + x;
                    int64_t sy = y - t, sx = x - l;
                    int64_t want = (sy < 0 || sy >= 3 || sx < 0 || sx >= 4) ? -1 : (nc * 3 + sy) * 4 + sx;
                    assert_int_equal(gen__pad2d_source(idx, 3, 4, t, b, l, r), want);
                }
    }
    /* group norm base: [2, 6, 5] in 3 groups */
    assert_int_equal(gen__gn_base(1, 2, 6, 5, 3), (1 * 6 + 4) * 5);
}

static void test_attention_geometry(void **state)
{
    (void)state;
    assert_int_equal(gen__attn_vchunks(3), 1);
    assert_int_equal(gen__attn_vchunks(32), 1);
    assert_int_equal(gen__attn_vchunks(40), 2);
    assert_int_equal(gen__attn_vchunks(64), 2);
    assert_int_equal(gen__attn_vchunks(80), 3);
    assert_int_equal(gen__attn_vchunks(96), 3);
    assert_int_equal(gen__attn_vchunks(97), 5);
    assert_int_equal(gen__attn_vchunks(160), 5);
    for (int d = 1; d <= GEN__ATTN_MAX_DIM; d++)
        assert_true(gen__attn_vchunks(d) * 32 >= d);
    /* 160/160 needs the opt-in above 48 KiB, but stays far below the 227 KiB of sm_90 */
    assert_true(gen__attn_smem_floats(160, 160) * 4 > 48 * 1024);
    assert_true(gen__attn_smem_floats(160, 160) * 4 < 100 * 1024);
    assert_true(gen__attn_smem_floats(64, 64) * 4 <= 48 * 1024);
    /* causal: block [16, 32) of 40 queries and 100 keys needs keys [0, 32) */
    assert_int_equal(gen__attn_key_end(16, 40, 100, true), 32);
    assert_int_equal(gen__attn_key_end(32, 40, 100, true), 40);
    assert_int_equal(gen__attn_key_end(32, 40, 35, true), 35);
    assert_int_equal(gen__attn_key_end(0, 40, 100, false), 100);
    assert_true(gen__attn_visible(5, 5, 10, true));
    assert_false(gen__attn_visible(5, 6, 10, true));
    assert_true(gen__attn_visible(5, 6, 10, false));
    assert_false(gen__attn_visible(5, 10, 10, false));
}

/* The kernel's algorithm for one warp row, lane by lane: per 32-key tile the
 * warp max, the rescale, per-lane partial sums, and the value accumulation. */
static void emulate_row(const float *q, const float *k, const float *v, int64_t qi, int64_t nq,
                        int64_t nk, int dk, int dv, float scale, bool causal, float *out)
{
    const float log2e = 1.4426950408889634f;
    float m = -INFINITY, l[32] = {0};
    float *acc = calloc((size_t)dv, sizeof(float));
    int64_t q0 = qi / GEN__ATTN_BQ * GEN__ATTN_BQ;
    int64_t end = gen__attn_key_end(q0, nq, nk, causal);
    for (int64_t k0 = 0; k0 < end; k0 += GEN__ATTN_BK) {
        float s[32], tmax = -INFINITY;
        for (int lane = 0; lane < 32; lane++) {
            int64_t kj = k0 + lane;
            float dot = 0.0f;
            for (int d = 0; d < dk && kj < nk; d++)
                dot += q[d] * scale * log2e * k[kj * dk + d];
            s[lane] = gen__attn_visible(qi, kj, nk, causal) ? dot : -INFINITY;
            tmax = fmaxf(tmax, s[lane]);
        }
        float rescale;
        float mn = gen__attn_new_max(m, tmax, &rescale);
        float p[32];
        for (int lane = 0; lane < 32; lane++) {
            p[lane] = gen__attn_prob(s[lane], mn);
            l[lane] = l[lane] * rescale + p[lane];
        }
        for (int d = 0; d < dv; d++) {
            acc[d] *= rescale;
            for (int j = 0; j < 32; j++)
                acc[d] += p[j] * (k0 + j < nk ? v[(k0 + j) * dv + d] : 0.0f);
        }
        m = mn;
    }
    float total = 0.0f;
    for (int lane = 0; lane < 32; lane++)
        total += l[lane];
    for (int d = 0; d < dv; d++)
        out[d] = acc[d] / total;
    free(acc);
}

static void naive_row(const float *q, const float *k, const float *v, int64_t qi, int64_t nk,
                      int dk, int dv, float scale, bool causal, double *out)
{
    double *s = calloc((size_t)nk, sizeof(double)), mx = -INFINITY, sum = 0.0;
    for (int64_t j = 0; j < nk; j++) {
        double dot = 0.0;
        for (int d = 0; d < dk; d++)
            dot += (double)q[d] * k[j * dk + d];
        s[j] = (causal && j > qi) ? -INFINITY : dot * scale;
        mx = fmax(mx, s[j]);
    }
    for (int64_t j = 0; j < nk; j++)
        sum += (s[j] = exp(s[j] - mx));
    for (int d = 0; d < dv; d++) {
        out[d] = 0.0;
        for (int64_t j = 0; j < nk; j++)
            out[d] += s[j] / sum * v[j * dv + d];
    }
    free(s);
}

static void test_attention_emulation(void **state)
{
    (void)state;
    struct { int64_t nq, nk; int dk, dv; bool causal; } cases[] = {
        {5, 7, 3, 3, false}, {40, 77, 8, 5, true}, {33, 65, 40, 40, false},
        {70, 70, 12, 12, true}, {17, 100, 80, 64, false}, {20, 20, 160, 160, true},
    };
    srand(7);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        int64_t nq = cases[c].nq, nk = cases[c].nk;
        int dk = cases[c].dk, dv = cases[c].dv;
        float *q = malloc(sizeof(float) * (size_t)(nq * dk));
        float *k = malloc(sizeof(float) * (size_t)(nk * dk));
        float *v = malloc(sizeof(float) * (size_t)(nk * dv));
        float *o = malloc(sizeof(float) * (size_t)dv);
        double *r = malloc(sizeof(double) * (size_t)dv);
        for (int64_t i = 0; i < nq * dk; i++)
            q[i] = (float)((double)rand() / RAND_MAX) * 4.0f - 2.0f;
        for (int64_t i = 0; i < nk * dk; i++)
            k[i] = (float)((double)rand() / RAND_MAX) * 4.0f - 2.0f;
        for (int64_t i = 0; i < nk * dv; i++)
            v[i] = (float)((double)rand() / RAND_MAX) * 2.0f - 1.0f;
        float scale = 1.0f / sqrtf((float)dk);
        for (int64_t qi = 0; qi < nq; qi++) {
            emulate_row(q + qi * dk, k, v, qi, nq, nk, dk, dv, scale, cases[c].causal, o);
            naive_row(q + qi * dk, k, v, qi, nk, dk, dv, scale, cases[c].causal, r);
            for (int d = 0; d < dv; d++)
                assert_true(fabs(o[d] - r[d]) < 1e-5 * (1.0 + fabs(r[d])));
        }
        free(q);
        free(k);
        free(v);
        free(o);
        free(r);
    }
}

/* ---- tensor-core attention (attention_mma.cu), one warp at a time -----------------
 * mma.sync m16n8k16 emulated from its definition: A, B gathered from the 32
 * lanes' registers with the fragment maps, C += A B scattered back. The warp
 * code below follows attention_mma_k step by step with the same plan.h maps
 * (Q, K, V fragments, the P-as-A reuse, quad reductions, masks, output). */
static void mma_emul(float c[32][4], float a[32][4][2], float b[32][2][2])
{
    float A[16][16], B[16][8];
    int seen_a[16][16] = {{0}}, seen_b[16][8] = {{0}};
    for (int lane = 0; lane < 32; lane++) {
        for (int r = 0; r < 4; r++)
            for (int e = 0; e < 2; e++) {
                A[gen__mma_a_row(lane, r)][gen__mma_a_col(lane, r) + e] = a[lane][r][e];
                seen_a[gen__mma_a_row(lane, r)][gen__mma_a_col(lane, r) + e]++;
            }
        for (int r = 0; r < 2; r++)
            for (int e = 0; e < 2; e++) {
                B[gen__mma_b_k(lane, r) + e][gen__mma_b_n(lane)] = b[lane][r][e];
                seen_b[gen__mma_b_k(lane, r) + e][gen__mma_b_n(lane)]++;
            }
    }
    for (int i = 0; i < 16; i++) /* the maps cover each element exactly once */
        for (int j = 0; j < 16; j++)
            assert_int_equal(seen_a[i][j], 1);
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 8; j++)
            assert_int_equal(seen_b[i][j], 1);
    for (int lane = 0; lane < 32; lane++)
        for (int i = 0; i < 4; i++) {
            int row = gen__mma_c_row(lane, i), col = gen__mma_c_col(lane, i);
            for (int k = 0; k < 16; k++)
                c[lane][i] += A[row][k] * B[k][col];
        }
}

/* rows [row0, row0 + 16) of one head; q [nq][dk], k [nk][dk], v [nk][dv] */
static void emulate_mma_warp(const float *q, const float *k, const float *v, int64_t row0,
                             int64_t q0, int64_t nq, int64_t nk, int dk, int dv, float scale,
                             bool causal, float *out /* [nq][dv] */)
{
    const float scale_log2 = scale * 1.4426950408889634f;
    int dkp = gen__attn_mma_pad(dk), dvp = gen__attn_mma_pad(dv);
    static float qf[10][32][4][2], o[20][32][4], s[4][32][4];
    float m[32][2], l[32][2];
    for (int kk = 0; kk < dkp / 16; kk++)
        for (int lane = 0; lane < 32; lane++)
            for (int r = 0; r < 4; r++)
                for (int e = 0; e < 2; e++) {
                    int64_t row = row0 + gen__mma_a_row(lane, r);
                    int d = kk * 16 + gen__mma_a_col(lane, r) + e;
                    qf[kk][lane][r][e] = row < nq && d < dk ? q[row * dk + d] : 0.0f;
                }
    memset(o, 0, sizeof(o));
    for (int lane = 0; lane < 32; lane++)
        m[lane][0] = m[lane][1] = -INFINITY, l[lane][0] = l[lane][1] = 0.0f;
    int64_t key_end = causal ? (q0 + GEN__ATTN_MMA_BQ < nk ? q0 + GEN__ATTN_MMA_BQ : nk) : nk;
    for (int64_t k0 = 0; k0 < key_end; k0 += GEN__ATTN_MMA_BK) {
        for (int j = 0; j < GEN__ATTN_MMA_BK / 8; j++) {
            memset(s[j], 0, sizeof(s[j]));
            for (int kk = 0; kk < dkp / 16; kk++) {
                float b[32][2][2];
                for (int lane = 0; lane < 32; lane++)
                    for (int r = 0; r < 2; r++)
                        for (int e = 0; e < 2; e++) {
                            int64_t key = k0 + j * 8 + gen__mma_b_n(lane);
                            int d = kk * 16 + gen__mma_b_k(lane, r) + e;
                            b[lane][r][e] = key < nk && d < dk ? k[key * dk + d] : 0.0f;
                        }
                mma_emul(s[j], qf[kk], b);
            }
        }
        float rescale[32][2], mx[32][2];
        for (int lane = 0; lane < 32; lane++)
            for (int hf = 0; hf < 2; hf++) {
                int64_t row = row0 + gen__mma_c_row(lane, 2 * hf);
                mx[lane][hf] = -INFINITY;
                for (int j = 0; j < GEN__ATTN_MMA_BK / 8; j++)
                    for (int e = 0; e < 2; e++) {
                        int64_t kj = k0 + j * 8 + gen__mma_c_col(lane, 2 * hf + e);
                        float x = s[j][lane][2 * hf + e] * scale_log2;
                        x = gen__attn_visible(row, kj, nk, causal) ? x : -INFINITY;
                        s[j][lane][2 * hf + e] = x;
                        mx[lane][hf] = fmaxf(mx[lane][hf], x);
                    }
            }
        for (int lane = 0; lane < 32; lane++) /* xor-shuffles 1 and 2: the quad's max */
            for (int hf = 0; hf < 2; hf++) {
                float qm = -INFINITY;
                for (int x = 0; x < 4; x++)
                    qm = fmaxf(qm, mx[(lane & ~3) | x][hf]);
                float mn = gen__attn_new_max(m[lane][hf], qm, &rescale[lane][hf]);
                float sum = 0.0f;
                for (int j = 0; j < GEN__ATTN_MMA_BK / 8; j++)
                    for (int e = 0; e < 2; e++) {
                        float p = gen__attn_prob(s[j][lane][2 * hf + e], mn);
                        s[j][lane][2 * hf + e] = p;
                        sum += p;
                    }
                l[lane][hf] = l[lane][hf] * rescale[lane][hf] + sum;
                m[lane][hf] = mn;
            }
        for (int n = 0; n < dvp / 8; n++)
            for (int lane = 0; lane < 32; lane++)
                for (int i = 0; i < 4; i++)
                    o[n][lane][i] *= rescale[lane][i >> 1];
        for (int ks = 0; ks < GEN__ATTN_MMA_BK / 16; ks++) {
            float pa[32][4][2];
            for (int lane = 0; lane < 32; lane++)
                for (int r = 0; r < 4; r++)
                    for (int e = 0; e < 2; e++)
                        pa[lane][r][e] = s[2 * ks + gen__mma_p_tile(r)][lane][gen__mma_p_elem(r) + e];
            for (int n = 0; n < dvp / 8; n++) {
                float b[32][2][2];
                for (int lane = 0; lane < 32; lane++)
                    for (int r = 0; r < 2; r++)
                        for (int e = 0; e < 2; e++) {
                            int64_t key = k0 + ks * 16 + gen__mma_b_k(lane, r) + e;
                            int col = n * 8 + gen__mma_b_n(lane);
                            b[lane][r][e] = key < nk && col < dv ? v[key * dv + col] : 0.0f;
                        }
                mma_emul(o[n], pa, b);
            }
        }
    }
    for (int lane = 0; lane < 32; lane++)
        for (int hf = 0; hf < 2; hf++) {
            float total = 0.0f;
            for (int x = 0; x < 4; x++)
                total += l[(lane & ~3) | x][hf];
            int64_t row = row0 + gen__mma_c_row(lane, 2 * hf);
            if (row >= nq)
                continue;
            for (int n = 0; n < dvp / 8; n++)
                for (int e = 0; e < 2; e++) {
                    int col = n * 8 + gen__mma_c_col(lane, 2 * hf + e);
                    if (col < dv)
                        out[row * dv + col] = o[n][lane][2 * hf + e] / total;
                }
        }
}

static void test_attention_mma_emulation(void **state)
{
    (void)state;
    struct { int64_t nq, nk; int dk, dv; bool causal; } cases[] = {
        {5, 7, 3, 3, false}, {70, 77, 8, 5, true}, {33, 65, 40, 40, false},
        {100, 100, 12, 12, true}, {17, 40, 80, 64, false}, {20, 20, 160, 160, true},
    };
    srand(11);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        int64_t nq = cases[c].nq, nk = cases[c].nk;
        int dk = cases[c].dk, dv = cases[c].dv;
        float *q = malloc(sizeof(float) * (size_t)(nq * dk));
        float *k = malloc(sizeof(float) * (size_t)(nk * dk));
        float *v = malloc(sizeof(float) * (size_t)(nk * dv));
        float *o = calloc((size_t)(nq * dv), sizeof(float));
        double *r = malloc(sizeof(double) * (size_t)dv);
        for (int64_t i = 0; i < nq * dk; i++)
            q[i] = (float)((double)rand() / RAND_MAX) * 4.0f - 2.0f;
        for (int64_t i = 0; i < nk * dk; i++)
            k[i] = (float)((double)rand() / RAND_MAX) * 4.0f - 2.0f;
        for (int64_t i = 0; i < nk * dv; i++)
            v[i] = (float)((double)rand() / RAND_MAX) * 2.0f - 1.0f;
        float scale = 1.0f / sqrtf((float)dk);
        for (int64_t q0 = 0; q0 < nq; q0 += GEN__ATTN_MMA_BQ) /* blocks */
            for (int w = 0; w < 4; w++)                       /* their warps */
                emulate_mma_warp(q, k, v, q0 + 16 * w, q0, nq, nk, dk, dv, scale,
                                 cases[c].causal, o);
        for (int64_t qi = 0; qi < nq; qi++) {
            naive_row(q + qi * dk, k, v, qi, nk, dk, dv, scale, cases[c].causal, r);
            for (int d = 0; d < dv; d++)
                assert_true(fabs(o[qi * dv + d] - r[d]) < 1e-5 * (1.0 + fabs(r[d])));
        }
        free(q);
        free(k);
        free(v);
        free(o);
        free(r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bcast),
        cmocka_unit_test(test_layout_maps),
        cmocka_unit_test(test_attention_geometry),
        cmocka_unit_test(test_attention_emulation),
        cmocka_unit_test(test_attention_mma_emulation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
