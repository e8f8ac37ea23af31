// Element-wise kernels: fill, dtype conversion, activations, GEGLU, broadcast
// add/mul, axpby and the bias add used after GEMMs and convolutions. All are
// grid-stride loops, so any element count works with a bounded grid.
#include "backend/cuda/kernels/common.cuh"

namespace gen_cuk {

template <typename T> __global__ void fill_k(T *out, int64_t n, float value)
{
    T v = from_f32<T>(value);
    for (int64_t i = global_tid(); i < n; i += grid_stride())
        out[i] = v;
}

// Widening that keeps a NaN's sign and payload bits exactly like tensor.h's
// host conversion (the hardware conversion may return a canonical NaN).
__device__ __forceinline__ float exact_to_f32(float x) { return x; }
// An explicit shift: from sm_90 __bfloat162float is cvt.f32.bf16, not a bit
// move, and a conversion instruction need not keep a NaN's sign and payload.
__device__ __forceinline__ float exact_to_f32(__nv_bfloat16 x)
{
    return __uint_as_float((unsigned)__bfloat16_as_ushort(x) << 16);
}
__device__ __forceinline__ float exact_to_f32(__half x)
{
    unsigned h = __half_as_ushort(x);
    if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu))
        return __uint_as_float(((h & 0x8000u) << 16) | 0x7f800000u | ((h & 0x3ffu) << 13));
    return __half2float(x);
}

template <typename TO, typename TI> __global__ void convert_k(TO *out, const TI *x, int64_t n)
{
    for (int64_t i = global_tid(); i < n; i += grid_stride())
        out[i] = from_f32<TO>(exact_to_f32(x[i]));
}

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

__device__ __forceinline__ float gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

__device__ __forceinline__ float activate(float x, int op)
{
    switch (op) {
    case GEN__CUK_SILU:
        return x * sigmoid(x);
    case GEN__CUK_GELU:
        return gelu_erf(x);
    case GEN__CUK_GELU_TANH: {
        const float k = 0.7978845608028654f; // sqrt(2 / pi)
        return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
    }
    default: /* GEN__CUK_QUICK_GELU */
        return x * sigmoid(1.702f * x);
    }
}

template <typename T> __global__ void unary_k(T *out, const T *x, int64_t n, int op)
{
    for (int64_t i = global_tid(); i < n; i += grid_stride())
        out[i] = from_f32<T>(activate(to_f32(x[i]), op));
}

template <typename T> __global__ void geglu_k(T *out, const T *x, int64_t rows, int64_t d)
{
    int64_t n = rows * d;
    for (int64_t i = global_tid(); i < n; i += grid_stride()) {
        int64_t r = i / d, c = i % d;
        float h = to_f32(x[r * 2 * d + c]), g = to_f32(x[r * 2 * d + d + c]);
        out[i] = from_f32<T>(h * gelu_erf(g));
    }
}

template <typename T>
__global__ void binary_k(T *out, const T *a, const T *b, gen__bcast_plan plan, int64_t n, int op)
{
    for (int64_t i = global_tid(); i < n; i += grid_stride()) {
        int64_t oa, ob;
        gen__bcast_offsets(&plan, i, &oa, &ob);
        float x = to_f32(a[oa]), y = to_f32(b[ob]);
        out[i] = from_f32<T>(op == 0 ? x + y : x * y);
    }
}

template <typename T>
__global__ void axpby_k(T *out, float alpha, const T *a, float beta, const T *b, int64_t n)
{
    for (int64_t i = global_tid(); i < n; i += grid_stride()) {
        float y = alpha * to_f32(a[i]);
        if (b)
            y += beta * to_f32(b[i]);
        out[i] = from_f32<T>(y);
    }
}

template <typename T>
__global__ void bias_add_k(T *out, const T *bias, int64_t outer, int64_t channels, int64_t inner)
{
    int64_t n = outer * channels * inner;
    for (int64_t i = global_tid(); i < n; i += grid_stride()) {
        int64_t c = (i / inner) % channels;
        out[i] = from_f32<T>(to_f32(out[i]) + to_f32(bias[c]));
    }
}

} // namespace gen_cuk

using namespace gen_cuk;

extern "C" cudaError_t gen__cuk_fill(cudaStream_t s, int dtype, void *out, int64_t n, float value)
{
    return dispatch(dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        launch_kernel(fill_k<T>, grid_for(n), kThreads, 0, s, (T *)out, n, value);
    });
}

extern "C" cudaError_t gen__cuk_convert(cudaStream_t s, void *out, int out_dtype, const void *x,
                                        int x_dtype, int64_t n)
{
    cudaError_t inner = cudaSuccess;
    cudaError_t err = dispatch(out_dtype, [&](auto to) {
        using TO = typename decltype(to)::type;
        inner = dispatch(x_dtype, [&](auto ti) {
            using TI = typename decltype(ti)::type;
            launch_kernel(convert_k<TO, TI>, grid_for(n), kThreads, 0, s, (TO *)out, (const TI *)x,
                          n);
        });
    });
    return err != cudaSuccess ? err : inner;
}

extern "C" cudaError_t gen__cuk_unary(cudaStream_t s, int dtype, void *out, const void *x, int64_t n,
                                      int op)
{
    return dispatch(dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        launch_kernel(unary_k<T>, grid_for(n), kThreads, 0, s, (T *)out, (const T *)x, n, op);
    });
}

extern "C" cudaError_t gen__cuk_geglu(cudaStream_t s, int dtype, void *out, const void *x,
                                      int64_t rows, int64_t d)
{
    return dispatch(dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        launch_kernel(geglu_k<T>, grid_for(rows * d), kThreads, 0, s, (T *)out, (const T *)x, rows,
                      d);
    });
}

extern "C" cudaError_t gen__cuk_binary(cudaStream_t s, int dtype, void *out, const void *a,
                                       const void *b, const gen__bcast_plan *plan, int op)
{
    int64_t n = 1;
    for (int i = 0; i < plan->nd; i++)
        n *= plan->dims[i];
    gen__bcast_plan p = *plan;
    return dispatch(dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        launch_kernel(binary_k<T>, grid_for(n), kThreads, 0, s, (T *)out, (const T *)a, (const T *)b,
                      p, n, op);
    });
}

extern "C" cudaError_t gen__cuk_axpby(cudaStream_t s, int dtype, void *out, float alpha,
                                      const void *a, float beta, const void *b, int64_t n)
{
    return dispatch(dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        launch_kernel(axpby_k<T>, grid_for(n), kThreads, 0, s, (T *)out, alpha, (const T *)a, beta,
                      (const T *)b, n);
    });
}

extern "C" cudaError_t gen__cuk_bias_add(cudaStream_t s, int dtype, void *out, const void *bias,
                                         int64_t outer, int64_t channels, int64_t inner)
{
    return dispatch(dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        launch_kernel(bias_add_k<T>, grid_for(outer * channels * inner), kThreads, 0, s, (T *)out,
                      (const T *)bias, outer, channels, inner);
    });
}
