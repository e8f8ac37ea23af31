// Fused attention with online softmax (flash-attention style, CUDA cores,
// f32 arithmetic): no [Nq, Nk] score matrix ever exists.
//
// Block = GEN__ATTN_WARPS warps for one (batch, head) and GEN__ATTN_BQ query
// rows; warp w owns rows [w * ROWS, (w + 1) * ROWS) of the block. Keys and
// values stream through shared memory in tiles of 32 rows: lane j scores key j
// of the tile against the warp's rows, the warp agrees on the new running max
// (one warp_max per row and tile), and every lane accumulates its 32-wide
// slices of the value dimension (d = lane + 32 c) using the probabilities it
// fetches from the other lanes with shuffles. Each lane keeps a partial row
// sum l (over the keys it scored); the final sum is one warp_sum per row.
// Scores are kept in log2 units (q pre-scaled by scale * log2 e) for exp2f.
#include "backend/cuda/kernels/common.cuh"

namespace gen_cuk {

constexpr int kRows = GEN__ATTN_ROWS;
constexpr int kBQ = GEN__ATTN_BQ;
constexpr int kBK = GEN__ATTN_BK;
constexpr int kAttnThreads = GEN__ATTN_WARPS * 32;

static_assert(kBK == 32, "one key per lane");

template <typename T, int VC>
__global__ void __launch_bounds__(kAttnThreads)
    attention_k(T *out, const T *q, const T *k, const T *v, int64_t nq, int64_t nk, int heads,
                int dk, int dv, float scale_log2, bool causal)
{
    GEN__DYNAMIC_SMEM(float, smem);
    float *qs = smem;                  // [kBQ][dk]
    float *ks = qs + kBQ * dk;         // [kBK][dk + 1]
    float *vs = ks + kBK * (dk + 1);   // [kBK][dv]

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int64_t bi = blockIdx.y / heads;
    const int h = blockIdx.y % heads;
    const int64_t q0 = (int64_t)blockIdx.x * kBQ;
    const int64_t qk_stride = (int64_t)heads * dk, v_stride = (int64_t)heads * dv;
    const T *qb = q + bi * nq * qk_stride + (int64_t)h * dk;
    const T *kb = k + bi * nk * qk_stride + (int64_t)h * dk;
    const T *vb = v + bi * nk * v_stride + (int64_t)h * dv;
    T *ob = out + bi * nq * v_stride + (int64_t)h * dv;

    // tiles are loaded row by row: warp w takes rows w, w + WARPS, ...; lanes
    // walk the row's columns (coalesced, no division)
    for (int r = warp; r < kBQ; r += GEN__ATTN_WARPS) {
        int64_t qi = q0 + r;
        for (int d = lane; d < dk; d += 32)
            qs[r * dk + d] = qi < nq ? to_f32(qb[qi * qk_stride + d]) * scale_log2 : 0.0f;
    }

    float m[kRows], l[kRows], acc[kRows][VC];
#pragma unroll
    for (int r = 0; r < kRows; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
#pragma unroll
        for (int c = 0; c < VC; c++)
            acc[r][c] = 0.0f;
    }

    const int64_t row0 = q0 + (int64_t)warp * kRows;
    const int64_t key_end = gen__attn_key_end(q0, nq, nk, causal);
    for (int64_t k0 = 0; k0 < key_end; k0 += kBK) {
        __syncthreads(); // the previous tile is consumed (first pass: q is stored)
        for (int r = warp; r < kBK; r += GEN__ATTN_WARPS) {
            int64_t kj = k0 + r;
            bool in = kj < nk;
            for (int d = lane; d < dk; d += 32)
                ks[r * (dk + 1) + d] = in ? to_f32(kb[kj * qk_stride + d]) : 0.0f;
            for (int d = lane; d < dv; d += 32)
                vs[r * dv + d] = in ? to_f32(vb[kj * v_stride + d]) : 0.0f;
        }
        __syncthreads();

        float s[kRows];
#pragma unroll
        for (int r = 0; r < kRows; r++)
            s[r] = 0.0f;
        const float *krow = ks + lane * (dk + 1);
        const float *qrow = qs + warp * kRows * dk;
        for (int d = 0; d < dk; d++) {
            float kd = krow[d];
#pragma unroll
            for (int r = 0; r < kRows; r++)
                s[r] = fmaf(qrow[r * dk + d], kd, s[r]);
        }

        const int64_t kj = k0 + lane;
        float p[kRows];
#pragma unroll
        for (int r = 0; r < kRows; r++) {
            float sv = gen__attn_visible(row0 + r, kj, nk, causal) ? s[r] : -INFINITY;
            float rescale;
            float mn = gen__attn_new_max(m[r], warp_max(sv), &rescale);
            p[r] = gen__attn_prob(sv, mn);
            l[r] = l[r] * rescale + p[r];
#pragma unroll
            for (int c = 0; c < VC; c++)
                acc[r][c] *= rescale;
            m[r] = mn;
        }

        for (int j = 0; j < kBK; j++) {
            float vj[VC];
#pragma unroll
            for (int c = 0; c < VC; c++) {
                int d = lane + 32 * c;
                vj[c] = d < dv ? vs[j * dv + d] : 0.0f;
            }
#pragma unroll
            for (int r = 0; r < kRows; r++) {
                float pj = __shfl_sync(kFullMask, p[r], j);
#pragma unroll
                for (int c = 0; c < VC; c++)
                    acc[r][c] = fmaf(pj, vj[c], acc[r][c]);
            }
        }
    }

#pragma unroll
    for (int r = 0; r < kRows; r++) {
        float total = warp_sum(l[r]); // 0 only if no key is visible: NaN like torch
        int64_t qi = row0 + r;
        if (qi >= nq)
            continue;
        float inv = 1.0f / total;
#pragma unroll
        for (int c = 0; c < VC; c++) {
            int d = lane + 32 * c;
            if (d < dv)
                ob[qi * v_stride + d] = from_f32<T>(acc[r][c] * inv);
        }
    }
}

template <typename T, int VC>
cudaError_t launch(cudaStream_t s, T *out, const T *q, const T *k, const T *v, int64_t b, int64_t nq,
                   int64_t nk, int heads, int dk, int dv, float scale, bool causal)
{
    size_t smem = (size_t)gen__attn_smem_floats(dk, dv) * sizeof(float);
    if (smem > 48 * 1024) {
        cudaError_t err = cudaFuncSetAttribute(attention_k<T, VC>,
                                               cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (err != cudaSuccess)
            return err;
    }
    dim3 grid((unsigned)((nq + kBQ - 1) / kBQ), (unsigned)(b * heads));
    const float log2e = 1.4426950408889634f;
    launch_kernel(attention_k<T, VC>, grid, kAttnThreads, smem, s, out, q, k, v, nq, nk, heads, dk,
                  dv, scale * log2e, causal);
    return cudaGetLastError();
}

} // namespace gen_cuk

using namespace gen_cuk;

extern "C" cudaError_t gen__cuk_attention(cudaStream_t s, int dtype, void *out, const void *q,
                                          const void *k, const void *v, int64_t b, int64_t nq,
                                          int64_t nk, int heads, int dk, int dv, float scale,
                                          bool causal)
{
    if (dk < 1 || dv < 1 || dk > GEN__ATTN_MAX_DIM || dv > GEN__ATTN_MAX_DIM || heads < 1 ||
        b * heads > 65535 || (nq + kBQ - 1) / kBQ > 0x7fffffff || nq < 1 || nk < 1)
        return cudaErrorInvalidValue;
    cudaError_t err = cudaSuccess;
    cudaError_t derr = dispatch(dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        T *o = (T *)out;
        const T *qq = (const T *)q, *kk = (const T *)k, *vv = (const T *)v;
        switch (gen__attn_vchunks(dv)) {
        case 1:
            err = launch<T, 1>(s, o, qq, kk, vv, b, nq, nk, heads, dk, dv, scale, causal);
            break;
        case 2:
            err = launch<T, 2>(s, o, qq, kk, vv, b, nq, nk, heads, dk, dv, scale, causal);
            break;
        case 3:
            err = launch<T, 3>(s, o, qq, kk, vv, b, nq, nk, heads, dk, dv, scale, causal);
            break;
        default:
            err = launch<T, 5>(s, o, qq, kk, vv, b, nq, nk, heads, dk, dv, scale, causal);
            break;
        }
    });
    return err != cudaSuccess ? err : derr;
}
