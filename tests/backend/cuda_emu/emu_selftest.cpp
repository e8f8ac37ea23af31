// Kernels with the mistakes the emulator must catch, so that its clean runs of
// the real kernels mean something (test_cuda_kernels_emu.c).
#include "cuda_emu.h"

#include "backend/cuda/kernels/common.cuh"

#include "cuda_emu_c.h"

namespace {

// Threads of the second half skip a barrier the first half waits at.
__global__ void divergent_barrier_k(float *out)
{
    if (threadIdx.x < blockDim.x / 2)
        __syncthreads();
    out[threadIdx.x] = 1.0f;
}

// Lanes 16..31 leave before the warp's shuffle.
__global__ void partial_shuffle_k(float *out)
{
    if ((threadIdx.x & 31) >= 16)
        return;
    out[threadIdx.x] = gen_cuk::warp_sum((float)threadIdx.x);
}

// A correct block reduction, for the positive control.
__global__ void block_sum_k(float *out, const float *x)
{
    __shared__ float sh[32];
    float v = gen_cuk::block_reduce(x[threadIdx.x], sh, false);
    if (threadIdx.x == 0)
        out[blockIdx.x] = v;
}

__global__ void uses_dynamic_smem_k(float *out)
{
    GEN__DYNAMIC_SMEM(float, buf);
    buf[threadIdx.x] = (float)threadIdx.x;
    __syncthreads();
    out[threadIdx.x] = buf[blockDim.x - 1 - threadIdx.x];
}

// Reads a shared word nobody wrote (the emulator fills shared memory with NaN).
__global__ void reads_unwritten_smem_k(float *out)
{
    GEN__DYNAMIC_SMEM(float, buf);
    if (threadIdx.x > 0)
        buf[threadIdx.x] = 1.0f;
    __syncthreads();
    out[threadIdx.x] = buf[0];
}

// Two warps share a tile each round; the barrier that should say "everyone
// has read it" before warp 0 overwrites it is missing. The shuffle keeps the
// warps in step under the lockstep schedule, which hides the race; with warp 0
// running ahead, warp 1 reads the next round's values.
__global__ void missing_consumed_barrier_k(float *out)
{
    __shared__ float tile[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int round = 0; round < 2; round++) {
        if (warp == 0)
            tile[lane] = (float)(round * 100 + lane);
        __syncthreads();
        float v = tile[lane];
        v += gen_cuk::warp_sum(0.0f); // a warp collective, as the attention kernels have
        out[round * 64 + threadIdx.x] = v;
        // missing: __syncthreads();
    }
}

} // namespace

extern "C" int gen_emu_selftest(int which, float *out, const float *x)
{
    using gen_cuk::launch_kernel;
    switch (which) {
    case 0:
        launch_kernel(divergent_barrier_k, dim3(1), dim3(64), 0, nullptr, out);
        break;
    case 1:
        launch_kernel(partial_shuffle_k, dim3(1), dim3(32), 0, nullptr, out);
        break;
    case 2:
        launch_kernel(block_sum_k, dim3(2), dim3(256), 0, nullptr, out, x);
        break;
    case 3: // 64 KiB of dynamic shared memory without opting in
        launch_kernel(uses_dynamic_smem_k, dim3(1), dim3(128), 64 * 1024, nullptr, out);
        break;
    case 4: // the same after cudaFuncSetAttribute
        if (cudaFuncSetAttribute(uses_dynamic_smem_k, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 64 * 1024) != cudaSuccess)
            return -1;
        launch_kernel(uses_dynamic_smem_k, dim3(1), dim3(128), 64 * 1024, nullptr, out);
        break;
    case 5:
        launch_kernel(reads_unwritten_smem_k, dim3(1), dim3(32), 32 * sizeof(float), nullptr, out);
        break;
    case 7:
        launch_kernel(missing_consumed_barrier_k, dim3(1), dim3(64), 0, nullptr, out);
        break;
    case 6: // 2048 threads per block
        launch_kernel(uses_dynamic_smem_k, dim3(1), dim3(2048), 0, nullptr, out);
        break;
    default:
        return -1;
    }
    return (int)cudaGetLastError();
}
