// The emulator's runtime: fibers, barriers, warp collectives, launches (see
// cuda_emu.h). Single-threaded: one launch at a time, on the calling thread.
#include "cuda_emu.h"

#include <ucontext.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <vector>

#include "cuda_emu_c.h"

namespace gen_emu {

enum state { READY, AT_BARRIER, AT_WARP, DONE };

struct thread_state {
    ucontext_t ctx;
    uint3 tid;
    int linear;
    state st;
    collective_fn fn;
    const void *in;
    void *out;
};

namespace {

const size_t kStack = 256 * 1024; // kernels keep small arrays; sanitizers want room

struct launch_state {
    dim3 grid, block;
    uint3 bid;
    std::function<void()> body;
    std::vector<thread_state> threads;
    std::vector<char *> stacks;
    ucontext_t scheduler;
    thread_state *current = nullptr;
    unsigned char *smem = nullptr;
    char failure[512] = "";
};

launch_state *g; // the launch in progress
cudaError_t last_error = cudaSuccess;
char last_message[512] = "";
std::map<const void *, int> max_dynamic_smem; // cudaFuncSetAttribute per kernel
int schedule; // 0 warps in lockstep; 1 / -1 one warp at a time, lowest / highest first

void fail(const char *fmt, ...)
{
    if (g->failure[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->failure, sizeof(g->failure), fmt, ap);
    va_end(ap);
}

void fiber_main()
{
    g->body();
    g->current->st = DONE;
    swapcontext(&g->current->ctx, &g->scheduler);
}

void park(state s)
{
    thread_state *t = g->current;
    t->st = s;
    swapcontext(&t->ctx, &g->scheduler);
}

// 1 when warp w0/32's collective was released, 0 when the warp is not (all)
// waiting at one, -1 on a failure (recorded).
int release_warp(size_t w0)
{
    size_t n = g->threads.size(), w1 = w0 + 32 < n ? w0 + 32 : n;
    int waiting = 0, live = 0;
    for (size_t i = w0; i < w1; i++) {
        live += g->threads[i].st != DONE;
        waiting += g->threads[i].st == AT_WARP;
    }
    if (waiting == 0 || waiting != live)
        return 0;
    if (w1 - w0 != 32 || live != 32) {
        fail("block %u,%u,%u warp %zu: a warp collective without all 32 lanes (%d live)",
             g->bid.x, g->bid.y, g->bid.z, w0 / 32, live);
        return -1;
    }
    const void *ins[32];
    void *outs[32];
    for (int l = 0; l < 32; l++) {
        thread_state &t = g->threads[w0 + l];
        if (t.fn != g->threads[w0].fn) {
            fail("block %u,%u,%u warp %zu: lanes meet at different warp collectives", g->bid.x,
                 g->bid.y, g->bid.z, w0 / 32);
            return -1;
        }
        ins[l] = t.in;
        outs[l] = t.out;
    }
    g->threads[w0].fn(ins, outs);
    for (size_t i = w0; i < w1; i++)
        g->threads[i].st = READY;
    return 1;
}

// Release what can be released; false when nothing could (and not all done).
bool release()
{
    bool released = false;
    size_t n = g->threads.size();
    for (size_t w0 = 0; w0 < n; w0 += 32) {
        int r = release_warp(w0);
        if (r < 0)
            return false;
        released |= r > 0;
    }
    if (released)
        return true;
    int at_barrier = 0, live = 0;
    for (auto &t : g->threads) {
        live += t.st != DONE;
        at_barrier += t.st == AT_BARRIER;
    }
    if (live == 0)
        return false;
    if (at_barrier == live && live < (int)g->threads.size()) {
        // sm_70+ would let these through, but a barrier that part of the block
        // skipped is undefined behaviour in CUDA: report it
        fail("block %u,%u,%u: divergent __syncthreads: %d threads wait at it, %d exited without "
             "reaching it",
             g->bid.x, g->bid.y, g->bid.z, at_barrier, (int)g->threads.size() - live);
        return false;
    }
    if (at_barrier == live) {
        for (auto &t : g->threads)
            t.st = READY;
        return true;
    }
    fail("block %u,%u,%u: deadlock: %d threads at __syncthreads, %d others parked in warp "
         "collectives of partly waiting warps",
         g->bid.x, g->bid.y, g->bid.z, at_barrier, live - at_barrier);
    return false;
}

// Kept out of run_block: getcontext returns twice, like setjmp.
__attribute__((noinline)) void init_fiber(thread_state &t, size_t i, char *stack)
{
    t.linear = (int)i;
    t.tid.x = (unsigned)(i % g->block.x);
    t.tid.y = (unsigned)(i / g->block.x % g->block.y);
    t.tid.z = (unsigned)(i / ((size_t)g->block.x * g->block.y));
    t.st = READY;
    t.fn = nullptr;
    getcontext(&t.ctx);
    t.ctx.uc_stack.ss_sp = stack;
    t.ctx.uc_stack.ss_size = kStack;
    t.ctx.uc_link = nullptr;
    makecontext(&t.ctx, fiber_main, 0);
}

void run_block()
{
    size_t n = g->threads.size();
    for (size_t i = 0; i < n; i++)
        init_fiber(g->threads[i], i, g->stacks[i]);
    for (;;) {
        size_t lo = 0, hi = n;
        if (schedule != 0) { // one warp at a time, as far as it can go alone
            size_t first = n;
            for (size_t k = 0; k < n && first == n; k++) {
                size_t i = schedule > 0 ? k : n - 1 - k;
                if (g->threads[i].st == READY)
                    first = i;
            }
            if (first < n) {
                lo = first / 32 * 32;
                hi = lo + 32 < n ? lo + 32 : n;
            }
        }
        bool ran = false;
        for (size_t i = lo; i < hi; i++) {
            thread_state &t = g->threads[i];
            if (t.st != READY)
                continue;
            ran = true;
            g->current = &t;
            swapcontext(&g->scheduler, &t.ctx);
        }
        if (schedule != 0 && ran) {
            if (release_warp(lo) < 0)
                return;
            continue; // the next warp with work, or this one again
        }
        bool all_done = true;
        for (auto &t : g->threads)
            all_done &= t.st == DONE;
        if (all_done || !release())
            return; // done, or a failure was recorded (the fibers are abandoned)
    }
}

} // namespace

const uint3 &thread_idx()
{
    return g->current->tid;
}
const uint3 &block_idx()
{
    return g->bid;
}
const dim3 &block_dim()
{
    return g->block;
}
const dim3 &grid_dim()
{
    return g->grid;
}
int lane_id()
{
    return g->current->linear & 31;
}

void syncthreads()
{
    park(AT_BARRIER);
}

void trap()
{
    fprintf(stderr, "cuda_emu: __trap() in block %u,%u,%u thread %d\n", g->bid.x, g->bid.y,
            g->bid.z, g->current->linear);
    abort();
}

void *dynamic_smem()
{
    return g->smem;
}

void warp_collective(collective_fn fn, const void *in, void *out)
{
    thread_state *t = g->current;
    t->fn = fn;
    t->in = in;
    t->out = out;
    park(AT_WARP);
}

void shfl_exchange(const void *const *ins, void *const *outs)
{
    for (int l = 0; l < 32; l++) {
        const shfl_in *mine = (const shfl_in *)ins[l];
        *(uint64_t *)outs[l] = ((const shfl_in *)ins[mine->src])->bits;
    }
}

// ---- mma.sync m16n8k16, from the PTX ISA's fragment layouts ------------------
// With g = lane / 4 and t = lane % 4 (each 32-bit register holds two elements,
// the lower-indexed one in its low 16 bits):
//   A (16 x 16, row-major): a0 = A[g][2t, 2t+1], a1 = A[g+8][2t, 2t+1],
//                           a2 = A[g][2t+8, 2t+9], a3 = A[g+8][2t+8, 2t+9]
//   B (16 x 8, k x n):      b0 = B[2t, 2t+1][g], b1 = B[2t+8, 2t+9][g]
//   C, D (16 x 8):          c0, c1 = C[g][2t, 2t+1], c2, c3 = C[g+8][2t, 2t+1]

namespace {

struct mma_io {
    bool bf16;
    const uint32_t *a;
    uint32_t b0, b1;
    float *c;
};

float half_bits_to_f32(uint16_t h, bool bf16)
{
    if (bf16) {
        uint32_t x = (uint32_t)h << 16;
        float f;
        memcpy(&f, &x, 4);
        return f;
    }
    return __half2float(__ushort_as_half(h));
}

float lo(uint32_t r, bool bf16)
{
    return half_bits_to_f32((uint16_t)(r & 0xffffu), bf16);
}
float hi(uint32_t r, bool bf16)
{
    return half_bits_to_f32((uint16_t)(r >> 16), bf16);
}

void mma_exchange(const void *const *ins, void *const *outs)
{
    (void)outs; // results go to each lane's c
    float A[16][16], B[16][8];
    bool bf16 = ((const mma_io *)ins[0])->bf16;
    for (int lane = 0; lane < 32; lane++) {
        const mma_io *io = (const mma_io *)ins[lane];
        if (io->bf16 != bf16)
            fail("mma: lanes disagree on the element type");
        int gr = lane / 4, t = lane % 4;
        A[gr][2 * t] = lo(io->a[0], bf16);
        A[gr][2 * t + 1] = hi(io->a[0], bf16);
        A[gr + 8][2 * t] = lo(io->a[1], bf16);
        A[gr + 8][2 * t + 1] = hi(io->a[1], bf16);
        A[gr][2 * t + 8] = lo(io->a[2], bf16);
        A[gr][2 * t + 9] = hi(io->a[2], bf16);
        A[gr + 8][2 * t + 8] = lo(io->a[3], bf16);
        A[gr + 8][2 * t + 9] = hi(io->a[3], bf16);
        B[2 * t][gr] = lo(io->b0, bf16);
        B[2 * t + 1][gr] = hi(io->b0, bf16);
        B[2 * t + 8][gr] = lo(io->b1, bf16);
        B[2 * t + 9][gr] = hi(io->b1, bf16);
    }
    for (int lane = 0; lane < 32; lane++) {
        const mma_io *io = (const mma_io *)ins[lane];
        int gr = lane / 4, t = lane % 4;
        const int rows[4] = {gr, gr, gr + 8, gr + 8}, cols[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
        for (int e = 0; e < 4; e++) {
            float acc = io->c[e];
            for (int k = 0; k < 16; k++)
                acc += A[rows[e]][k] * B[k][cols[e]];
            io->c[e] = acc;
        }
    }
}

} // namespace

void mma16816(bool bf16, float *c, const uint32_t *a, uint32_t b0, uint32_t b1)
{
    mma_io io = {bf16, a, b0, b1, c};
    warp_collective(mma_exchange, &io, nullptr);
}

// ---- launches -----------------------------------------------------------------------

void launch(dim3 grid, dim3 block, size_t smem, const void *kernel, std::function<void()> body)
{
    size_t threads = (size_t)block.x * block.y * block.z;
    auto bad = [](cudaError_t err, const char *why) {
        last_error = err;
        snprintf(last_message, sizeof(last_message), "%s", why);
    };
    if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 ||
        grid.z == 0 || grid.y > 65535 || grid.z > 65535 || grid.x > 0x7fffffffu)
        return bad(cudaErrorInvalidConfiguration, "launch geometry out of the device's limits");
    auto it = max_dynamic_smem.find(kernel);
    size_t allowed = it != max_dynamic_smem.end() ? (size_t)it->second : 48 * 1024;
    if (smem > allowed)
        return bad(cudaErrorInvalidValue,
                   "dynamic shared memory above 48 KiB without cudaFuncSetAttribute");
    launch_state st;
    st.grid = grid;
    st.block = block;
    st.body = std::move(body);
    st.threads.resize(threads);
    for (size_t i = 0; i < threads; i++)
        st.stacks.push_back((char *)malloc(kStack));
    std::vector<unsigned char> smem_buf(smem ? smem : 1);
    st.smem = smem_buf.data();
    launch_state *outer = g;
    g = &st;
    for (unsigned z = 0; z < grid.z && !st.failure[0]; z++)
        for (unsigned y = 0; y < grid.y && !st.failure[0]; y++)
            for (unsigned x = 0; x < grid.x && !st.failure[0]; x++) {
                st.bid = uint3{x, y, z};
                memset(st.smem, 0xff, smem); // uninitialised shared memory reads as NaN
                run_block();
            }
    g = outer;
    for (char *s : st.stacks)
        free(s);
    if (st.failure[0])
        bad(cudaErrorLaunchFailure, st.failure);
}

cudaError_t func_set_attribute(const void *kernel, cudaFuncAttribute attr, int value)
{
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize)
        return cudaSuccess;
    if (value < 0 || value > 227 * 1024) // sm_90's opt-in maximum per block
        return cudaErrorInvalidValue;
    max_dynamic_smem[kernel] = value;
    return cudaSuccess;
}

cudaError_t get_last_error()
{
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

} // namespace gen_emu

extern "C" const char *gen_emu_last_failure(void)
{
    return gen_emu::last_message;
}

extern "C" void gen_emu_set_schedule(int schedule)
{
    gen_emu::schedule = schedule;
}

extern "C" void gen_emu_clear_failure(void)
{
    gen_emu::last_message[0] = '\0';
    gen_emu::last_error = cudaSuccess;
}
