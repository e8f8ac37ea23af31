/* State shared by the CPU backend's source files. */
#ifndef GEN_BACKEND_CPU_INTERNAL_H
#define GEN_BACKEND_CPU_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>

#include "backend/backend.h"
#include "backend/cpu/pool.h"

typedef struct gen__cpu_ctx {
    gen__backend *be;
    gen__pool *pool;
    int threads;
    uint64_t limit;          /* 0: physical RAM, not enforced beyond malloc */
    uint64_t capacity;
    atomic_ullong in_use;
    atomic_ullong peak;
    /* per-thread scratch (im2col blocks, attention scores), grown on demand */
    float **scratch;
    size_t *scratch_floats;
} gen__cpu_ctx;

static inline gen__cpu_ctx *gen__cpu(gen__backend *be)
{
    return (gen__cpu_ctx *)be->ctx;
}

/* Make every thread's scratch hold at least `floats` floats (counted as device
 * memory); GEN_EDEVICE_OOM naming `op` on failure. */
gen_status gen__cpu_scratch_reserve(gen__cpu_ctx *c, size_t floats, const char *op);

/* Aligned, accounted allocation (the backend's alloc/free). */
gen_status gen__cpu_alloc(gen__backend *be, size_t bytes, void **out);
void gen__cpu_free(gen__backend *be, void *ptr);

/* A single-threaded row-major sgemm block: C[M,N] = alpha op(A) op(B) + beta C. */
void gen__cpu_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                    const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                    float *c, int64_t ldc);

/* Softmax of scale * x over n entries into y (y may equal x), sum in double;
 * a row that is entirely -inf gives NaN like torch. */
void gen__cpu_softmax_row(const float *x, float *y, int64_t n, float scale);

/* SIMD row kernels (vmath.c): max of x; y = exp(scale * x - sub) returning
 * the sum of y in double (y may equal x); y *= s. */
float gen__cpu_row_max(const float *x, int64_t n);
double gen__cpu_exp_row(const float *x, float *y, int64_t n, float scale, float sub);
void gen__cpu_scale_row(float *y, int64_t n, float s);
/* y = silu(a * x + b) (y may equal x) */
void gen__cpu_silu_row(const float *x, float *y, int64_t n, float a, float b);
/* y = x * sigmoid(k x): SiLU (k = 1), quick_gelu (k = 1.702) */
void gen__cpu_xsigmoid_row(const float *x, float *y, int64_t n, float k);
/* y = gelu_erf(x); y = h * gelu_erf(g) */
void gen__cpu_gelu_row(const float *x, float *y, int64_t n);
void gen__cpu_geglu_row(const float *h, const float *g, float *y, int64_t n);

/* Convolution algorithm: AUTO picks per shape; the others force one (tests and
 * benchmarks compare them). */
enum { GEN__CPU_CONV_AUTO = 0, GEN__CPU_CONV_IM2COL = 1, GEN__CPU_CONV_WINOGRAD = 2 };
extern int gen__cpu_conv_algorithm;

/* Whether conv2d takes the Winograd F(2x2, 3x3) path for this shape (3x3,
 * stride 1; enough channels and output tiles unless forced). */
bool gen__cpu_winograd_fits(int64_t ci, int64_t co, int64_t kh, int64_t kw,
                            const gen__conv2d_params *p, int64_t ho, int64_t wo);
gen_status gen__cpu_conv2d_winograd(gen__cpu_ctx *cx, gen__tensor *out, const gen__tensor *x,
                                    const gen__tensor *weight, const gen__tensor *bias,
                                    const gen__conv2d_params *p);

/* op implementations (validated arguments) */
gen_status gen__cpu_gemm(gen__backend *be, gen__tensor *c, const gen__tensor *a,
                         const gen__tensor *b, bool trans_a, bool trans_b, float alpha, float beta);
gen_status gen__cpu_linear(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                           const gen__tensor *weight, const gen__tensor *bias);
gen_status gen__cpu_conv2d(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                           const gen__tensor *weight, const gen__tensor *bias,
                           const gen__conv2d_params *p);
gen_status gen__cpu_group_norm(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                               const gen__tensor *gamma, const gen__tensor *beta, int groups,
                               float eps, bool fuse_silu);
gen_status gen__cpu_layer_norm(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                               const gen__tensor *gamma, const gen__tensor *beta, float eps);
gen_status gen__cpu_softmax(gen__backend *be, gen__tensor *out, const gen__tensor *x, float scale);
gen_status gen__cpu_attention(gen__backend *be, gen__tensor *out, const gen__tensor *q,
                              const gen__tensor *k, const gen__tensor *v, int heads, float scale,
                              bool causal);
gen_status gen__cpu_fill(gen__backend *be, gen__tensor *out, float value);
gen_status gen__cpu_convert(gen__backend *be, gen__tensor *out, const gen__tensor *x);
gen_status gen__cpu_unary(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                          gen__unary_op op);
gen_status gen__cpu_geglu(gen__backend *be, gen__tensor *out, const gen__tensor *x);
gen_status gen__cpu_binary(gen__backend *be, gen__tensor *out, const gen__tensor *a,
                           const gen__tensor *b, gen__binary_op op);
gen_status gen__cpu_axpby(gen__backend *be, gen__tensor *out, float alpha, const gen__tensor *a,
                          float beta, const gen__tensor *b);
gen_status gen__cpu_upsample_nearest2x(gen__backend *be, gen__tensor *out, const gen__tensor *x);
gen_status gen__cpu_concat(gen__backend *be, gen__tensor *out, const gen__tensor *a,
                           const gen__tensor *b, int dim);
gen_status gen__cpu_transpose(gen__backend *be, gen__tensor *out, const gen__tensor *x);
gen_status gen__cpu_timestep_embedding(gen__backend *be, gen__tensor *out, const float *timesteps,
                                       bool flip_sin_to_cos, float downscale_freq_shift,
                                       float scale, float max_period);
gen_status gen__cpu_embedding(gen__backend *be, gen__tensor *out, const gen__tensor *table,
                              const int32_t *ids);

#endif
