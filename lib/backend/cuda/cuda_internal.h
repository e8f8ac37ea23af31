/* State shared by the CUDA backend's host files. */
#ifndef GEN_BACKEND_CUDA_CUDA_INTERNAL_H
#define GEN_BACKEND_CUDA_CUDA_INTERNAL_H

/* The CUDA headers test undefined macros (__cplusplus, _MSC_FULL_VER) in #if,
 * which our -Wundef -Werror rejects: silence that for them only. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wundef"
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#pragma GCC diagnostic pop

#include "backend/backend.h"
#include "backend/cache_alloc.h"
#include "backend/cuda_backend.h"
#include "backend/gpu_probe.h"

typedef struct gen__cuda_conv_plan gen__cuda_conv_plan;

typedef struct gen__cuda_ctx {
    gen__backend *be;
    int device;
    gen__gpu_props props;
    cudaStream_t stream;
    cublasHandle_t blas;
    cudnnHandle_t dnn;
    gen__cache_alloc cache;
    void *blas_ws;
    size_t blas_ws_bytes;
    void *conv_ws;             /* grows on demand up to conv_ws_limit, never shrinks */
    size_t conv_ws_bytes, conv_ws_limit;
    gen__cuda_conv_plan *plans; /* conv algorithm per shape (cuda_conv.c) */
    int attention_mode;          /* GEN__CUDA_ATTENTION_AUTO, _SIMPLE or _MMA */
    signed char mma_checked[3];  /* per dtype, AUTO: 1 agreed, -1 differed or failed, 0 not yet */
    float mma_check_error[3];    /* per dtype: the check's worst relative L2 (NaN before) */
    int mma_check_oom;           /* checks put off for lack of memory (a few are allowed) */
} gen__cuda_ctx;

static inline gen__cuda_ctx *gen__cuda(gen__backend *be)
{
    return (gen__cuda_ctx *)be->ctx;
}

/* Make the backend's device current on the calling thread (every entry point
 * does this first). */
gen_status gen__cuda_enter(gen__cuda_ctx *c);

/* Record a failed CUDA / cuBLAS / cuDNN call: GEN_EDEVICE (GEN_EDEVICE_OOM for
 * allocation failures) with a message naming the device and `what`. */
gen_status gen__cuda_fail(gen__cuda_ctx *c, cudaError_t err, const char *what);
gen_status gen__cublas_fail(gen__cuda_ctx *c, cublasStatus_t st, const char *what);
gen_status gen__cudnn_fail(gen__cuda_ctx *c, cudnnStatus_t st, const char *what);

#define GEN__CU(c, call, what)                                                                     \
    do {                                                                                           \
        cudaError_t gen__cu_err = (call);                                                          \
        if (gen__cu_err != cudaSuccess)                                                            \
            return gen__cuda_fail((c), gen__cu_err, (what));                                       \
    } while (0)

/* Device memory through the caching allocator (counted in mem_info). */
gen_status gen__cuda_alloc(gen__backend *be, size_t bytes, void **out);
void gen__cuda_free(gen__backend *be, void *ptr);

/* The cuDNN workspace, grown to at least `bytes` (<= the limit). */
gen_status gen__cuda_conv_workspace(gen__cuda_ctx *c, size_t bytes);
void gen__cuda_conv_plans_destroy(gen__cuda_ctx *c);

/* ops (validated arguments; see backend.h) */
gen_status gen__cuda_gemm(gen__backend *be, gen__tensor *c, const gen__tensor *a,
                          const gen__tensor *b, bool trans_a, bool trans_b, float alpha, float beta);
gen_status gen__cuda_linear(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                            const gen__tensor *weight, const gen__tensor *bias);
gen_status gen__cuda_conv2d(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                            const gen__tensor *weight, const gen__tensor *bias,
                            const gen__conv2d_params *p);
gen_status gen__cuda_fill(gen__backend *be, gen__tensor *out, float value);
gen_status gen__cuda_convert(gen__backend *be, gen__tensor *out, const gen__tensor *x);
gen_status gen__cuda_group_norm(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                                const gen__tensor *gamma, const gen__tensor *beta, int groups,
                                float eps, bool fuse_silu);
gen_status gen__cuda_layer_norm(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                                const gen__tensor *gamma, const gen__tensor *beta, float eps);
gen_status gen__cuda_softmax(gen__backend *be, gen__tensor *out, const gen__tensor *x, float scale);
gen_status gen__cuda_attention(gen__backend *be, gen__tensor *out, const gen__tensor *q,
                               const gen__tensor *k, const gen__tensor *v, int heads, float scale,
                               bool causal);
/* Whether attention in `dt` takes the tensor-core kernel (cuda_attn_check.c):
 * the mode, and in AUTO the on-device check against the CUDA-core kernel made
 * the first time a dtype asks. */
bool gen__cuda_attention_use_mma(gen__backend *be, gen__dtype dt);
/* Attention through cuBLAS GEMMs and the softmax kernel (cuda_blas.c), for
 * head dims the fused kernels do not hold; no causal mask. */
gen_status gen__cuda_attention_gemm(gen__backend *be, gen__tensor *out, const gen__tensor *q,
                                    const gen__tensor *k, const gen__tensor *v, int heads,
                                    float scale);
gen_status gen__cuda_unary(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                           gen__unary_op op);
gen_status gen__cuda_geglu(gen__backend *be, gen__tensor *out, const gen__tensor *x);
gen_status gen__cuda_binary(gen__backend *be, gen__tensor *out, const gen__tensor *a,
                            const gen__tensor *b, gen__binary_op op);
gen_status gen__cuda_axpby(gen__backend *be, gen__tensor *out, float alpha, const gen__tensor *a,
                           float beta, const gen__tensor *b);
gen_status gen__cuda_upsample_nearest2x(gen__backend *be, gen__tensor *out, const gen__tensor *x);
gen_status gen__cuda_concat(gen__backend *be, gen__tensor *out, const gen__tensor *a,
                            const gen__tensor *b, int dim);
gen_status gen__cuda_transpose(gen__backend *be, gen__tensor *out, const gen__tensor *x);
gen_status gen__cuda_timestep_embedding(gen__backend *be, gen__tensor *out, const float *timesteps,
                                        bool flip_sin_to_cos, float downscale_freq_shift,
                                        float scale, float max_period);
gen_status gen__cuda_embedding(gen__backend *be, gen__tensor *out, const gen__tensor *table,
                               const int32_t *ids);

#endif
