/* Launchers of our CUDA kernels, callable from C. Each enqueues its work on
 * `stream` (of the calling thread's current device, which the backend has set)
 * and returns the launch status (cudaSuccess or the launch error; errors of the
 * kernel itself show up at the next synchronisation). Arguments have been
 * validated by the backend; `dtype` is a gen__dtype value (0 f32, 1 f16,
 * 2 bf16) and every pointer is device memory of that dtype unless noted.
 * Arithmetic is f32 whatever the storage dtype. */
#ifndef GEN_BACKEND_CUDA_KERNELS_KERNELS_H
#define GEN_BACKEND_CUDA_KERNELS_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "backend/cuda/kernels/plan.h"

#ifdef __cplusplus
extern "C" {
#endif

/* gen__unary_op values */
#define GEN__CUK_SILU 0
#define GEN__CUK_GELU 1
#define GEN__CUK_GELU_TANH 2
#define GEN__CUK_QUICK_GELU 3

cudaError_t gen__cuk_fill(cudaStream_t s, int dtype, void *out, int64_t n, float value);
/* Element-wise dtype conversion with round-to-nearest-even (NaN kept quiet). */
cudaError_t gen__cuk_convert(cudaStream_t s, void *out, int out_dtype, const void *x, int x_dtype,
                             int64_t n);
cudaError_t gen__cuk_unary(cudaStream_t s, int dtype, void *out, const void *x, int64_t n, int op);
/* x [rows, 2d] -> out [rows, d] = x[:, :d] * gelu_erf(x[:, d:]) */
cudaError_t gen__cuk_geglu(cudaStream_t s, int dtype, void *out, const void *x, int64_t rows,
                           int64_t d);
/* out = a (+|*) b following the broadcast plan; op 0 add, 1 mul */
cudaError_t gen__cuk_binary(cudaStream_t s, int dtype, void *out, const void *a, const void *b,
                            const gen__bcast_plan *plan, int op);
/* out = alpha a + beta b (b may be NULL: out = alpha a) */
cudaError_t gen__cuk_axpby(cudaStream_t s, int dtype, void *out, float alpha, const void *a,
                           float beta, const void *b, int64_t n);
/* out [outer, channels, inner] += bias[channels] (in place) */
cudaError_t gen__cuk_bias_add(cudaStream_t s, int dtype, void *out, const void *bias,
                              int64_t outer, int64_t channels, int64_t inner);
/* x, out [n, c, spatial]; gamma/beta [c] or NULL */
cudaError_t gen__cuk_group_norm(cudaStream_t s, int dtype, void *out, const void *x,
                                const void *gamma, const void *beta, int64_t n, int64_t c,
                                int64_t spatial, int groups, float eps, bool silu);
/* x, out [rows, d]; gamma, beta [d] or NULL each */
cudaError_t gen__cuk_layer_norm(cudaStream_t s, int dtype, void *out, const void *x,
                                const void *gamma, const void *beta, int64_t rows, int64_t d,
                                float eps);
cudaError_t gen__cuk_softmax(cudaStream_t s, int dtype, void *out, const void *x, int64_t rows,
                             int64_t n, float scale);
/* q [b, nq, heads*dk], k [b, nk, heads*dk], v [b, nk, heads*dv], out [b, nq, heads*dv];
 * dk, dv in 1..GEN__ATTN_MAX_DIM (cudaErrorInvalidValue otherwise). */
cudaError_t gen__cuk_attention(cudaStream_t s, int dtype, void *out, const void *q, const void *k,
                               const void *v, int64_t b, int64_t nq, int64_t nk, int heads, int dk,
                               int dv, float scale, bool causal);
/* The same on tensor cores (mma.sync, sm_80+): f16/bf16 only
 * (cudaErrorInvalidValue for f32, and when the build has no device code for
 * sm_80 or newer: see gen__cuk_attention_mma_built). */
/* Whether the build holds tensor-core code for the attention (gpu_archs
 * reaches 80). */
bool gen__cuk_attention_mma_built(void);
cudaError_t gen__cuk_attention_mma(cudaStream_t s, int dtype, void *out, const void *q,
                                   const void *k, const void *v, int64_t b, int64_t nq, int64_t nk,
                                   int heads, int dk, int dv, float scale, bool causal);
/* x [nc, h, w] -> out [nc, 2h, 2w] */
cudaError_t gen__cuk_upsample2x(cudaStream_t s, int dtype, void *out, const void *x, int64_t nc,
                                int64_t h, int64_t w);
/* x [nc, h, w] -> out [nc, h + top + bottom, w + left + right] (zeros around) */
cudaError_t gen__cuk_pad2d(cudaStream_t s, int dtype, void *out, const void *x, int64_t nc,
                           int64_t h, int64_t w, int top, int bottom, int left, int right);
/* out [outer, wa + wb] from a [outer, wa] and b [outer, wb] */
cudaError_t gen__cuk_concat(cudaStream_t s, int dtype, void *out, const void *a, const void *b,
                            int64_t outer, int64_t wa, int64_t wb);
/* x [batch, p, q] -> out [batch, q, p] */
cudaError_t gen__cuk_transpose(cudaStream_t s, int dtype, void *out, const void *x, int64_t batch,
                               int64_t p, int64_t q);
/* out [rows, d] = table[ids[r], :]; ids: device int32 array of `rows` entries */
cudaError_t gen__cuk_embedding(cudaStream_t s, int dtype, void *out, const void *table,
                               const int32_t *ids, int64_t rows, int64_t d);

#ifdef __cplusplus
}
#endif

#endif
