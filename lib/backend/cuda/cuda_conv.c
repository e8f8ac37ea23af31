/* conv2d through cuDNN's convolution API (cudnnConvolutionForward), NCHW like
 * our tensors (no layout conversion around each call). Per shape a plan keeps
 * the descriptors and the algorithm measured once with
 * cudnnFindConvolutionForwardAlgorithmEx inside a bounded workspace (falling
 * back to the cudnnGetConvolutionForwardAlgorithm_v7 heuristics, then to
 * IMPLICIT_GEMM, which needs no workspace and accepts any channel count, e.g.
 * the 4-channel latent input of conv_in). f16/bf16 use tensor-op math with f32
 * accumulation; f32 uses FMA math only (no TF32), to match the CPU backend.
 * Asymmetric padding (the VAE's (0,1,0,1) downsample) is done by a padding
 * kernel into a temporary, then a convolution without padding. */
#include <limits.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/kernels/kernels.h"
#include "core/alloc.h"
#include "core/error.h"

typedef struct conv_key {
    int64_t n, ci, h, w, co, kh, kw;
    int stride_h, stride_w, pad_h, pad_w;
    gen__dtype dtype;
} conv_key;

struct gen__cuda_conv_plan {
    conv_key key;
    cudnnTensorDescriptor_t x_desc, y_desc;
    cudnnFilterDescriptor_t w_desc;
    cudnnConvolutionDescriptor_t conv_desc;
    cudnnConvolutionFwdAlgo_t algo;
    size_t workspace;
    gen__cuda_conv_plan *next;
};

static cudnnDataType_t dnn_type(gen__dtype d)
{
    return d == GEN__F16 ? CUDNN_DATA_HALF : d == GEN__BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}

static void plan_free(gen__cuda_conv_plan *p)
{
    if (p->x_desc)
        cudnnDestroyTensorDescriptor(p->x_desc);
    if (p->y_desc)
        cudnnDestroyTensorDescriptor(p->y_desc);
    if (p->w_desc)
        cudnnDestroyFilterDescriptor(p->w_desc);
    if (p->conv_desc)
        cudnnDestroyConvolutionDescriptor(p->conv_desc);
    gen__free(p);
}

void gen__cuda_conv_plans_destroy(gen__cuda_ctx *c)
{
    while (c->plans) {
        gen__cuda_conv_plan *next = c->plans->next;
        plan_free(c->plans);
        c->plans = next;
    }
}

#define DNN(c, call, what)                                                                         \
    do {                                                                                           \
        cudnnStatus_t gen__dnn_st = (call);                                                        \
        if (gen__dnn_st != CUDNN_STATUS_SUCCESS)                                                   \
            return gen__cudnn_fail((c), gen__dnn_st, (what));                                      \
    } while (0)

static gen_status make_descriptors(gen__cuda_ctx *c, gen__cuda_conv_plan *p, int64_t ho, int64_t wo)
{
    const conv_key *k = &p->key;
    cudnnDataType_t t = dnn_type(k->dtype);
    DNN(c, cudnnCreateTensorDescriptor(&p->x_desc), "cudnnCreateTensorDescriptor");
    DNN(c, cudnnCreateTensorDescriptor(&p->y_desc), "cudnnCreateTensorDescriptor");
    DNN(c, cudnnCreateFilterDescriptor(&p->w_desc), "cudnnCreateFilterDescriptor");
    DNN(c, cudnnCreateConvolutionDescriptor(&p->conv_desc), "cudnnCreateConvolutionDescriptor");
    DNN(c, cudnnSetTensor4dDescriptor(p->x_desc, CUDNN_TENSOR_NCHW, t, (int)k->n, (int)k->ci,
                                      (int)k->h, (int)k->w),
        "conv2d input descriptor");
    DNN(c, cudnnSetTensor4dDescriptor(p->y_desc, CUDNN_TENSOR_NCHW, t, (int)k->n, (int)k->co,
                                      (int)ho, (int)wo),
        "conv2d output descriptor");
    DNN(c, cudnnSetFilter4dDescriptor(p->w_desc, t, CUDNN_TENSOR_NCHW, (int)k->co, (int)k->ci,
                                      (int)k->kh, (int)k->kw),
        "conv2d filter descriptor");
    DNN(c, cudnnSetConvolution2dDescriptor(p->conv_desc, k->pad_h, k->pad_w, k->stride_h,
                                           k->stride_w, 1, 1, CUDNN_CROSS_CORRELATION,
                                           CUDNN_DATA_FLOAT),
        "conv2d convolution descriptor");
    DNN(c, cudnnSetConvolutionMathType(p->conv_desc, k->dtype == GEN__F32 ? CUDNN_FMA_MATH
                                                                           : CUDNN_TENSOR_OP_MATH),
        "cudnnSetConvolutionMathType");
    return GEN_OK;
}

/* Best measured algorithm that fits the workspace, else the heuristics' best,
 * else IMPLICIT_GEMM. The perf results' math type is kept for f16/bf16 only. */
static gen_status choose_algorithm(gen__cuda_ctx *c, gen__cuda_conv_plan *p, const void *x,
                                   const void *w, void *y)
{
    /* as much workspace as the bound allows (shrinking while the device is full) */
    size_t ws = c->conv_ws_limit;
    while (ws > 0 && gen__cuda_conv_workspace(c, ws) != GEN_OK)
        ws /= 2;
    ws = c->conv_ws_bytes < ws ? c->conv_ws_bytes : ws;
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int found = 0;
    bool chosen = false;
    cudnnStatus_t ds = cudnnFindConvolutionForwardAlgorithmEx(
        c->dnn, p->x_desc, x, p->w_desc, w, p->conv_desc, p->y_desc, y,
        CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &found, perf, c->conv_ws, ws);
    if (ds != CUDNN_STATUS_SUCCESS) {
        found = 0;
        ds = cudnnGetConvolutionForwardAlgorithm_v7(c->dnn, p->x_desc, p->w_desc, p->conv_desc,
                                                    p->y_desc, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                    &found, perf);
        if (ds != CUDNN_STATUS_SUCCESS)
            found = 0;
    }
    for (int i = 0; i < found && !chosen; i++) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > ws)
            continue;
        p->algo = perf[i].algo;
        p->workspace = perf[i].memory;
        if (p->key.dtype != GEN__F32)
            DNN(c, cudnnSetConvolutionMathType(p->conv_desc, perf[i].mathType),
                "cudnnSetConvolutionMathType");
        chosen = true;
    }
    if (!chosen) {
        p->algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
        p->workspace = 0;
    }
    cudaGetLastError(); /* a failed candidate must not leave an error behind */
    return GEN_OK;
}

static gen_status get_plan(gen__cuda_ctx *c, const conv_key *key, int64_t ho, int64_t wo,
                           const void *x, const void *w, void *y, gen__cuda_conv_plan **out)
{
    for (gen__cuda_conv_plan *p = c->plans; p; p = p->next) {
        if (memcmp(&p->key, key, sizeof(*key)) == 0) {
            *out = p;
            return GEN_OK;
        }
    }
    gen__cuda_conv_plan *p = gen__calloc(1, sizeof(*p));
    if (!p)
        return gen__error(GEN_ENOMEM, "%s: conv2d: cannot allocate a plan", c->be->name);
    p->key = *key;
    gen_status st = make_descriptors(c, p, ho, wo);
    if (st == GEN_OK)
        st = choose_algorithm(c, p, x, w, y);
    if (st != GEN_OK) {
        plan_free(p);
        return st;
    }
    p->next = c->plans;
    c->plans = p;
    *out = p;
    return GEN_OK;
}

static gen_status forward(gen__cuda_ctx *c, gen__cuda_conv_plan *p, const void *x, const void *w,
                          void *y)
{
    const float one = 1.0f, zero = 0.0f;
    gen_status st = gen__cuda_conv_workspace(c, p->workspace);
    cudnnStatus_t ds = CUDNN_STATUS_SUCCESS;
    if (st == GEN_OK)
        ds = cudnnConvolutionForward(c->dnn, &one, p->x_desc, x, p->w_desc, w, p->conv_desc,
                                     p->algo, c->conv_ws, p->workspace, &zero, p->y_desc, y);
    if (st == GEN_OK && ds == CUDNN_STATUS_SUCCESS)
        return GEN_OK;
    if (p->algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM && p->workspace == 0)
        return st != GEN_OK ? st : gen__cudnn_fail(c, ds, "conv2d (cudnnConvolutionForward)");
    /* the chosen algorithm failed here: fall back for good to the one that needs nothing */
    cudaGetLastError();
    p->algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    p->workspace = 0;
    ds = cudnnConvolutionForward(c->dnn, &one, p->x_desc, x, p->w_desc, w, p->conv_desc, p->algo,
                                 NULL, 0, &zero, p->y_desc, y);
    if (ds != CUDNN_STATUS_SUCCESS)
        return gen__cudnn_fail(c, ds, "conv2d (cudnnConvolutionForward, IMPLICIT_GEMM)");
    return GEN_OK;
}

gen_status gen__cuda_conv2d(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                            const gen__tensor *weight, const gen__tensor *bias,
                            const gen__conv2d_params *p)
{
    gen__cuda_ctx *c = gen__cuda(be);
    gen_status st = gen__cuda_enter(c);
    if (st != GEN_OK)
        return st;
    bool symmetric = p->pad_top == p->pad_bottom && p->pad_left == p->pad_right;
    int64_t h = x->shape[2] + (symmetric ? 0 : p->pad_top + p->pad_bottom);
    int64_t w = x->shape[3] + (symmetric ? 0 : p->pad_left + p->pad_right);
    if (gen__tensor_numel(x) > INT_MAX || gen__tensor_numel(out) > INT_MAX ||
        x->shape[0] * x->shape[1] * h * w > INT_MAX || gen__tensor_numel(weight) > INT_MAX)
        return gen__error(GEN_EUNSUPPORTED, "%s: conv2d: tensors beyond cuDNN's 32-bit limits",
                          be->name);
    conv_key key;
    memset(&key, 0, sizeof(key)); /* the key is compared with memcmp: no stray padding bytes */
    key.n = x->shape[0];
    key.ci = x->shape[1];
    key.h = h;
    key.w = w;
    key.co = weight->shape[0];
    key.kh = weight->shape[2];
    key.kw = weight->shape[3];
    key.stride_h = p->stride_h;
    key.stride_w = p->stride_w;
    key.pad_h = symmetric ? p->pad_top : 0;
    key.pad_w = symmetric ? p->pad_left : 0;
    key.dtype = x->dtype;

    const void *src = x->data;
    void *padded = NULL;
    if (!symmetric) {
        size_t bytes = (size_t)(key.n * key.ci * h * w) * gen__dtype_size(x->dtype);
        st = gen__cache_get(&c->cache, bytes, &padded);
        if (st != GEN_OK)
            return gen__error_prefix("conv2d padding: ");
        cudaError_t err = gen__cuk_pad2d(c->stream, x->dtype, padded, x->data, key.n * key.ci,
                                         x->shape[2], x->shape[3], p->pad_top, p->pad_bottom,
                                         p->pad_left, p->pad_right);
        if (err != cudaSuccess) {
            gen__cache_put(&c->cache, padded);
            return gen__cuda_fail(c, err, "conv2d padding kernel");
        }
        src = padded;
    }
    gen__cuda_conv_plan *plan = NULL;
    st = get_plan(c, &key, out->shape[2], out->shape[3], src, weight->data, out->data, &plan);
    if (st == GEN_OK)
        st = forward(c, plan, src, weight->data, out->data);
    if (padded) /* stream order keeps it alive for the convolution just queued */
        gen__cache_put(&c->cache, padded);
    if (st != GEN_OK || !bias)
        return st;
    GEN__CU(c, gen__cuk_bias_add(c->stream, out->dtype, out->data, bias->data, key.n, key.co,
                                 out->shape[2] * out->shape[3]),
            "conv2d bias kernel");
    return GEN_OK;
}
