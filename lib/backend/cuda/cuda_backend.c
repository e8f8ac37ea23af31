/* The CUDA backend object: creation on the owning thread, memory through the
 * caching allocator, copies on the device's stream, and the ops table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/kernels/kernels.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"

#define DEFAULT_CONV_WS ((size_t)256 << 20)
#define DEFAULT_BLAS_WS ((size_t)32 << 20)

gen_status gen__cuda_fail(gen__cuda_ctx *c, cudaError_t err, const char *what)
{
    cudaGetLastError(); /* clear a non-sticky error so the next call starts clean */
    gen_status st = err == cudaErrorMemoryAllocation ? GEN_EDEVICE_OOM : GEN_EDEVICE;
    return gen__error(st, "%s: %s failed: %s (%s)", c->be->name, what, cudaGetErrorName(err),
                      cudaGetErrorString(err));
}

gen_status gen__cublas_fail(gen__cuda_ctx *c, cublasStatus_t st, const char *what)
{
    /* a kernel launch that failed inside the library leaves the runtime's last
     * error set: clear it, or our next launch check would report it */
    cudaGetLastError();
    gen_status s = st == CUBLAS_STATUS_ALLOC_FAILED ? GEN_EDEVICE_OOM : GEN_EDEVICE;
    return gen__error(s, "%s: %s failed: %s", c->be->name, what, cublasGetStatusString(st));
}

gen_status gen__cudnn_fail(gen__cuda_ctx *c, cudnnStatus_t st, const char *what)
{
    cudaGetLastError(); /* as for cuBLAS */
    gen_status s = st == CUDNN_STATUS_ALLOC_FAILED ? GEN_EDEVICE_OOM : GEN_EDEVICE;
    return gen__error(s, "%s: %s failed: %s", c->be->name, what, cudnnGetErrorString(st));
}

gen_status gen__cuda_enter(gen__cuda_ctx *c)
{
    GEN__CU(c, cudaSetDevice(c->device), "cudaSetDevice");
    return GEN_OK;
}

/* ---- memory -------------------------------------------------------------------- */

static gen_status raw_alloc(void *user, size_t bytes, void **out)
{
    gen__cuda_ctx *c = user;
    cudaError_t err = cudaMalloc(out, bytes);
    if (err == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        return GEN_EDEVICE_OOM;
    }
    if (err != cudaSuccess)
        return gen__cuda_fail(c, err, "cudaMalloc");
    return GEN_OK;
}

static void raw_free(void *user, void *ptr)
{
    gen__cuda_ctx *c = user;
    cudaError_t err = cudaFree(ptr);
    if (err != cudaSuccess) {
        cudaGetLastError();
        gen__log(NULL, GEN_LOG_WARN, "%s: cudaFree failed: %s", c->be->name,
                 cudaGetErrorString(err));
    }
}

gen_status gen__cuda_alloc(gen__backend *be, size_t bytes, void **out)
{
    gen__cuda_ctx *c = gen__cuda(be);
    *out = NULL;
    gen_status st = gen__cuda_enter(c);
    if (st != GEN_OK)
        return st;
    return gen__cache_get(&c->cache, bytes, out);
}

/* Blocks go back to the cache at once: a later allocation reuses them only
 * through work enqueued after this point on the same stream, so stream order
 * keeps the old contents alive for as long as queued work reads them. */
void gen__cuda_free(gen__backend *be, void *ptr)
{
    if (!ptr)
        return;
    gen__cuda_ctx *c = gen__cuda(be);
    if (!gen__cache_put(&c->cache, ptr))
        gen__log(NULL, GEN_LOG_WARN, "%s: free of a pointer this device did not allocate",
                 be->name);
}

static void cuda_mem_info(gen__backend *be, gen__backend_mem_info *out)
{
    gen__cuda_ctx *c = gen__cuda(be);
    memset(out, 0, sizeof(*out));
    out->bytes_in_use = atomic_load(&c->cache.in_use);
    out->peak_bytes = atomic_load(&c->cache.peak);
    out->capacity = c->props.total_memory;
    uint64_t free_b = 0, total_b = 0;
    /* read on THIS device, whatever is current (gen__gpu_memory) */
    if (gen__gpu_memory(c->device, &free_b, &total_b) == GEN_OK) {
        out->capacity = total_b;
        /* blocks parked in the cache are ours to reuse */
        out->available = free_b + atomic_load(&c->cache.cached);
    }
    if (c->cache.limit) {
        uint64_t room = c->cache.limit > out->bytes_in_use ? c->cache.limit - out->bytes_in_use : 0;
        if (out->capacity > c->cache.limit)
            out->capacity = c->cache.limit;
        if (out->available > room)
            out->available = room;
    }
}

static void cuda_reset_peak(gen__backend *be)
{
    gen__cuda_ctx *c = gen__cuda(be);
    atomic_store(&c->cache.peak, atomic_load(&c->cache.in_use));
}

void gen__cuda_backend_mem_stats(gen__backend *be, gen__cuda_mem_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!be || be->ops->alloc != gen__cuda_alloc)
        return;
    gen__cuda_ctx *c = gen__cuda(be);
    out->held = atomic_load(&c->cache.held);
    out->cached = atomic_load(&c->cache.cached);
}

bool gen__cuda_backend_set_attention(gen__backend *be, int kernel)
{
    if (!be || be->ops->alloc != gen__cuda_alloc)
        return false;
    gen__cuda_ctx *c = gen__cuda(be);
    if (kernel == GEN__CUDA_ATTENTION_MMA &&
        (c->props.compute_capability < 80 || !gen__cuk_attention_mma_built()))
        return false;
    if (kernel != GEN__CUDA_ATTENTION_MMA && kernel != GEN__CUDA_ATTENTION_SIMPLE &&
        kernel != GEN__CUDA_ATTENTION_AUTO)
        return false;
    c->attention_mode = kernel;
    return true;
}

int gen__cuda_backend_attention_kernel(gen__backend *be, gen__dtype dtype, double *check_error)
{
    if (check_error)
        *check_error = NAN;
    if (!be || be->ops->alloc != gen__cuda_alloc)
        return GEN__CUDA_ATTENTION_SIMPLE;
    bool mma = gen__cuda_attention_use_mma(be, dtype);
    if (check_error && dtype < 3)
        *check_error = gen__cuda(be)->mma_check_error[dtype];
    return mma ? GEN__CUDA_ATTENTION_MMA : GEN__CUDA_ATTENTION_SIMPLE;
}

gen_status gen__cuda_conv_workspace(gen__cuda_ctx *c, size_t bytes)
{
    if (bytes <= c->conv_ws_bytes)
        return GEN_OK;
    if (c->conv_ws) {
        gen__cache_put(&c->cache, c->conv_ws);
        c->conv_ws = NULL;
        c->conv_ws_bytes = 0;
    }
    gen_status st = gen__cache_get(&c->cache, bytes, &c->conv_ws);
    if (st == GEN_OK)
        c->conv_ws_bytes = bytes;
    return st;
}

/* ---- copies ---------------------------------------------------------------------- */

static gen_status cuda_upload(gen__backend *be, void *dst, const void *host_src, size_t bytes)
{
    gen__cuda_ctx *c = gen__cuda(be);
    gen_status st = gen__cuda_enter(c);
    if (st != GEN_OK)
        return st;
    /* from pageable memory the call returns once the source has been staged,
     * so the caller may reuse host_src immediately */
    GEN__CU(c, cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, c->stream), "upload");
    return GEN_OK;
}

static gen_status cuda_download(gen__backend *be, void *host_dst, const void *src, size_t bytes)
{
    gen__cuda_ctx *c = gen__cuda(be);
    gen_status st = gen__cuda_enter(c);
    if (st != GEN_OK)
        return st;
    GEN__CU(c, cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, c->stream),
            "download");
    GEN__CU(c, cudaStreamSynchronize(c->stream), "download (waiting for the stream)");
    return GEN_OK;
}

static gen_status cuda_copy(gen__backend *be, void *dst, const void *src, size_t bytes)
{
    gen__cuda_ctx *c = gen__cuda(be);
    gen_status st = gen__cuda_enter(c);
    if (st != GEN_OK)
        return st;
    GEN__CU(c, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream), "copy");
    return GEN_OK;
}

static gen_status cuda_synchronize(gen__backend *be)
{
    gen__cuda_ctx *c = gen__cuda(be);
    gen_status st = gen__cuda_enter(c);
    if (st != GEN_OK)
        return st;
    GEN__CU(c, cudaStreamSynchronize(c->stream), "synchronize");
    return GEN_OK;
}

/* ---- lifetime ---------------------------------------------------------------------- */

static void cuda_destroy(gen__backend *be)
{
    gen__cuda_ctx *c = gen__cuda(be);
    if (c) {
        if (cudaSetDevice(c->device) == cudaSuccess && c->stream &&
            cudaStreamSynchronize(c->stream) != cudaSuccess)
            gen__log(NULL, GEN_LOG_WARN, "%s: pending work failed before destroy: %s", be->name,
                     cudaGetErrorString(cudaGetLastError()));
        cudaGetLastError();
        gen__cuda_conv_plans_destroy(c);
        if (c->conv_ws)
            gen__cache_put(&c->cache, c->conv_ws);
        if (c->blas_ws)
            gen__cache_put(&c->cache, c->blas_ws);
        /* destroy cannot fail, but a failure is worth a warning */
        if (c->blas && cublasDestroy(c->blas) != CUBLAS_STATUS_SUCCESS)
            gen__log(NULL, GEN_LOG_WARN, "%s: cublasDestroy failed", be->name);
        if (c->dnn && cudnnDestroy(c->dnn) != CUDNN_STATUS_SUCCESS)
            gen__log(NULL, GEN_LOG_WARN, "%s: cudnnDestroy failed", be->name);
        if (c->stream && cudaStreamDestroy(c->stream) != cudaSuccess)
            gen__log(NULL, GEN_LOG_WARN, "%s: cudaStreamDestroy failed", be->name);
        if (c->cache.buckets) {
            size_t leaked = gen__cache_destroy(&c->cache);
            if (leaked)
                gen__log(NULL, GEN_LOG_WARN, "%s destroyed with %zu tensors still allocated",
                         be->name, leaked);
        }
        cudaGetLastError();
        gen__free(c);
    }
    gen__free(be);
}

static const gen__backend_ops cuda_ops = {
    .destroy = cuda_destroy,
    .alloc = gen__cuda_alloc,
    .free = gen__cuda_free,
    .mem_info = cuda_mem_info,
    .reset_peak = cuda_reset_peak,
    .upload = cuda_upload,
    .download = cuda_download,
    .copy = cuda_copy,
    .synchronize = cuda_synchronize,
    .fill = gen__cuda_fill,
    .convert = gen__cuda_convert,
    .gemm = gen__cuda_gemm,
    .linear = gen__cuda_linear,
    .conv2d = gen__cuda_conv2d,
    .group_norm = gen__cuda_group_norm,
    .layer_norm = gen__cuda_layer_norm,
    .softmax = gen__cuda_softmax,
    .attention = gen__cuda_attention,
    .unary = gen__cuda_unary,
    .geglu = gen__cuda_geglu,
    .binary = gen__cuda_binary,
    .axpby = gen__cuda_axpby,
    .upsample_nearest2x = gen__cuda_upsample_nearest2x,
    .concat = gen__cuda_concat,
    .transpose = gen__cuda_transpose,
    .timestep_embedding = gen__cuda_timestep_embedding,
    .embedding = gen__cuda_embedding,
};

/* Stream, handles and workspaces, made with the device current on this thread. */
static gen_status setup_device(gen__cuda_ctx *c, const gen__cuda_backend_options *o)
{
    gen_status st = gen__cuda_enter(c);
    if (st != GEN_OK)
        return st;
    GEN__CU(c, cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking), "cudaStreamCreate");
    cublasStatus_t bs = cublasCreate(&c->blas);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        c->blas = NULL;
        return gen__cublas_fail(c, bs, "cublasCreate");
    }
    if ((bs = cublasSetStream(c->blas, c->stream)) != CUBLAS_STATUS_SUCCESS)
        return gen__cublas_fail(c, bs, "cublasSetStream");
    c->blas_ws_bytes = o->blas_workspace ? o->blas_workspace : DEFAULT_BLAS_WS;
    st = gen__cache_get(&c->cache, c->blas_ws_bytes, &c->blas_ws);
    if (st != GEN_OK)
        return gen__error_prefix("cuBLAS workspace: ");
    if ((bs = cublasSetWorkspace(c->blas, c->blas_ws, c->blas_ws_bytes)) != CUBLAS_STATUS_SUCCESS)
        return gen__cublas_fail(c, bs, "cublasSetWorkspace");
    cudnnStatus_t ds = cudnnCreate(&c->dnn);
    if (ds != CUDNN_STATUS_SUCCESS) {
        c->dnn = NULL;
        return gen__cudnn_fail(c, ds, "cudnnCreate");
    }
    if ((ds = cudnnSetStream(c->dnn, c->stream)) != CUDNN_STATUS_SUCCESS)
        return gen__cudnn_fail(c, ds, "cudnnSetStream");
    c->conv_ws_limit = o->conv_workspace_limit ? o->conv_workspace_limit : DEFAULT_CONV_WS;
    return GEN_OK;
}

gen_status gen__cuda_backend_create(gen__backend **out, const gen__cuda_backend_options *opts)
{
    *out = NULL;
    gen__cuda_backend_options o = {0};
    if (opts)
        o = *opts;
    const char *why = NULL;
    int count = gen__gpu_count(&why);
    if (count == 0)
        return gen__error(GEN_EDEVICE, "cuda:%d: no CUDA device available (%s)", o.index,
                          why ? why : "none found");
    if (o.index < 0 || o.index >= count)
        return gen__error(GEN_EDEVICE, "cuda:%d: no such device (%d CUDA device%s found)", o.index,
                          count, count == 1 ? "" : "s");
    gen__backend *be = gen__calloc(1, sizeof(*be));
    gen__cuda_ctx *c = gen__calloc(1, sizeof(*c));
    if (!be || !c) {
        gen__free(be);
        gen__free(c);
        return gen__error(GEN_ENOMEM, "cuda:%d: cannot allocate the backend", o.index);
    }
    be->ops = &cuda_ops;
    be->ctx = c;
    snprintf(be->name, sizeof(be->name), "cuda:%d", o.index);
    c->be = be;
    c->device = o.index;
    gen_status st = gen__gpu_props_get(o.index, &c->props);
    if (st == GEN_OK) {
        gen__cache_raw raw = {raw_alloc, raw_free, c};
        st = gen__cache_init(&c->cache, be->name, raw, o.memory_limit);
    }
    if (st == GEN_OK)
        st = setup_device(c, &o);
    if (st != GEN_OK) {
        cuda_destroy(be);
        return st;
    }
    be->compute_dtypes = (1u << GEN__F32) | (1u << GEN__F16);
    if (c->props.compute_capability >= 80)
        be->compute_dtypes |= 1u << GEN__BF16;
    const char *env = getenv("GEN_CUDA_ATTENTION");
    c->attention_mode = GEN__CUDA_ATTENTION_AUTO;
    if (env && strcmp(env, "simple") == 0)
        c->attention_mode = GEN__CUDA_ATTENTION_SIMPLE;
    else if (env && strcmp(env, "mma") == 0 && c->props.compute_capability >= 80 &&
             gen__cuk_attention_mma_built())
        c->attention_mode = GEN__CUDA_ATTENTION_MMA;
    for (int d = 0; d < 3; d++)
        c->mma_check_error[d] = NAN;
    gen__log(NULL, GEN_LOG_DEBUG, "%s: %s, %llu MiB, compute capability %d.%d", be->name,
             c->props.name, (unsigned long long)(c->props.total_memory >> 20),
             c->props.compute_capability / 10, c->props.compute_capability % 10);
    *out = be;
    return GEN_OK;
}
