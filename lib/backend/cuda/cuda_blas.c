/* GEMM, batched GEMM and Linear through cuBLAS (cublasGemmEx and
 * cublasGemmStridedBatchedEx): f16/bf16/f32 storage, f32 accumulation
 * (CUBLAS_COMPUTE_32F: tensor cores for f16/bf16; plain FP32 for f32, no TF32,
 * so f32 results match the CPU backend closely).
 *
 * Our tensors are row-major, cuBLAS is column-major: a row-major C[M,N] is the
 * column-major C^T[N,M], and C^T = op(B)^T op(A)^T, so we ask cuBLAS for
 * (N x M) = op(B)' (N x K) * op(A)' (K x M) with the operands swapped and the
 * leading dimensions equal to each stored matrix's row length. */
#include <limits.h>

#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/kernels/kernels.h"
#include "core/error.h"

static cudaDataType_t data_type(gen__dtype d)
{
    switch (d) {
    case GEN__F16:
        return CUDA_R_16F;
    case GEN__BF16:
        return CUDA_R_16BF;
    default:
        return CUDA_R_32F;
    }
}

typedef struct gemm_args {
    bool ta, tb;
    int64_t m, n, k;
    const void *a, *b;
    void *c;
    int64_t lda, ldb, ldc;
    int64_t stride_a, stride_b, stride_c; /* elements; 0 = broadcast */
    int64_t batch;
    float alpha, beta;
    gen__dtype dtype; /* of a, b and (unless c_f32) c */
    bool c_f32;       /* c in f32 whatever dtype says (attention scores) */
} gemm_args;

static gen_status run_gemm(gen__cuda_ctx *c, const gemm_args *g, const char *op)
{
    if (g->m > INT_MAX || g->n > INT_MAX || g->k > INT_MAX || g->lda > INT_MAX ||
        g->ldb > INT_MAX || g->ldc > INT_MAX || g->batch > INT_MAX)
        return gen__error(GEN_EUNSUPPORTED, "%s: %s: dimensions beyond cuBLAS's 32-bit limits",
                          c->be->name, op);
    gen_status st = gen__cuda_enter(c);
    if (st != GEN_OK)
        return st;
    cudaDataType_t t = data_type(g->dtype), tc = g->c_f32 ? CUDA_R_32F : t;
    cublasOperation_t opb = g->tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t opa = g->ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasStatus_t bs;
    if (g->batch == 1)
        bs = cublasGemmEx(c->blas, opb, opa, (int)g->n, (int)g->m, (int)g->k, &g->alpha, g->b, t,
                          (int)g->ldb, g->a, t, (int)g->lda, &g->beta, g->c, tc, (int)g->ldc,
                          CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    else
        bs = cublasGemmStridedBatchedEx(c->blas, opb, opa, (int)g->n, (int)g->m, (int)g->k,
                                        &g->alpha, g->b, t, (int)g->ldb, g->stride_b, g->a, t,
                                        (int)g->lda, g->stride_a, &g->beta, g->c, tc, (int)g->ldc,
                                        g->stride_c, (int)g->batch, CUBLAS_COMPUTE_32F,
                                        CUBLAS_GEMM_DEFAULT);
    if (bs != CUBLAS_STATUS_SUCCESS)
        return gen__cublas_fail(c, bs, op);
    return GEN_OK;
}

gen_status gen__cuda_gemm(gen__backend *be, gen__tensor *c, const gen__tensor *a,
                          const gen__tensor *b, bool trans_a, bool trans_b, float alpha, float beta)
{
    gemm_args g = {0};
    g.ta = trans_a;
    g.tb = trans_b;
    g.m = c->shape[c->ndim - 2];
    g.n = c->shape[c->ndim - 1];
    g.k = trans_a ? a->shape[a->ndim - 2] : a->shape[a->ndim - 1];
    g.a = a->data;
    g.b = b->data;
    g.c = c->data;
    g.lda = a->shape[a->ndim - 1];
    g.ldb = b->shape[b->ndim - 1];
    g.ldc = g.n;
    g.batch = gen__tensor_dims(c, 0, -2);
    g.stride_a = gen__tensor_dims(a, 0, -2) == 1 ? 0 : a->shape[a->ndim - 2] * a->shape[a->ndim - 1];
    g.stride_b = gen__tensor_dims(b, 0, -2) == 1 ? 0 : b->shape[b->ndim - 2] * b->shape[b->ndim - 1];
    g.stride_c = g.m * g.n;
    g.alpha = alpha;
    g.beta = beta;
    g.dtype = c->dtype;
    return run_gemm(gen__cuda(be), &g, "gemm (cublasGemmEx)");
}

gen_status gen__cuda_linear(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                            const gen__tensor *weight, const gen__tensor *bias)
{
    gen__cuda_ctx *c = gen__cuda(be);
    gemm_args g = {0};
    g.ta = false;
    g.tb = true; /* out = x @ weight^T */
    g.m = gen__tensor_rows(x);
    g.n = weight->shape[0];
    g.k = weight->shape[1];
    g.a = x->data;
    g.b = weight->data;
    g.c = out->data;
    g.lda = g.k;
    g.ldb = g.k;
    g.ldc = g.n;
    g.batch = 1;
    g.alpha = 1.0f;
    g.beta = 0.0f;
    g.dtype = out->dtype;
    gen_status st = run_gemm(c, &g, "linear (cublasGemmEx)");
    if (st != GEN_OK || !bias)
        return st;
    GEN__CU(c, gen__cuk_bias_add(c->stream, out->dtype, out->data, bias->data, g.m, g.n, 1),
            "linear bias kernel");
    return GEN_OK;
}

/* Attention for head dims above the fused kernels' GEN__ATTN_MAX_DIM (the SD
 * VAE's mid-block attention: one head of 512): per batch entry and block of
 * query rows, S = scale * Q K^T for all heads (one strided-batched GEMM, heads
 * are column offsets of the rows) written in f32 like the fused kernels keep
 * their scores (no f16 overflow, no bf16 logits with 3 significant digits),
 * softmax over each row of S in place, P = S in the storage dtype, O = P V into
 * the output's columns. Working memory: S (near 64 MiB, which sets the block)
 * and P. No causal mask. */
gen_status gen__cuda_attention_gemm(gen__backend *be, gen__tensor *out, const gen__tensor *q,
                                    const gen__tensor *k, const gen__tensor *v, int heads,
                                    float scale)
{
    gen__cuda_ctx *c = gen__cuda(be);
    const int64_t b = q->shape[0], nq = q->shape[1], nk = k->shape[1];
    const int64_t dk = q->shape[2] / heads, dv = v->shape[2] / heads;
    const size_t es = gen__dtype_size(out->dtype);
    if (b == 0 || nq == 0 || nk == 0)
        return gen__error(GEN_EINVAL, "%s: attention with no queries or keys", be->name);
    int64_t block = (int64_t)(((size_t)64 << 20) / ((size_t)heads * (size_t)nk * sizeof(float)));
    block = block < 1 ? 1 : block > nq ? nq : block;
    const size_t scores = (size_t)heads * (size_t)block * (size_t)nk;
    gen_status st = gen__cuda_enter(c);
    if (st != GEN_OK)
        return st;
    void *s = NULL, *p = NULL;
    st = gen__cache_get(&c->cache, scores * sizeof(float), &s);
    if (st == GEN_OK && out->dtype != GEN__F32)
        st = gen__cache_get(&c->cache, scores * es, &p);
    if (st != GEN_OK) {
        gen__cache_put(&c->cache, s);
        return gen__error_prefix("attention scores: ");
    }
    if (out->dtype == GEN__F32)
        p = s;
    for (int64_t bi = 0; bi < b && st == GEN_OK; bi++) {
        for (int64_t q0 = 0; q0 < nq && st == GEN_OK; q0 += block) {
            int64_t rows = nq - q0 < block ? nq - q0 : block;
            gemm_args g = {0};
            g.ta = false;
            g.tb = true; /* S[h] [rows, nk] = Q[h] [rows, dk] @ K[h]^T */
            g.m = rows;
            g.n = nk;
            g.k = dk;
            g.a = (const char *)q->data + (size_t)((bi * nq + q0) * heads * dk) * es;
            g.b = (const char *)k->data + (size_t)(bi * nk * heads * dk) * es;
            g.c = s;
            g.lda = heads * dk;
            g.ldb = heads * dk;
            g.ldc = nk;
            g.stride_a = dk;
            g.stride_b = dk;
            g.stride_c = rows * nk;
            g.batch = heads;
            g.alpha = scale;
            g.beta = 0.0f;
            g.dtype = out->dtype;
            g.c_f32 = true;
            st = run_gemm(c, &g, "attention scores (cublasGemmEx)");
            if (st != GEN_OK)
                break;
            int64_t n_scores = heads * rows * nk;
            cudaError_t err = gen__cuk_softmax(c->stream, GEN__F32, s, s, heads * rows, nk, 1.0f);
            if (err == cudaSuccess && p != s)
                err = gen__cuk_convert(c->stream, p, out->dtype, s, GEN__F32, n_scores);
            if (err != cudaSuccess) {
                st = gen__cuda_fail(c, err, "attention softmax kernel");
                break;
            }
            g.tb = false; /* O[h] [rows, dv] = P[h] [rows, nk] @ V[h] [nk, dv] */
            g.n = dv;
            g.k = nk;
            g.a = p;
            g.b = (const char *)v->data + (size_t)(bi * nk * heads * dv) * es;
            g.c = (char *)out->data + (size_t)((bi * nq + q0) * heads * dv) * es;
            g.lda = nk;
            g.ldb = heads * dv;
            g.ldc = heads * dv;
            g.stride_a = rows * nk;
            g.stride_b = dv;
            g.stride_c = dv;
            g.alpha = 1.0f;
            g.c_f32 = false;
            st = run_gemm(c, &g, "attention values (cublasGemmEx)");
        }
    }
    if (p != s) /* stream order: queued work reads them first */
        gen__cache_put(&c->cache, p);
    gen__cache_put(&c->cache, s);
    return st;
}
