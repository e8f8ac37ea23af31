/* The tensor-core attention on trust, but checked: before it serves a dtype
 * for the first time on a device (GEN__CUDA_ATTENTION_AUTO), it runs next to
 * the CUDA-core kernel on small random problems covering both of its builds
 * (head dims up to 64 and up to 160), ragged tiles and the causal mask, and is
 * used only when the two agree. A device whose mma.sync fragments differed
 * from what the kernel assumes (the CPU emulator cannot tell: it was written
 * from the same PTX documentation) then keeps correct images at the CUDA-core
 * kernel's speed, with a warning, instead of producing garbage. What it cannot
 * contain is a kernel that faults: that loses the CUDA context like any
 * faulting kernel would. */
#include <math.h>
#include <stdlib.h>

#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/kernels/kernels.h"
#include "core/log.h"
#include "tensor/tensor.h"

#define CHECK_TOKENS 100 /* not a multiple of either kernel's tiles */
#define CHECK_HEADS 2
#define CHECK_LIMIT 2e-2 /* both accumulate in f32: they differ by rounding only */

static gen_status random_tensor(gen__tensor *t, gen__backend *be, gen__dtype dt, int64_t cols,
                                uint32_t *seed)
{
    int64_t shape[3] = {1, CHECK_TOKENS, cols};
    gen_status st = gen__tensor_alloc(t, be, dt, 3, shape);
    if (st != GEN_OK)
        return st;
    size_t n = (size_t)(CHECK_TOKENS * cols);
    float *f = malloc(n * sizeof(float));
    void *conv = malloc(n * gen__dtype_size(dt));
    if (!f || !conv) {
        free(f);
        free(conv);
        return gen__error(GEN_ENOMEM, "attention check: no host memory");
    }
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        f[i] = (float)(*seed >> 8) / (float)(1u << 24) * 4.0f - 2.0f;
    }
    gen__convert_host(conv, dt, f, GEN__F32, n);
    st = gen__tensor_upload(t, conv, n * gen__dtype_size(dt));
    free(f);
    free(conv);
    return st;
}

static double rel_l2_of(const gen__tensor *a, const gen__tensor *b, gen_status *st)
{
    size_t n = (size_t)gen__tensor_numel(a), bytes = gen__tensor_nbytes(a);
    void *ra = malloc(bytes), *rb = malloc(bytes);
    float *fa = malloc(n * sizeof(float)), *fb = malloc(n * sizeof(float));
    double err = INFINITY;
    if (!ra || !rb || !fa || !fb) {
        *st = gen__error(GEN_ENOMEM, "attention check: no host memory");
    } else if ((*st = gen__tensor_download(a, ra, bytes)) == GEN_OK &&
               (*st = gen__tensor_download(b, rb, bytes)) == GEN_OK) {
        gen__convert_host(fa, GEN__F32, ra, a->dtype, n);
        gen__convert_host(fb, GEN__F32, rb, b->dtype, n);
        double num = 0.0, den = 0.0;
        for (size_t i = 0; i < n; i++) {
            double d = (double)fa[i] - (double)fb[i];
            num += d * d;
            den += (double)fb[i] * (double)fb[i];
        }
        err = sqrt(num / (den > 0.0 ? den : 1e-30)); /* NaN stays NaN: a failure */
    }
    free(ra);
    free(rb);
    free(fa);
    free(fb);
    return err;
}

/* One problem through both kernels: their relative L2 difference in *err. */
static gen_status compare_kernels(gen__backend *be, gen__dtype dt, int d, bool causal,
                                  double *err)
{
    gen__cuda_ctx *c = gen__cuda(be);
    uint32_t seed = 12345u + (uint32_t)d;
    gen__tensor q = GEN__TENSOR_EMPTY, k = GEN__TENSOR_EMPTY, v = GEN__TENSOR_EMPTY,
                simple = GEN__TENSOR_EMPTY, mma = GEN__TENSOR_EMPTY;
    int64_t cols = (int64_t)CHECK_HEADS * d, shape[3] = {1, CHECK_TOKENS, cols};
    gen_status st = random_tensor(&q, be, dt, cols, &seed);
    if (st == GEN_OK)
        st = random_tensor(&k, be, dt, cols, &seed);
    if (st == GEN_OK)
        st = random_tensor(&v, be, dt, cols, &seed);
    if (st == GEN_OK)
        st = gen__tensor_alloc(&simple, be, dt, 3, shape);
    if (st == GEN_OK)
        st = gen__tensor_alloc(&mma, be, dt, 3, shape);
    if (st == GEN_OK)
        st = gen__cuda_enter(c);
    if (st == GEN_OK) {
        float scale = 1.0f / sqrtf((float)d);
        cudaError_t e = gen__cuk_attention(c->stream, (int)dt, simple.data, q.data, k.data, v.data,
                                           1, CHECK_TOKENS, CHECK_TOKENS, CHECK_HEADS, d, d, scale,
                                           causal);
        if (e == cudaSuccess)
            e = gen__cuk_attention_mma(c->stream, (int)dt, mma.data, q.data, k.data, v.data, 1,
                                       CHECK_TOKENS, CHECK_TOKENS, CHECK_HEADS, d, d, scale,
                                       causal);
        if (e != cudaSuccess)
            st = gen__cuda_fail(c, e, "attention check");
    }
    if (st == GEN_OK)
        *err = rel_l2_of(&mma, &simple, &st);
    gen__tensor *all[] = {&q, &k, &v, &simple, &mma};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        gen__tensor_free(all[i]);
    return st;
}

bool gen__cuda_attention_use_mma(gen__backend *be, gen__dtype dt)
{
    gen__cuda_ctx *c = gen__cuda(be);
    if (dt == GEN__F32 || c->props.compute_capability < 80 || !gen__cuk_attention_mma_built() ||
        c->attention_mode == GEN__CUDA_ATTENTION_SIMPLE)
        return false;
    if (c->attention_mode == GEN__CUDA_ATTENTION_MMA)
        return true;
    if (c->mma_checked[dt] != 0)
        return c->mma_checked[dt] > 0;
    static const struct {
        int d;
        bool causal;
    } problems[] = {{40, false}, {64, true}, {80, false}, {160, true}};
    double worst = 0.0;
    for (size_t i = 0; i < sizeof(problems) / sizeof(problems[0]); i++) {
        double err = INFINITY;
        gen_status st = compare_kernels(be, dt, problems[i].d, problems[i].causal, &err);
        if (st != GEN_OK) {
            /* out of memory right now: ask again at a later call, a few times;
             * anything else (a launch error) will not go away: decide now */
            bool retry = st == GEN_EDEVICE_OOM && ++c->mma_check_oom <= 3;
            if (!retry)
                c->mma_checked[dt] = -1;
            gen__log(NULL, GEN_LOG_WARN,
                     "%s: could not check the tensor-core attention in %s (%s); the CUDA-core "
                     "kernel serves %s",
                     be->name, gen__dtype_name(dt), gen_last_error_message(),
                     retry ? "this call" : "this device from now on");
            return false;
        }
        worst = err > worst || isnan(err) ? err : worst;
    }
    bool ok = worst < CHECK_LIMIT;
    c->mma_checked[dt] = ok ? 1 : -1;
    c->mma_check_error[dt] = (float)worst;
    if (ok)
        gen__log(NULL, GEN_LOG_DEBUG,
                 "%s: tensor-core attention agrees with the CUDA-core kernel in %s (rel L2 %.1e)",
                 be->name, gen__dtype_name(dt), worst);
    else
        gen__log(NULL, GEN_LOG_WARN,
                 "%s: tensor-core attention differs from the CUDA-core kernel in %s (rel L2 %.1e): "
                 "using the CUDA-core kernel on this device",
                 be->name, gen__dtype_name(dt), worst);
    return ok;
}
