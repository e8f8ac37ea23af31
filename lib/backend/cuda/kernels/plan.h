/* Index and tiling arithmetic shared by the CUDA kernels (device code) and the
 * host: plain C, no CUDA headers, so the unit suite checks the exact functions
 * the kernels use on a machine without a GPU (tests/backend/test_cuda_plan.c). */
#ifndef GEN_BACKEND_CUDA_KERNELS_PLAN_H
#define GEN_BACKEND_CUDA_KERNELS_PLAN_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __CUDACC__
#define GEN__HD __host__ __device__ __forceinline__
#else
#define GEN__HD static inline
#endif

#define GEN__PLAN_MAX_DIMS 5

/* ---- broadcasting binary ops ------------------------------------------------
 * The output shape with the operands' element strides (0 where an operand is
 * broadcast), after merging neighbouring dimensions that broadcast alike:
 * [2,320,64,64] + [1,320,1,1] becomes dims [2,320,4096], sa [..], sb [0,1,0]. */
typedef struct gen__bcast_plan {
    int nd;                           /* 1..GEN__PLAN_MAX_DIMS */
    int64_t dims[GEN__PLAN_MAX_DIMS];
    int64_t sa[GEN__PLAN_MAX_DIMS];
    int64_t sb[GEN__PLAN_MAX_DIMS];
} gen__bcast_plan;

/* Shapes are right-aligned (numpy rules); the caller has checked that they
 * broadcast to out_shape. Returns false only for out_nd outside 1..5. */
GEN__HD bool gen__bcast_make(gen__bcast_plan *p, int out_nd, const int64_t *out_shape, int a_nd,
                             const int64_t *a_shape, int b_nd, const int64_t *b_shape)
{
    if (out_nd < 1 || out_nd > GEN__PLAN_MAX_DIMS)
        return false;
    int64_t dims[GEN__PLAN_MAX_DIMS], sa[GEN__PLAN_MAX_DIMS], sb[GEN__PLAN_MAX_DIMS];
    int64_t ra = 1, rb = 1; /* running strides of a and b, innermost first */
    for (int i = out_nd - 1; i >= 0; i--) {
        int ia = i - (out_nd - a_nd), ib = i - (out_nd - b_nd);
        int64_t da = ia >= 0 ? a_shape[ia] : 1, db = ib >= 0 ? b_shape[ib] : 1;
        dims[i] = out_shape[i];
        sa[i] = (da == 1 && out_shape[i] != 1) ? 0 : ra;
        sb[i] = (db == 1 && out_shape[i] != 1) ? 0 : rb;
        ra *= da;
        rb *= db;
    }
    /* merge dimension i into i+1 (outer into inner) when both operands step
     * through them contiguously or both broadcast them; size-1 dims vanish */
    int n = 0;
    for (int i = 0; i < out_nd; i++) {
        if (dims[i] == 1)
            continue;
        p->dims[n] = dims[i];
        p->sa[n] = sa[i];
        p->sb[n] = sb[i];
        n++;
    }
    if (n == 0) {
        p->nd = 1;
        p->dims[0] = 1;
        p->sa[0] = p->sb[0] = 0;
        return true;
    }
    int m = 0; /* p->dims[0..m] merged so far, m = index of the last kept */
    for (int i = 1; i < n; i++) {
        bool a_ok = p->sa[m] == p->sa[i] * p->dims[i];
        bool b_ok = p->sb[m] == p->sb[i] * p->dims[i];
        if (a_ok && b_ok) {
            p->dims[m] *= p->dims[i];
            p->sa[m] = p->sa[i];
            p->sb[m] = p->sb[i];
        } else {
            m++;
            p->dims[m] = p->dims[i];
            p->sa[m] = p->sa[i];
            p->sb[m] = p->sb[i];
        }
    }
    p->nd = m + 1;
    return true;
}

/* Element offsets into a and b of output element `idx` (row-major). */
GEN__HD void gen__bcast_offsets(const gen__bcast_plan *p, int64_t idx, int64_t *oa, int64_t *ob)
{
    int64_t a = 0, b = 0;
    for (int i = p->nd - 1; i >= 0; i--) {
        int64_t d = p->dims[i];
        int64_t c = idx % d;
        idx /= d;
        a += c * p->sa[i];
        b += c * p->sb[i];
    }
    *oa = a;
    *ob = b;
}

/* ---- layout ops --------------------------------------------------------------- */

/* concat: out viewed as [outer, wa + wb] where wa = a.shape[dim] * inner (and wb
 * likewise). Returns 0 and the offset into a, or 1 and the offset into b. */
GEN__HD int gen__concat_source(int64_t idx, int64_t wa, int64_t wb, int64_t *off)
{
    int64_t row = idx / (wa + wb), col = idx % (wa + wb);
    if (col < wa) {
        *off = row * wa + col;
        return 0;
    }
    *off = row * wb + (col - wa);
    return 1;
}

/* upsample_nearest2x: output element idx of [NC, 2H, 2W] reads input [NC, H, W]. */
GEN__HD int64_t gen__upsample2x_source(int64_t idx, int64_t h, int64_t w)
{
    int64_t ow = 2 * w, oh = 2 * h;
    int64_t x = idx % ow, y = (idx / ow) % oh, nc = idx / (ow * oh);
    return (nc * h + y / 2) * w + x / 2;
}

/* Zero padding of [NC, H, W] into [NC, H+top+bottom, W+left+right]: the input
 * offset read by output element idx, or -1 for a padding zero. */
GEN__HD int64_t gen__pad2d_source(int64_t idx, int64_t h, int64_t w, int top, int bottom,
                                  int left, int right)
{
    int64_t ow = w + left + right, oh = h + top + bottom;
    int64_t x = idx % ow - left, y = (idx / ow) % oh - top, nc = idx / (ow * oh);
    if (x < 0 || x >= w || y < 0 || y >= h)
        return -1;
    return (nc * h + y) * w + x;
}

/* ---- attention tiling --------------------------------------------------------
 * One block = GEN__ATTN_WARPS warps; each warp owns GEN__ATTN_ROWS query rows;
 * key/value tiles of 32 rows (one key per lane) sit in shared memory as f32.
 * Dims up to GEN__ATTN_MAX_DIM; the value row is split into 32-wide chunks. */
#define GEN__ATTN_WARPS 4
#define GEN__ATTN_ROWS 4
#define GEN__ATTN_BQ (GEN__ATTN_WARPS * GEN__ATTN_ROWS)
#define GEN__ATTN_BK 32
#define GEN__ATTN_MAX_DIM 160

/* Value chunks per lane: ceil(dv / 32) rounded up to a compiled variant (1, 2, 3, 5). */
GEN__HD int gen__attn_vchunks(int dv)
{
    int c = (dv + 31) / 32;
    return c <= 3 ? (c < 1 ? 1 : c) : 5;
}

/* Shared memory of one block, in floats: Q [BQ][dk], K [BK][dk + 1] (the +1
 * keeps lanes reading one column of different rows on different banks),
 * V [BK][dv]. */
GEN__HD int64_t gen__attn_smem_floats(int dk, int dv)
{
    return (int64_t)GEN__ATTN_BQ * dk + (int64_t)GEN__ATTN_BK * (dk + 1) +
           (int64_t)GEN__ATTN_BK * dv;
}

/* Keys a block of queries [q0, q0 + BQ) must visit: [0, end). Causal
 * (top-left aligned): key j is visible to query i when j <= i. */
GEN__HD int64_t gen__attn_key_end(int64_t q0, int64_t nq, int64_t nk, bool causal)
{
    if (!causal)
        return nk;
    int64_t last_q = q0 + GEN__ATTN_BQ - 1;
    if (last_q > nq - 1)
        last_q = nq - 1;
    return last_q + 1 < nk ? last_q + 1 : nk;
}

GEN__HD bool gen__attn_visible(int64_t qi, int64_t kj, int64_t nk, bool causal)
{
    return kj < nk && (!causal || kj <= qi);
}

/* Online softmax step (scores in log2 units): the running max m becomes
 * max(m, tile_max); *rescale multiplies the old sum and accumulator. While
 * nothing is visible (max still -inf) the rescale is 1 and probabilities 0. */
GEN__HD float gen__attn_new_max(float m, float tile_max, float *rescale)
{
    float mn = m > tile_max ? m : tile_max;
    *rescale = (m == -INFINITY) ? 1.0f : exp2f(m - mn);
    return mn;
}

GEN__HD float gen__attn_prob(float s, float m)
{
    return (s == -INFINITY || m == -INFINITY) ? 0.0f : exp2f(s - m);
}

/* ---- group norm ------------------------------------------------------------------ */

/* Group g of sample n covers the contiguous range [base, base + count) of a
 * [N, C, S] tensor; element e of it has channel g * (C / groups) + e / S. */
GEN__HD int64_t gen__gn_base(int64_t n, int64_t g, int64_t c, int64_t s, int64_t groups)
{
    return (n * c + g * (c / groups)) * s;
}

#endif
