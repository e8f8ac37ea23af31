// Data movement: nearest 2x upsampling, zero padding, concat, batched
// transpose (32x32 shared-memory tiles) and embedding gathers. Index math is
// in plan.h (unit-tested on the host).
#include "backend/cuda/kernels/common.cuh"

namespace gen_cuk {

template <typename T> __global__ void upsample2x_k(T *out, const T *x, int64_t n, int64_t h, int64_t w)
{
    for (int64_t i = global_tid(); i < n; i += grid_stride())
        out[i] = x[gen__upsample2x_source(i, h, w)];
}

template <typename T>
__global__ void pad2d_k(T *out, const T *x, int64_t n, int64_t h, int64_t w, int top, int bottom,
                        int left, int right)
{
    for (int64_t i = global_tid(); i < n; i += grid_stride()) {
        int64_t src = gen__pad2d_source(i, h, w, top, bottom, left, right);
        out[i] = src < 0 ? from_f32<T>(0.0f) : x[src];
    }
}

template <typename T>
__global__ void concat_k(T *out, const T *a, const T *b, int64_t n, int64_t wa, int64_t wb)
{
    for (int64_t i = global_tid(); i < n; i += grid_stride()) {
        int64_t off;
        out[i] = gen__concat_source(i, wa, wb, &off) == 0 ? a[off] : b[off];
    }
}

constexpr int kTile = 32, kTileRows = 8;

// Block (32, 8) moves one 32x32 tile at a time; the loops run the same number
// of iterations for every thread of a block, so the barriers are uniform.
template <typename T>
__global__ void transpose_k(T *out, const T *x, int64_t batch, int64_t p, int64_t q)
{
    __shared__ T tile[kTile][kTile + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;
    for (int64_t bz = blockIdx.z; bz < batch; bz += gridDim.z) {
        const T *xb = x + bz * p * q;
        T *ob = out + bz * p * q;
        for (int64_t r0 = (int64_t)blockIdx.y * kTile; r0 < p; r0 += (int64_t)gridDim.y * kTile) {
            for (int64_t c0 = (int64_t)blockIdx.x * kTile; c0 < q; c0 += (int64_t)gridDim.x * kTile) {
                for (int i = ty; i < kTile; i += kTileRows) {
                    int64_t r = r0 + i, c = c0 + tx;
                    if (r < p && c < q)
                        tile[i][tx] = xb[r * q + c];
                }
                __syncthreads();
                for (int i = ty; i < kTile; i += kTileRows) {
                    int64_t orow = c0 + i, ocol = r0 + tx; // out is [q, p]
                    if (orow < q && ocol < p)
                        ob[orow * p + ocol] = tile[tx][i];
                }
                __syncthreads();
            }
        }
    }
}

template <typename T>
__global__ void embedding_k(T *out, const T *table, const int32_t *ids, int64_t rows, int64_t d)
{
    int64_t n = rows * d;
    for (int64_t i = global_tid(); i < n; i += grid_stride())
        out[i] = table[(int64_t)ids[i / d] * d + i % d];
}

inline unsigned clamp_grid(int64_t v, int64_t limit)
{
    return (unsigned)(v < 1 ? 1 : (v > limit ? limit : v));
}

} // namespace gen_cuk

using namespace gen_cuk;

extern "C" cudaError_t gen__cuk_upsample2x(cudaStream_t s, int dtype, void *out, const void *x,
                                           int64_t nc, int64_t h, int64_t w)
{
    int64_t n = nc * 4 * h * w;
    return dispatch(dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        launch_kernel(upsample2x_k<T>, grid_for(n), kThreads, 0, s, (T *)out, (const T *)x, n, h, w);
    });
}

extern "C" cudaError_t gen__cuk_pad2d(cudaStream_t s, int dtype, void *out, const void *x,
                                      int64_t nc, int64_t h, int64_t w, int top, int bottom,
                                      int left, int right)
{
    int64_t n = nc * (h + top + bottom) * (w + left + right);
    return dispatch(dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        launch_kernel(pad2d_k<T>, grid_for(n), kThreads, 0, s, (T *)out, (const T *)x, n, h, w, top,
                      bottom, left, right);
    });
}

extern "C" cudaError_t gen__cuk_concat(cudaStream_t s, int dtype, void *out, const void *a,
                                       const void *b, int64_t outer, int64_t wa, int64_t wb)
{
    int64_t n = outer * (wa + wb);
    return dispatch(dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        launch_kernel(concat_k<T>, grid_for(n), kThreads, 0, s, (T *)out, (const T *)a, (const T *)b,
                      n, wa, wb);
    });
}

extern "C" cudaError_t gen__cuk_transpose(cudaStream_t s, int dtype, void *out, const void *x,
                                          int64_t batch, int64_t p, int64_t q)
{
    dim3 block(kTile, kTileRows);
    dim3 grid(clamp_grid((q + kTile - 1) / kTile, 65535), clamp_grid((p + kTile - 1) / kTile, 65535),
              clamp_grid(batch, 65535));
    return dispatch(dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        launch_kernel(transpose_k<T>, grid, block, 0, s, (T *)out, (const T *)x, batch, p, q);
    });
}

extern "C" cudaError_t gen__cuk_embedding(cudaStream_t s, int dtype, void *out, const void *table,
                                          const int32_t *ids, int64_t rows, int64_t d)
{
    return dispatch(dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        launch_kernel(embedding_k<T>, grid_for(rows * d), kThreads, 0, s, (T *)out, (const T *)table,
                      ids, rows, d);
    });
}
