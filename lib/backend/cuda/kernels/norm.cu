// Reductions over rows: group norm (+SiLU), layer norm and softmax. One block
// per group or row; two passes for the variance ((x - mean)^2, not E[x^2] -
// mean^2, which cancels badly in f32) and a third that writes. A thread reads
// and writes the same elements, so out may alias x.
#include "backend/cuda/kernels/common.cuh"

namespace gen_cuk {

constexpr int kNormThreads = 512;

template <typename T>
__global__ void __launch_bounds__(kNormThreads)
    group_norm_k(T *out, const T *x, const T *gamma, const T *beta, int64_t c, int64_t s,
                 int groups, float eps, bool silu)
{
    __shared__ float sh[32];
    const int64_t n = blockIdx.x / groups, g = blockIdx.x % groups;
    const int64_t cg = c / groups, count = cg * s;
    const int64_t base = gen__gn_base(n, g, c, s, groups);
    const T *xg = x + base;
    T *og = out + base;

    float acc = 0.0f;
    for (int64_t e = threadIdx.x; e < count; e += blockDim.x)
        acc += to_f32(xg[e]);
    const float mean = block_reduce(acc, sh, false) / (float)count;
    acc = 0.0f;
    for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
        float d = to_f32(xg[e]) - mean;
        acc += d * d;
    }
    const float var = block_reduce(acc, sh, false) / (float)count;
    const float rstd = rsqrtf(var + eps);
    for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
        float y = (to_f32(xg[e]) - mean) * rstd;
        if (gamma) {
            int64_t ch = g * cg + e / s;
            y = y * to_f32(gamma[ch]) + to_f32(beta[ch]);
        }
        if (silu)
            y = y / (1.0f + expf(-y));
        og[e] = from_f32<T>(y);
    }
}

template <typename T>
__global__ void layer_norm_k(T *out, const T *x, const T *gamma, const T *beta, int64_t d, float eps)
{
    __shared__ float sh[32];
    const T *xr = x + (int64_t)blockIdx.x * d;
    T *orow = out + (int64_t)blockIdx.x * d;
    float acc = 0.0f;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x)
        acc += to_f32(xr[i]);
    const float mean = block_reduce(acc, sh, false) / (float)d;
    acc = 0.0f;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
        float v = to_f32(xr[i]) - mean;
        acc += v * v;
    }
    const float rstd = rsqrtf(block_reduce(acc, sh, false) / (float)d + eps);
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
        float y = (to_f32(xr[i]) - mean) * rstd;
        if (gamma)
            y *= to_f32(gamma[i]);
        if (beta)
            y += to_f32(beta[i]);
        orow[i] = from_f32<T>(y);
    }
}

template <typename T> __global__ void softmax_k(T *out, const T *x, int64_t n, float scale)
{
    __shared__ float sh[32];
    const T *xr = x + (int64_t)blockIdx.x * n;
    T *orow = out + (int64_t)blockIdx.x * n;
    float m = -INFINITY;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        m = fmaxf(m, scale * to_f32(xr[i]));
    m = block_reduce(m, sh, true);
    float acc = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        acc += expf(scale * to_f32(xr[i]) - m);
    const float inv = 1.0f / block_reduce(acc, sh, false);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        orow[i] = from_f32<T>(expf(scale * to_f32(xr[i]) - m) * inv);
}

// Threads for a row of d elements: a multiple of 32 in [32, 256].
inline int row_threads(int64_t d)
{
    int64_t t = (d + 31) / 32 * 32;
    return t > 256 ? 256 : (t < 32 ? 32 : (int)t);
}

} // namespace gen_cuk

using namespace gen_cuk;

extern "C" cudaError_t gen__cuk_group_norm(cudaStream_t s, int dtype, void *out, const void *x,
                                           const void *gamma, const void *beta, int64_t n, int64_t c,
                                           int64_t spatial, int groups, float eps, bool silu)
{
    int64_t blocks = n * groups;
    if (blocks > 0x7fffffff)
        return cudaErrorInvalidValue;
    return dispatch(dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        launch_kernel(group_norm_k<T>, (unsigned)blocks, kNormThreads, 0, s, (T *)out, (const T *)x,
                      (const T *)gamma, (const T *)beta, c, spatial, groups, eps, silu);
    });
}

extern "C" cudaError_t gen__cuk_layer_norm(cudaStream_t s, int dtype, void *out, const void *x,
                                           const void *gamma, const void *beta, int64_t rows,
                                           int64_t d, float eps)
{
    if (rows > 0x7fffffff)
        return cudaErrorInvalidValue;
    return dispatch(dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        launch_kernel(layer_norm_k<T>, (unsigned)rows, row_threads(d), 0, s, (T *)out, (const T *)x,
                      (const T *)gamma, (const T *)beta, d, eps);
    });
}

extern "C" cudaError_t gen__cuk_softmax(cudaStream_t s, int dtype, void *out, const void *x,
                                        int64_t rows, int64_t n, float scale)
{
    if (rows > 0x7fffffff)
        return cudaErrorInvalidValue;
    return dispatch(dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        launch_kernel(softmax_k<T>, (unsigned)rows, row_threads(n), 0, s, (T *)out, (const T *)x, n,
                      scale);
    });
}
