/* The backend interface: one gen__backend per device (cpu:0, cpu:1, cuda:0...),
 * a table of function pointers plus a context. Pipelines (UNet, VAE, CLIP) are
 * written only against the gen__* op functions declared below, so the same code
 * runs on every backend.
 *
 * Calling convention for every op:
 * - The caller allocates every output (gen__tensor_alloc on the same backend);
 *   the op checks shapes and dtypes and returns GEN_EINVAL with a message that
 *   names the op and the shapes ("conv2d: weight f32[320,4,3,3] does not match
 *   input f32[1,3,64,64] (4 input channels expected)"); a dtype the backend
 *   cannot compute in gives GEN_EUNSUPPORTED; a tensor of another backend gives
 *   GEN_EINVAL. Nothing aborts; on error the output's contents are unspecified.
 * - All tensors of an op share one dtype unless the op says otherwise. The CPU
 *   backend computes in f32 only (it stores f16/bf16 and converts them with
 *   gen__convert); the CUDA backend computes f16/bf16/f32 with f32 accumulation.
 * - Tensors are dense row-major (lib/tensor/tensor.h). "[..., D]" means any
 *   number of leading dimensions, flattened into rows.
 * - Unless an op says "may alias", the output must not overlap any input.
 * - Ops may run asynchronously (CUDA stream order); gen__backend_synchronize
 *   waits for them. gen__tensor_download waits for the data it reads. Ops are
 *   executed in the order they are issued on a backend.
 *
 * Threading: a gen__backend is used by one thread at a time (its worker);
 * different backends may be used from different threads at the same time and
 * never serialise on each other (the CPU backend gives each device its own
 * threads and its own core budget). Memory accounting may be read from any
 * thread. */
#ifndef GEN_BACKEND_BACKEND_H
#define GEN_BACKEND_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gen/common.h>

#include "tensor/tensor.h"

typedef struct gen__backend gen__backend;

/* Memory of one device, measured on that device. */
typedef struct gen__backend_mem_info {
    uint64_t bytes_in_use;  /* allocated through this backend and not yet freed */
    uint64_t peak_bytes;    /* high-water mark of bytes_in_use (reset by gen__backend_reset_peak) */
    uint64_t capacity;      /* total memory of the device (CPU: physical RAM, or the limit set) */
    uint64_t available;     /* free now as the device reports it (CPU: MemAvailable, capped by
                             * the limit); other processes' use is included */
} gen__backend_mem_info;

/* conv2d geometry: stride and zero padding per side (diffusers' VAE Downsample
 * pads (0,1,0,1) then convolves with stride 2, padding 0). dilation = 1, groups = 1. */
typedef struct gen__conv2d_params {
    int stride_h, stride_w;
    int pad_top, pad_bottom, pad_left, pad_right;
} gen__conv2d_params;

/* Symmetric stride/padding, the usual Conv2d(stride=s, padding=p). */
gen__conv2d_params gen__conv2d_simple(int stride, int pad);

/* Output size along one axis: (in + pad0 + pad1 - k) / stride + 1 (<= 0: invalid). */
int64_t gen__conv2d_out_size(int64_t in, int k, int stride, int pad0, int pad1);

typedef enum gen__gelu_mode {
    GEN__GELU_ERF = 0,   /* 0.5 x (1 + erf(x / sqrt 2)): torch's default */
    GEN__GELU_TANH = 1   /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): approximate="tanh" */
} gen__gelu_mode;

typedef enum gen__unary_op {
    GEN__UNARY_SILU = 0,       /* x * sigmoid(x) */
    GEN__UNARY_GELU = 1,       /* exact erf GELU */
    GEN__UNARY_GELU_TANH = 2,  /* tanh approximation */
    GEN__UNARY_QUICK_GELU = 3, /* x * sigmoid(1.702 x) (CLIP's quick_gelu) */
    GEN__UNARY_COUNT
} gen__unary_op;

typedef enum gen__binary_op {
    GEN__BINARY_ADD = 0,
    GEN__BINARY_MUL = 1,
    GEN__BINARY_COUNT
} gen__binary_op;

/* The table each backend fills. Arguments have been validated by the gen__*
 * wrappers below (shapes, dtypes, same backend) before a function is called, so
 * implementations only check what depends on the device (dtype support, memory).
 * Every entry is required unless marked optional. */
typedef struct gen__backend_ops {
    void (*destroy)(gen__backend *be);

    /* memory: alloc returns GEN_EDEVICE_OOM (message naming the device and the
     * size) when the device or its limit is full. free accepts NULL. */
    gen_status (*alloc)(gen__backend *be, size_t bytes, void **out);
    void (*free)(gen__backend *be, void *ptr);
    void (*mem_info)(gen__backend *be, gen__backend_mem_info *out);
    void (*reset_peak)(gen__backend *be);

    /* copies of raw bytes; host pointers are ordinary (pageable) host memory */
    gen_status (*upload)(gen__backend *be, void *dst, const void *host_src, size_t bytes);
    gen_status (*download)(gen__backend *be, void *host_dst, const void *src, size_t bytes);
    gen_status (*copy)(gen__backend *be, void *dst, const void *src, size_t bytes);
    gen_status (*synchronize)(gen__backend *be);

    /* ops: semantics are those of the wrappers of the same name below */
    gen_status (*fill)(gen__backend *be, gen__tensor *out, float value);
    gen_status (*convert)(gen__backend *be, gen__tensor *out, const gen__tensor *x);
    gen_status (*gemm)(gen__backend *be, gen__tensor *c, const gen__tensor *a, const gen__tensor *b,
                       bool trans_a, bool trans_b, float alpha, float beta);
    gen_status (*linear)(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                         const gen__tensor *weight, const gen__tensor *bias);
    gen_status (*conv2d)(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                         const gen__tensor *weight, const gen__tensor *bias,
                         const gen__conv2d_params *p);
    gen_status (*group_norm)(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                             const gen__tensor *gamma, const gen__tensor *beta, int groups,
                             float eps, bool fuse_silu);
    gen_status (*layer_norm)(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                             const gen__tensor *gamma, const gen__tensor *beta, float eps);
    gen_status (*softmax)(gen__backend *be, gen__tensor *out, const gen__tensor *x, float scale);
    gen_status (*attention)(gen__backend *be, gen__tensor *out, const gen__tensor *q,
                            const gen__tensor *k, const gen__tensor *v, int heads, float scale,
                            bool causal);
    gen_status (*unary)(gen__backend *be, gen__tensor *out, const gen__tensor *x, gen__unary_op op);
    gen_status (*geglu)(gen__backend *be, gen__tensor *out, const gen__tensor *x);
    gen_status (*binary)(gen__backend *be, gen__tensor *out, const gen__tensor *a,
                         const gen__tensor *b, gen__binary_op op);
    gen_status (*axpby)(gen__backend *be, gen__tensor *out, float alpha, const gen__tensor *a,
                        float beta, const gen__tensor *b);
    gen_status (*upsample_nearest2x)(gen__backend *be, gen__tensor *out, const gen__tensor *x);
    gen_status (*concat)(gen__backend *be, gen__tensor *out, const gen__tensor *a,
                         const gen__tensor *b, int dim);
    gen_status (*transpose)(gen__backend *be, gen__tensor *out, const gen__tensor *x);
    gen_status (*timestep_embedding)(gen__backend *be, gen__tensor *out, const float *timesteps,
                                     bool flip_sin_to_cos, float downscale_freq_shift,
                                     float scale, float max_period);
    gen_status (*embedding)(gen__backend *be, gen__tensor *out, const gen__tensor *table,
                            const int32_t *ids);
} gen__backend_ops;

/* The device object. Backends embed nothing else here: their state is in ctx. */
struct gen__backend {
    const gen__backend_ops *ops;
    void *ctx;
    char name[32];            /* "cpu:0", "cuda:1": used in every message */
    uint32_t compute_dtypes;  /* bit (1u << dtype) set for each dtype the ops compute in */
};

/* Destroy a backend (NULL accepted). Every tensor allocated on it must have
 * been freed first (a leak is logged by the backend, not fatal). */
void gen__backend_destroy(gen__backend *be);

/* ---- CPU backend (lib/backend/cpu) ---------------------------------------- */

typedef struct gen__cpu_backend_options {
    int index;            /* the N of cpu:N (for names and messages) */
    int threads;          /* threads this device may use; <= 0: gen__cpu_thread_budget(index, 1) */
    uint64_t memory_limit; /* bytes; 0 = the host's physical RAM */
} gen__cpu_backend_options;

/* Cores available to cpu:index when `device_count` CPU devices share this host:
 * the online cores split evenly (the first ones get the remainder), at least 1.
 * 2 cores: one device -> 2; cpu:0 and cpu:1 -> 1 each. */
int gen__cpu_thread_budget(int index, int device_count);

/* Create a CPU device. Computes in f32; stores f16/bf16 (convert only).
 * GEN_ENOMEM / GEN_EINVAL (threads out of range) with a message. */
gen_status gen__cpu_backend_create(gen__backend **out, const gen__cpu_backend_options *opts);

/* ---- memory and tensors ---------------------------------------------------- */

/* Allocate an owned tensor on `be` (contents uninitialised). Message names the
 * device, dtype and shape on failure (GEN_EINVAL bad shape, GEN_EDEVICE_OOM). */
gen_status gen__tensor_alloc(gen__tensor *out, gen__backend *be, gen__dtype dtype, int ndim,
                             const int64_t *shape);
/* Same dtype and shape as `like`, on `be`. */
gen_status gen__tensor_alloc_like(gen__tensor *out, gen__backend *be, const gen__tensor *like);

/* Release an owned tensor's memory (views and empty tensors: nothing to free)
 * and reset *t to GEN__TENSOR_EMPTY. NULL accepted. */
void gen__tensor_free(gen__tensor *t);

/* Copy host data of the tensor's dtype and exactly gen__tensor_nbytes(t) bytes. */
gen_status gen__tensor_upload(gen__tensor *t, const void *host, size_t bytes);
gen_status gen__tensor_download(const gen__tensor *t, void *host, size_t bytes);

/* Copy between tensors of the same dtype and element count on one backend
 * (shapes may differ: a reshaping copy). */
gen_status gen__tensor_copy(gen__tensor *dst, const gen__tensor *src);

void gen__backend_memory(gen__backend *be, gen__backend_mem_info *out);
void gen__backend_reset_peak(gen__backend *be);
gen_status gen__backend_synchronize(gen__backend *be);

/* ---- ops ---------------------------------------------------------------------
 * The backend is the one that owns `out`. */

/* out = value everywhere. */
gen_status gen__fill(gen__tensor *out, float value);

/* Element-wise dtype conversion (exact rounding rules of tensor.h); same element
 * count, any dtypes (the only op that mixes dtypes). Same dtype = copy. */
gen_status gen__convert(gen__tensor *out, const gen__tensor *x);

/* GEMM on the last two dimensions, leading dimensions are the batch:
 *   c[i] = alpha * op(a[i]) @ op(b[i]) + beta * c[i]
 * op(X) = X^T when trans_X. With op(a[i]) of shape [M, K] and op(b[i]) of shape
 * [K, N], c is [..., M, N]. a (or b) may have a batch of 1 (broadcast to every
 * c[i]) or exactly c's batch count. a and b are 2..5-dim; beta = 0 ignores the
 * old contents of c (NaN in c does not propagate). */
gen_status gen__gemm(gen__tensor *c, const gen__tensor *a, const gen__tensor *b, bool trans_a,
                     bool trans_b, float alpha, float beta);

/* torch.nn.Linear: out[..., O] = x[..., I] @ weight[O, I]^T + bias[O].
 * bias may be NULL. x and out have the same leading dimensions. */
gen_status gen__linear(gen__tensor *out, const gen__tensor *x, const gen__tensor *weight,
                       const gen__tensor *bias);

/* torch.nn.Conv2d (dilation 1, groups 1): x [N, Ci, H, W], weight [Co, Ci, kh, kw],
 * bias [Co] or NULL, out [N, Co, Ho, Wo] with Ho = gen__conv2d_out_size(H, kh,
 * stride_h, pad_top, pad_bottom) and likewise Wo. Zero padding. */
gen_status gen__conv2d(gen__tensor *out, const gen__tensor *x, const gen__tensor *weight,
                       const gen__tensor *bias, const gen__conv2d_params *p);

/* torch.nn.GroupNorm: x [N, C, ...] (any spatial dims, may be none), C divisible
 * by groups; each (n, group) is normalised over its C/groups channels and all
 * spatial positions with the biased variance: y = (x - mean) / sqrt(var + eps)
 * * gamma[c] + beta[c]. gamma and beta [C] (both or neither: NULL = affine off).
 * fuse_silu: out = silu(y). out may alias x. */
gen_status gen__group_norm(gen__tensor *out, const gen__tensor *x, const gen__tensor *gamma,
                           const gen__tensor *beta, int groups, float eps, bool fuse_silu);

/* torch.nn.LayerNorm over the last dimension D: x [..., D], gamma/beta [D] or
 * NULL (each independently). Biased variance. out may alias x. */
gen_status gen__layer_norm(gen__tensor *out, const gen__tensor *x, const gen__tensor *gamma,
                           const gen__tensor *beta, float eps);

/* Softmax over the last dimension of scale * x. out may alias x. */
gen_status gen__softmax(gen__tensor *out, const gen__tensor *x, float scale);

/* Scaled dot-product attention in the layout diffusers' projections produce:
 * q [B, Nq, H*Dk], k [B, Nk, H*Dk], v [B, Nk, H*Dv], out [B, Nq, H*Dv], with
 * H = heads; head h uses columns [h*Dk, (h+1)*Dk) (torch's
 * view(B, N, H, D).transpose(1, 2)). Per head:
 *   out = softmax(scale * q @ k^T + mask) @ v
 * where scale is usually 1/sqrt(Dk) (the caller passes it) and mask, if
 * causal, is -inf where key index j > query index i (torch's is_causal, top-left
 * aligned; CLIP's text encoder). Memory-efficient: never materialises the
 * [H, Nq, Nk] score matrix (query blocks); working memory is O(block * Nk) per
 * thread. out must not alias q, k or v. */
gen_status gen__attention(gen__tensor *out, const gen__tensor *q, const gen__tensor *k,
                          const gen__tensor *v, int heads, float scale, bool causal);

/* Element-wise activation (gen__unary_op). out may alias x. Shapes equal. */
gen_status gen__unary(gen__tensor *out, const gen__tensor *x, gen__unary_op op);
gen_status gen__silu(gen__tensor *out, const gen__tensor *x);
gen_status gen__gelu(gen__tensor *out, const gen__tensor *x, gen__gelu_mode mode);
gen_status gen__quick_gelu(gen__tensor *out, const gen__tensor *x);

/* diffusers GEGLU after its projection: x [..., 2D] -> out [..., D] with
 * hidden = x[..., :D], gate = x[..., D:], out = hidden * gelu_erf(gate). */
gen_status gen__geglu(gen__tensor *out, const gen__tensor *x);

/* out = a (+|*) b with numpy/torch broadcasting: shapes aligned on the right,
 * each dimension equal or 1; out has the broadcast shape (and ndim =
 * max(ndim a, ndim b)). E.g. [N,C,H,W] + [1,C,1,1], [N,C,H,W] + [N,C,1,1]
 * (time embedding), [B,T,D] + [T,D] (positions). out may alias a or b when it
 * has that operand's shape. */
gen_status gen__binary(gen__tensor *out, const gen__tensor *a, const gen__tensor *b,
                       gen__binary_op op);
gen_status gen__add(gen__tensor *out, const gen__tensor *a, const gen__tensor *b);
gen_status gen__mul(gen__tensor *out, const gen__tensor *a, const gen__tensor *b);

/* out = alpha * a + beta * b, all the same shape (schedulers, guidance:
 * uncond + g * (cond - uncond)). b may be NULL (out = alpha * a, i.e. scale).
 * out may alias a or b. */
gen_status gen__axpby(gen__tensor *out, float alpha, const gen__tensor *a, float beta,
                      const gen__tensor *b);
gen_status gen__scale(gen__tensor *out, const gen__tensor *x, float alpha);

/* Nearest-neighbour upsampling by 2 (F.interpolate(scale_factor=2, mode="nearest")):
 * x [N, C, H, W] -> out [N, C, 2H, 2W], out[.., y, x] = in[.., y/2, x/2]. */
gen_status gen__upsample_nearest2x(gen__tensor *out, const gen__tensor *x);

/* torch.cat([a, b], dim): a and b equal except along dim; out has the sum
 * there. dim may be negative (from the end). UNet skips: dim = 1 on NCHW. */
gen_status gen__concat(gen__tensor *out, const gen__tensor *a, const gen__tensor *b, int dim);

/* Swap the last two dimensions: x [..., P, Q] -> out [..., Q, P]. For attention
 * blocks view NCHW as [N, C, H*W] and transpose to [N, H*W, C] (and back). */
gen_status gen__transpose(gen__tensor *out, const gen__tensor *x);

/* diffusers get_timestep_embedding: out [N, D] (D even or odd: odd pads one zero
 * column at the end), timesteps: N host floats.
 *   half = D/2, exponent[i] = -ln(max_period) * i / (half - downscale_freq_shift)
 *   emb = scale * t * exp(exponent[i]); out = [sin(emb), cos(emb)], or
 *   [cos, sin] when flip_sin_to_cos.
 * SD UNet: flip_sin_to_cos = true, downscale_freq_shift = 0, scale = 1,
 * max_period = 10000. Computed with diffusers' f32 roundings (exponent, exp,
 * t * freq, scale) so large t (999) matches torch, not a double reference. */
gen_status gen__timestep_embedding(gen__tensor *out, const float *timesteps, size_t count,
                                   bool flip_sin_to_cos, float downscale_freq_shift, float scale,
                                   float max_period);

/* torch.nn.Embedding: out [..., D] (rows = number of ids), table [V, D], ids:
 * host int32 array of gen__tensor_rows(out) entries; GEN_EINVAL naming the
 * first id outside [0, V). */
gen_status gen__embedding(gen__tensor *out, const gen__tensor *table, const int32_t *ids,
                          size_t count);

#endif
