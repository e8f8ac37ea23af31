/* The ops served by our kernels (the .cu files in kernels/): argument mapping, launch and
 * error checks. Shapes were validated by the gen__* wrappers. */
#include <math.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/kernels/kernels.h"
#include "core/alloc.h"
#include "core/error.h"

/* Enter the device, run a launcher expression, turn its status into ours. */
#define LAUNCH(c, expr, what)                                                                      \
    do {                                                                                           \
        gen_status gen__st = gen__cuda_enter(c);                                                   \
        if (gen__st != GEN_OK)                                                                     \
            return gen__st;                                                                        \
        GEN__CU((c), (expr), (what));                                                              \
        return GEN_OK;                                                                             \
    } while (0)

static const void *data_or_null(const gen__tensor *t)
{
    return t ? t->data : NULL;
}

gen_status gen__cuda_fill(gen__backend *be, gen__tensor *out, float value)
{
    gen__cuda_ctx *c = gen__cuda(be);
    LAUNCH(c, gen__cuk_fill(c->stream, out->dtype, out->data, gen__tensor_numel(out), value),
           "fill kernel");
}

gen_status gen__cuda_convert(gen__backend *be, gen__tensor *out, const gen__tensor *x)
{
    gen__cuda_ctx *c = gen__cuda(be);
    if (out->dtype == x->dtype) {
        if (out->data == x->data)
            return GEN_OK;
        LAUNCH(c, cudaMemcpyAsync(out->data, x->data, gen__tensor_nbytes(out),
                                  cudaMemcpyDeviceToDevice, c->stream),
               "convert (copy)");
    }
    LAUNCH(c, gen__cuk_convert(c->stream, out->data, out->dtype, x->data, x->dtype,
                               gen__tensor_numel(out)),
           "convert kernel");
}

gen_status gen__cuda_group_norm(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                                const gen__tensor *gamma, const gen__tensor *beta, int groups,
                                float eps, bool fuse_silu)
{
    gen__cuda_ctx *c = gen__cuda(be);
    LAUNCH(c, gen__cuk_group_norm(c->stream, out->dtype, out->data, x->data, data_or_null(gamma),
                                  data_or_null(beta), x->shape[0], x->shape[1],
                                  gen__tensor_dims(x, 2, x->ndim), groups, eps, fuse_silu),
           "group_norm kernel");
}

gen_status gen__cuda_layer_norm(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                                const gen__tensor *gamma, const gen__tensor *beta, float eps)
{
    gen__cuda_ctx *c = gen__cuda(be);
    LAUNCH(c, gen__cuk_layer_norm(c->stream, out->dtype, out->data, x->data, data_or_null(gamma),
                                  data_or_null(beta), gen__tensor_rows(x), gen__tensor_cols(x),
                                  eps),
           "layer_norm kernel");
}

gen_status gen__cuda_softmax(gen__backend *be, gen__tensor *out, const gen__tensor *x, float scale)
{
    gen__cuda_ctx *c = gen__cuda(be);
    LAUNCH(c, gen__cuk_softmax(c->stream, out->dtype, out->data, x->data, gen__tensor_rows(x),
                               gen__tensor_cols(x), scale),
           "softmax kernel");
}

gen_status gen__cuda_attention(gen__backend *be, gen__tensor *out, const gen__tensor *q,
                               const gen__tensor *k, const gen__tensor *v, int heads, float scale,
                               bool causal)
{
    gen__cuda_ctx *c = gen__cuda(be);
    int64_t dk = q->shape[2] / heads, dv = v->shape[2] / heads;
    if (dk > GEN__ATTN_MAX_DIM || dv > GEN__ATTN_MAX_DIM) {
        /* e.g. the VAE's single 512-wide head: GEMMs + softmax instead */
        if (!causal)
            return gen__cuda_attention_gemm(be, out, q, k, v, heads, scale);
        return gen__error(GEN_EUNSUPPORTED,
                          "%s: attention: causal with head dims %lld/%lld above the kernel's %d",
                          be->name, (long long)dk, (long long)dv, GEN__ATTN_MAX_DIM);
    }
    if (q->shape[0] * heads > 65535)
        return gen__error(GEN_EUNSUPPORTED, "%s: attention: batch*heads %lld above 65535",
                          be->name, (long long)(q->shape[0] * heads));
    if (gen__cuda_attention_use_mma(be, out->dtype))
        LAUNCH(c, gen__cuk_attention_mma(c->stream, out->dtype, out->data, q->data, k->data,
                                         v->data, q->shape[0], q->shape[1], k->shape[1], heads,
                                         (int)dk, (int)dv, scale, causal),
               "attention kernel (tensor cores)");
    LAUNCH(c, gen__cuk_attention(c->stream, out->dtype, out->data, q->data, k->data, v->data,
                                 q->shape[0], q->shape[1], k->shape[1], heads, (int)dk, (int)dv,
                                 scale, causal),
           "attention kernel");
}

gen_status gen__cuda_unary(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                           gen__unary_op op)
{
    gen__cuda_ctx *c = gen__cuda(be);
    LAUNCH(c, gen__cuk_unary(c->stream, out->dtype, out->data, x->data, gen__tensor_numel(x),
                             (int)op),
           "unary kernel");
}

gen_status gen__cuda_geglu(gen__backend *be, gen__tensor *out, const gen__tensor *x)
{
    gen__cuda_ctx *c = gen__cuda(be);
    LAUNCH(c, gen__cuk_geglu(c->stream, out->dtype, out->data, x->data, gen__tensor_rows(out),
                             gen__tensor_cols(out)),
           "geglu kernel");
}

gen_status gen__cuda_binary(gen__backend *be, gen__tensor *out, const gen__tensor *a,
                            const gen__tensor *b, gen__binary_op op)
{
    gen__cuda_ctx *c = gen__cuda(be);
    gen__bcast_plan plan;
    if (!gen__bcast_make(&plan, out->ndim, out->shape, a->ndim, a->shape, b->ndim, b->shape))
        return gen__error(GEN_EINVAL, "%s: binary: bad rank %d", be->name, out->ndim);
    LAUNCH(c, gen__cuk_binary(c->stream, out->dtype, out->data, a->data, b->data, &plan, (int)op),
           "binary kernel");
}

gen_status gen__cuda_axpby(gen__backend *be, gen__tensor *out, float alpha, const gen__tensor *a,
                           float beta, const gen__tensor *b)
{
    gen__cuda_ctx *c = gen__cuda(be);
    LAUNCH(c, gen__cuk_axpby(c->stream, out->dtype, out->data, alpha, a->data, beta,
                             data_or_null(b), gen__tensor_numel(out)),
           "axpby kernel");
}

gen_status gen__cuda_upsample_nearest2x(gen__backend *be, gen__tensor *out, const gen__tensor *x)
{
    gen__cuda_ctx *c = gen__cuda(be);
    LAUNCH(c, gen__cuk_upsample2x(c->stream, out->dtype, out->data, x->data,
                                  x->shape[0] * x->shape[1], x->shape[2], x->shape[3]),
           "upsample kernel");
}

gen_status gen__cuda_concat(gen__backend *be, gen__tensor *out, const gen__tensor *a,
                            const gen__tensor *b, int dim)
{
    gen__cuda_ctx *c = gen__cuda(be);
    int64_t outer = gen__tensor_dims(out, 0, dim);
    int64_t wa = gen__tensor_dims(a, dim, a->ndim), wb = gen__tensor_dims(b, dim, b->ndim);
    LAUNCH(c, gen__cuk_concat(c->stream, out->dtype, out->data, a->data, b->data, outer, wa, wb),
           "concat kernel");
}

gen_status gen__cuda_transpose(gen__backend *be, gen__tensor *out, const gen__tensor *x)
{
    gen__cuda_ctx *c = gen__cuda(be);
    LAUNCH(c, gen__cuk_transpose(c->stream, out->dtype, out->data, x->data,
                                 gen__tensor_dims(x, 0, -2), x->shape[x->ndim - 2],
                                 x->shape[x->ndim - 1]),
           "transpose kernel");
}

/* Computed on the host with the CPU backend's f32 steps (diffusers' roundings),
 * converted to the storage dtype there, then uploaded: a few KB per step. */
gen_status gen__cuda_timestep_embedding(gen__backend *be, gen__tensor *out, const float *timesteps,
                                        bool flip_sin_to_cos, float downscale_freq_shift,
                                        float scale, float max_period)
{
    gen__cuda_ctx *c = gen__cuda(be);
    int64_t n = out->shape[0], dim = out->shape[1], half = dim / 2;
    float *y = gen__malloc((size_t)(n * dim) * sizeof(float));
    void *conv = gen__malloc(gen__tensor_nbytes(out));
    if (!y || !conv) {
        gen__free(y);
        gen__free(conv);
        return gen__error(GEN_ENOMEM, "%s: timestep_embedding: no host memory", be->name);
    }
    float neg_log = (float)-log((double)max_period);
    float denom = (float)((double)half - (double)downscale_freq_shift);
    for (int64_t r = 0; r < n; r++) {
        float *row = y + r * dim;
        for (int64_t i = 0; i < half; i++) {
            float e = expf(neg_log * (float)i / denom);
            float arg = scale * (timesteps[r] * e);
            float s = sinf(arg), co = cosf(arg);
            row[i] = flip_sin_to_cos ? co : s;
            row[half + i] = flip_sin_to_cos ? s : co;
        }
        if (dim % 2)
            row[dim - 1] = 0.0f;
    }
    gen__convert_host(conv, out->dtype, y, GEN__F32, (size_t)(n * dim));
    gen_status st = gen__cuda_enter(c);
    cudaError_t err = cudaSuccess;
    if (st == GEN_OK) /* pageable source: staged before the call returns */
        err = cudaMemcpyAsync(out->data, conv, gen__tensor_nbytes(out), cudaMemcpyHostToDevice,
                              c->stream);
    gen__free(y);
    gen__free(conv);
    if (st == GEN_OK && err != cudaSuccess)
        st = gen__cuda_fail(c, err, "timestep_embedding upload");
    return st;
}

gen_status gen__cuda_embedding(gen__backend *be, gen__tensor *out, const gen__tensor *table,
                               const int32_t *ids)
{
    gen__cuda_ctx *c = gen__cuda(be);
    int64_t rows = gen__tensor_rows(out), d = gen__tensor_cols(out);
    gen_status st = gen__cuda_enter(c);
    if (st != GEN_OK)
        return st;
    void *dev_ids = NULL;
    st = gen__cache_get(&c->cache, (size_t)rows * sizeof(int32_t), &dev_ids);
    if (st != GEN_OK)
        return gen__error_prefix("embedding ids: ");
    cudaError_t err = cudaMemcpyAsync(dev_ids, ids, (size_t)rows * sizeof(int32_t),
                                      cudaMemcpyHostToDevice, c->stream);
    if (err == cudaSuccess)
        err = gen__cuk_embedding(c->stream, out->dtype, out->data, table->data, dev_ids, rows, d);
    gen__cache_put(&c->cache, dev_ids); /* stream order: the gather reads it first */
    if (err != cudaSuccess)
        return gen__cuda_fail(c, err, "embedding");
    return GEN_OK;
}
