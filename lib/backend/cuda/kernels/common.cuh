// Shared device helpers of the kernels: storage-type loads/stores (arithmetic
// is always f32), dtype dispatch, launch geometry and block reductions.
#ifndef GEN_BACKEND_CUDA_KERNELS_COMMON_CUH
#define GEN_BACKEND_CUDA_KERNELS_COMMON_CUH

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "backend/cuda/kernels/kernels.h"

namespace gen_cuk {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kThreads = 256;

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

// Round to nearest even like tensor.h's host conversions; NaN stays a quiet
// NaN with its sign and top payload bits (the intrinsics would canonicalise it).
template <typename T> __device__ __forceinline__ T from_f32(float v);
template <> __device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_f32<__half>(float v)
{
    if (isnan(v)) {
        unsigned x = __float_as_uint(v);
        unsigned short h = (unsigned short)(((x >> 16) & 0x8000u) | 0x7e00u | ((x >> 13) & 0x3ffu));
        return __ushort_as_half(h);
    }
    return __float2half_rn(v);
}
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v)
{
    if (isnan(v)) {
        unsigned x = __float_as_uint(v);
        return __ushort_as_bfloat16((unsigned short)((x >> 16) | 0x0040u));
    }
    return __float2bfloat16_rn(v);
}

template <typename T> struct Tag {
    using type = T;
};

// Calls f(Tag<T>()) for the storage type of a gen__dtype value.
template <typename F> cudaError_t dispatch(int dtype, F &&f)
{
    switch (dtype) {
    case 0:
        f(Tag<float>());
        break;
    case 1:
        f(Tag<__half>());
        break;
    case 2:
        f(Tag<__nv_bfloat16>());
        break;
    default:
        return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

// Every launch goes through here: kernel<<<grid, block, smem, s>>>(args) on
// the GPU; built for the CPU emulator (tests/backend/cuda_emu, GEN_CUDA_EMU)
// the same kernel body runs there, thread by thread.
template <typename... P, typename... A>
inline void launch_kernel(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                          A... args)
{
#ifdef GEN_CUDA_EMU
    (void)s;
    gen_emu::launch(grid, block, smem, (const void *)kernel, [=]() { kernel(args...); });
#else
    kernel<<<grid, block, smem, s>>>(args...);
#endif
}

// The kernel's dynamic shared memory, 16-byte aligned.
#ifdef GEN_CUDA_EMU
#define GEN__DYNAMIC_SMEM(type, name) type *name = reinterpret_cast<type *>(gen_emu::dynamic_smem())
#else
#define GEN__DYNAMIC_SMEM(type, name) extern __shared__ __align__(16) type name[]
#endif

// Blocks for a grid-stride loop over n elements.
inline unsigned grid_for(int64_t n, int threads = kThreads)
{
    int64_t b = (n + threads - 1) / threads;
    if (b < 1)
        b = 1;
    if (b > (1 << 20))
        b = 1 << 20;
    return (unsigned)b;
}

__device__ __forceinline__ int64_t global_tid() { return (int64_t)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t grid_stride() { return (int64_t)gridDim.x * blockDim.x; }

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(kFullMask, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(kFullMask, v, o));
    return v;
}

// Sum (or max) over the whole block; blockDim.x a multiple of 32, <= 1024;
// `sh` holds 32 floats. Every thread gets the result. Safe to call repeatedly
// with the same `sh` (the leading barrier keeps the previous result readable).
__device__ __forceinline__ float block_reduce(float v, float *sh, bool is_max)
{
    v = is_max ? warp_max(v) : warp_sum(v);
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0)
        sh[w] = v;
    __syncthreads();
    if (w == 0) {
        float ident = is_max ? -INFINITY : 0.0f;
        v = lane < nw ? sh[lane] : ident;
        v = is_max ? warp_max(v) : warp_sum(v);
        if (lane == 0)
            sh[0] = v;
    }
    __syncthreads();
    return sh[0];
}

} // namespace gen_cuk

#endif
