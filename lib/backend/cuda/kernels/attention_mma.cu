// Fused attention on tensor cores (f16/bf16 storage, sm_80+): the
// flash-attention-2 scheme with mma.sync m16n8k16 (f32 accumulation).
//
// Block = 4 warps and 64 query rows of one (batch, head); warp w owns rows
// [16 w, 16 w + 16). Q (once) and each 32-key tile of K and V are staged in
// shared memory in the storage type, zero-padded to multiples of 16 columns.
// Per tile a warp computes S = Q K^T (16 x 32: four n8 tiles) with mma, applies
// scale, mask and the online softmax on the accumulator fragments (a row's
// values live in the 4 lanes of a quad: max via two xor-shuffles), turns the
// probabilities into A fragments of the next mma without leaving registers, and
// accumulates O += P V. Fragment layouts (PTX ISA, m16n8k16): g = lane / 4,
// t = lane % 4; A regs {r0: (g, 2t..2t+1), r1: (g+8, 2t..), r2: (g, 2t+8..),
// r3: (g+8, 2t+8..)}; B regs {r0: (k 2t..2t+1, n g), r1: (k 2t+8.., n g)};
// C {c0,c1: (g, 2t..2t+1), c2,c3: (g+8, 2t..2t+1)}.
#include <type_traits>

#include "backend/cuda/kernels/common.cuh"

namespace gen_cuk {

constexpr int kMmaWarps = 4;
constexpr int kMmaBQ = GEN__ATTN_MMA_BQ; // 64
constexpr int kMmaBK = GEN__ATTN_MMA_BK; // 32

template <typename T> __device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <> __device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi)
{
    __half2 h = __floats2half2_rn(lo, hi); // .x = lo = lower 16 bits
    return *reinterpret_cast<uint32_t *>(&h);
}
template <> __device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi)
{
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&h);
}

template <typename T> __device__ __forceinline__ uint32_t pack_raw(T lo, T hi)
{
    uint16_t l = *reinterpret_cast<uint16_t *>(&lo), h = *reinterpret_cast<uint16_t *>(&hi);
    return (uint32_t)l | ((uint32_t)h << 16);
}

template <typename T>
__device__ __forceinline__ void mma16816(float *c, const uint32_t *a, uint32_t b0, uint32_t b1);

template <>
__device__ __forceinline__ void mma16816<__half>(float *c, const uint32_t *a, uint32_t b0, uint32_t b1)
{
#if defined(GEN_CUDA_EMU)
    gen_emu::mma16816(false, c, a, b0, b1);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    __trap();
#endif
}

template <>
__device__ __forceinline__ void mma16816<__nv_bfloat16>(float *c, const uint32_t *a, uint32_t b0,
                                                        uint32_t b1)
{
#if defined(GEN_CUDA_EMU)
    gen_emu::mma16816(true, c, a, b0, b1);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    __trap();
#endif
}

// MAXD: the largest padded head dim this instantiation holds in registers
// (64 or 160); dkp, dvp: the padded dims of this call (multiples of 16).
template <typename T, int MAXD>
__global__ void __launch_bounds__(kMmaWarps * 32)
    attention_mma_k(T *out, const T *q, const T *k, const T *v, int64_t nq, int64_t nk, int heads,
                    int dk, int dv, int dkp, int dvp, float scale_log2, bool causal)
{
    constexpr int KT = MAXD / 16; // k-steps of S = Q K^T
    constexpr int VN = MAXD / 8;  // n8 tiles of O
    GEN__DYNAMIC_SMEM(unsigned char, smem_raw);
    T *qs = reinterpret_cast<T *>(smem_raw);
    const int qld = dkp + 8, kld = dkp + 8, vld = dvp + 8; // +8: rotate banks between rows
    T *ks = qs + kMmaBQ * qld;
    T *vs = ks + kMmaBK * kld;

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t bi = blockIdx.y / heads;
    const int h = blockIdx.y % heads;
    const int64_t q0 = (int64_t)blockIdx.x * kMmaBQ;
    const int64_t qk_stride = (int64_t)heads * dk, v_stride = (int64_t)heads * dv;
    const T *qb = q + bi * nq * qk_stride + (int64_t)h * dk;
    const T *kb = k + bi * nk * qk_stride + (int64_t)h * dk;
    const T *vb = v + bi * nk * v_stride + (int64_t)h * dv;
    T *ob = out + bi * nq * v_stride + (int64_t)h * dv;
    const T zero = from_f32<T>(0.0f);

    for (int r = warp; r < kMmaBQ; r += kMmaWarps) {
        int64_t qi = q0 + r;
        for (int d = lane; d < dkp; d += 32)
            qs[r * qld + d] = (qi < nq && d < dk) ? qb[qi * qk_stride + d] : zero;
    }
    __syncthreads();

    // this warp's Q fragments, kept in registers for the whole key loop
    uint32_t qf[KT][4];
    const T *qw = qs + (warp * 16) * qld;
#pragma unroll
    for (int kk = 0; kk < KT; kk++) {
        if (kk * 16 < dkp) {
#pragma unroll
            for (int r = 0; r < 4; r++)
                qf[kk][r] = *reinterpret_cast<const uint32_t *>(
                    qw + gen__mma_a_row(lane, r) * qld + kk * 16 + gen__mma_a_col(lane, r));
        }
    }

    float o[VN][4];
#pragma unroll
    for (int n = 0; n < VN; n++)
        o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    const int64_t row[2] = {q0 + warp * 16 + gen__mma_c_row(lane, 0),
                            q0 + warp * 16 + gen__mma_c_row(lane, 2)};

    const int64_t key_end = causal ? (q0 + kMmaBQ < nk ? q0 + kMmaBQ : nk) : nk;
    for (int64_t k0 = 0; k0 < key_end; k0 += kMmaBK) {
        __syncthreads(); // previous tile consumed
        for (int r = warp; r < kMmaBK; r += kMmaWarps) {
            int64_t kj = k0 + r;
            bool in = kj < nk;
            for (int d = lane; d < dkp; d += 32)
                ks[r * kld + d] = (in && d < dk) ? kb[kj * qk_stride + d] : zero;
            for (int d = lane; d < dvp; d += 32)
                vs[r * vld + d] = (in && d < dv) ? vb[kj * v_stride + d] : zero;
        }
        __syncthreads();

        float s[kMmaBK / 8][4];
#pragma unroll
        for (int j = 0; j < kMmaBK / 8; j++) {
            s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
            const T *kr = ks + (j * 8 + gen__mma_b_n(lane)) * kld; // B(k = dim, n = key)
#pragma unroll
            for (int kk = 0; kk < KT; kk++) {
                if (kk * 16 < dkp) {
                    uint32_t b0 = *reinterpret_cast<const uint32_t *>(kr + kk * 16 + gen__mma_b_k(lane, 0));
                    uint32_t b1 = *reinterpret_cast<const uint32_t *>(kr + kk * 16 + gen__mma_b_k(lane, 1));
                    mma16816<T>(s[j], qf[kk], b0, b1);
                }
            }
        }

        // scale, mask, online softmax per row (half = 0: row g, 1: row g + 8)
        float rescale[2];
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
            float mx = -INFINITY;
#pragma unroll
            for (int j = 0; j < kMmaBK / 8; j++) {
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    int64_t kj = k0 + j * 8 + gen__mma_c_col(lane, 2 * hf + e);
                    float x = s[j][2 * hf + e] * scale_log2;
                    x = gen__attn_visible(row[hf], kj, nk, causal) ? x : -INFINITY;
                    s[j][2 * hf + e] = x;
                    mx = fmaxf(mx, x);
                }
            }
            mx = fmaxf(mx, __shfl_xor_sync(kFullMask, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(kFullMask, mx, 2));
            float mn = gen__attn_new_max(m[hf], mx, &rescale[hf]);
            float sum = 0.0f;
#pragma unroll
            for (int j = 0; j < kMmaBK / 8; j++) {
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    float p = gen__attn_prob(s[j][2 * hf + e], mn);
                    s[j][2 * hf + e] = p;
                    sum += p;
                }
            }
            l[hf] = l[hf] * rescale[hf] + sum;
            m[hf] = mn;
        }
#pragma unroll
        for (int n = 0; n < VN; n++) {
            o[n][0] *= rescale[0];
            o[n][1] *= rescale[0];
            o[n][2] *= rescale[1];
            o[n][3] *= rescale[1];
        }

        // O += P V: P's accumulator tiles 2ks, 2ks+1 are the A fragment of k-step ks
#pragma unroll
        for (int kstep = 0; kstep < kMmaBK / 16; kstep++) {
            uint32_t pa[4];
#pragma unroll
            for (int r = 0; r < 4; r++) {
                const float *src = s[2 * kstep + gen__mma_p_tile(r)] + gen__mma_p_elem(r);
                pa[r] = pack2<T>(src[0], src[1]);
            }
            // B(k = key, n = value column): two keys per register, one column
            const T *v0 = vs + (kstep * 16) * vld + gen__mma_b_n(lane);
            const int k0r = gen__mma_b_k(lane, 0), k1r = gen__mma_b_k(lane, 1);
#pragma unroll
            for (int n = 0; n < VN; n++) {
                if (n * 8 < dvp) {
                    const T *vc = v0 + n * 8;
                    uint32_t b0 = pack_raw<T>(vc[k0r * vld], vc[(k0r + 1) * vld]);
                    uint32_t b1 = pack_raw<T>(vc[k1r * vld], vc[(k1r + 1) * vld]);
                    mma16816<T>(o[n], pa, b0, b1);
                }
            }
        }
    }

#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
        float total = l[hf];
        total += __shfl_xor_sync(kFullMask, total, 1);
        total += __shfl_xor_sync(kFullMask, total, 2);
        float inv = 1.0f / total;
        if (row[hf] >= nq)
            continue;
        T *orow = ob + row[hf] * v_stride;
#pragma unroll
        for (int n = 0; n < VN; n++) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int col = n * 8 + gen__mma_c_col(lane, 2 * hf + e);
                if (n * 8 < dvp && col < dv)
                    orow[col] = from_f32<T>(o[n][2 * hf + e] * inv);
            }
        }
    }
}

template <typename T, int MAXD>
cudaError_t launch_mma(cudaStream_t s, T *out, const T *q, const T *k, const T *v, int64_t b,
                       int64_t nq, int64_t nk, int heads, int dk, int dv, float scale, bool causal)
{
    int dkp = gen__attn_mma_pad(dk), dvp = gen__attn_mma_pad(dv);
    size_t smem = (size_t)gen__attn_mma_smem_elems(dkp, dvp) * sizeof(T);
    if (smem > 48 * 1024) {
        cudaError_t err = cudaFuncSetAttribute(attention_mma_k<T, MAXD>,
                                               cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (err != cudaSuccess)
            return err;
    }
    dim3 grid((unsigned)((nq + kMmaBQ - 1) / kMmaBQ), (unsigned)(b * heads));
    const float log2e = 1.4426950408889634f;
    launch_kernel(attention_mma_k<T, MAXD>, grid, kMmaWarps * 32, smem, s, out, q, k, v, nq, nk,
                  heads, dk, dv, dkp, dvp, scale * log2e, causal);
    return cudaGetLastError();
}

} // namespace gen_cuk

using namespace gen_cuk;

#ifndef GEN_CUK_NEWEST_ARCH
#define GEN_CUK_NEWEST_ARCH 90 // builds that do not say (the CPU emulator)
#endif

extern "C" bool gen__cuk_attention_mma_built(void)
{
    return GEN_CUK_NEWEST_ARCH >= 80;
}

extern "C" cudaError_t gen__cuk_attention_mma(cudaStream_t s, int dtype, void *out, const void *q,
                                              const void *k, const void *v, int64_t b, int64_t nq,
                                              int64_t nk, int heads, int dk, int dv, float scale,
                                              bool causal)
{
    if (!gen__cuk_attention_mma_built() || dtype == 0 || dk < 1 || dv < 1 ||
        dk > GEN__ATTN_MAX_DIM || dv > GEN__ATTN_MAX_DIM ||
        heads < 1 || b * heads > 65535 || nq < 1 || nk < 1 ||
        (nq + kMmaBQ - 1) / kMmaBQ > 0x7fffffff)
        return cudaErrorInvalidValue;
    bool small = gen__attn_mma_pad(dk) <= 64 && gen__attn_mma_pad(dv) <= 64;
    cudaError_t err = cudaSuccess;
    cudaError_t derr = dispatch(dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        if constexpr (std::is_same<T, float>::value) {
            err = cudaErrorInvalidValue;
        } else {
            T *o = (T *)out;
            const T *qq = (const T *)q, *kk = (const T *)k, *vv = (const T *)v;
            err = small ? launch_mma<T, 64>(s, o, qq, kk, vv, b, nq, nk, heads, dk, dv, scale, causal)
                        : launch_mma<T, 160>(s, o, qq, kk, vv, b, nq, nk, heads, dk, dv, scale, causal);
        }
    });
    return err != cudaSuccess ? err : derr;
}
