// A CPU emulator for our CUDA kernels (lib/backend/cuda/kernels/*.cu), so that
// their bodies run, and are checked against the CPU backend, on machines
// without a GPU (tests/backend/test_cuda_kernels_emu.c). Each emu_*.cpp
// includes this header and then one .cu file, compiled as host C++ with
// GEN_CUDA_EMU defined.
//
// Every CUDA thread of a block is a fiber (ucontext) on the calling thread;
// blocks run one after another. __syncthreads parks a fiber until every live
// thread of the block has arrived; warp collectives (__shfl_*_sync, the
// emulated mma.sync) park it until all 32 lanes of its warp have arrived, then
// the scheduler computes every lane's result at once. By default warps advance
// in lockstep; gen_emu_set_schedule lets one warp run ahead of the others
// instead (lowest or highest first), which is how a missing barrier shows. A barrier part of the
// block skips (divergent __syncthreads), a shuffle missing lanes or a barrier
// that can never complete is reported as a launch failure instead of hanging. Launch geometry is checked like the
// driver would (block size, grid limits, dynamic shared memory above 48 KiB
// only after cudaFuncSetAttribute). Dynamic shared memory starts as 0xff bytes
// (NaN floats), so reading a word no thread wrote shows up in the results.
// The tensor-core mma.sync m16n8k16 is emulated from the PTX ISA's fragment
// layouts, written out here independently of plan.h's maps.
#ifndef GEN_TESTS_CUDA_EMU_H
#define GEN_TESTS_CUDA_EMU_H

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace gen_emu {

struct thread_state;

// The current CUDA thread's coordinates (valid inside a kernel body).
const uint3 &thread_idx();
const uint3 &block_idx();
const dim3 &block_dim();
const dim3 &grid_dim();
int lane_id();

void syncthreads();
[[noreturn]] void trap();
void *dynamic_smem();

// Warp collective: every lane passes its own `in` and `out`; when the whole
// warp has arrived, fn(ins, outs) runs once for the 32 lanes (ins[l], outs[l]
// are lane l's pointers).
typedef void (*collective_fn)(const void *const *ins, void *const *outs);
void warp_collective(collective_fn fn, const void *in, void *out);

struct shfl_in {
    uint64_t bits;
    int src;
};
void shfl_exchange(const void *const *ins, void *const *outs);

template <typename T> T shfl_to(unsigned mask, T v, int src)
{
    static_assert(sizeof(T) <= 8, "shuffled values are at most 8 bytes");
    if (mask != 0xffffffffu)
        trap(); // our kernels shuffle whole warps only
    shfl_in in = {0, src & 31};
    memcpy(&in.bits, &v, sizeof(T));
    uint64_t out = 0;
    warp_collective(shfl_exchange, &in, &out);
    T r;
    memcpy(&r, &out, sizeof(T));
    return r;
}

// mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}.{f16,bf16}.f32, c in place
void mma16816(bool bf16, float *c, const uint32_t *a, uint32_t b0, uint32_t b1);

void launch(dim3 grid, dim3 block, size_t smem, const void *kernel, std::function<void()> body);
cudaError_t func_set_attribute(const void *kernel, cudaFuncAttribute attr, int value);
cudaError_t get_last_error();

template <typename K> cudaError_t func_set_attribute_t(K *kernel, cudaFuncAttribute attr, int value)
{
    return func_set_attribute((const void *)kernel, attr, value);
}

inline float uint_as_float(unsigned x)
{
    float f;
    memcpy(&f, &x, 4);
    return f;
}
inline unsigned float_as_uint(float f)
{
    unsigned x;
    memcpy(&x, &f, 4);
    return x;
}

} // namespace gen_emu

// What an emulated kernel body sees of CUDA.
#undef threadIdx
#undef blockIdx
#undef blockDim
#undef gridDim
#define threadIdx (gen_emu::thread_idx())
#define blockIdx (gen_emu::block_idx())
#define blockDim (gen_emu::block_dim())
#define gridDim (gen_emu::grid_dim())
#define __syncthreads() gen_emu::syncthreads()
#define __shfl_sync(mask, v, src, ...) gen_emu::shfl_to((mask), (v), (src))
#define __shfl_xor_sync(mask, v, lanemask, ...)                                                    \
    gen_emu::shfl_to((mask), (v), gen_emu::lane_id() ^ (lanemask))
#define __trap() gen_emu::trap()
#define __uint_as_float(x) gen_emu::uint_as_float(x)
#define __float_as_uint(x) gen_emu::float_as_uint(x)
#undef __launch_bounds__
#define __launch_bounds__(...)
#undef __shared__
#define __shared__ static // one per kernel instantiation: blocks run one at a time
#define rsqrtf(x) (1.0f / sqrtf(x))
#define cudaFuncSetAttribute gen_emu::func_set_attribute_t
#define cudaGetLastError gen_emu::get_last_error
using std::isnan;

#endif
