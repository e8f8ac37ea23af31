/* Tensors: a dtype, a shape of up to GEN__TENSOR_MAX_DIMS dimensions, and a
 * pointer into the memory of the backend (device) that owns it.
 *
 * Layout is always dense row-major ("contiguous"): the last dimension varies
 * fastest, so an image batch is [N, C, H, W] (NCHW) like torch, and a Linear
 * weight is [out_features, in_features]. There are no strides: a view is a
 * contiguous window of another tensor's memory (a reshape, or a range of the
 * outermost dimension), so every backend op can assume dense inputs.
 *
 * A gen__tensor is a small value struct. An owning tensor (owned = true) is
 * made by gen__tensor_alloc (lib/backend/backend.h: allocation goes through the
 * owning device) and released with gen__tensor_free; a view (owned = false)
 * borrows memory and must not outlive the tensor it views. A zeroed struct
 * (GEN__TENSOR_EMPTY) is a valid "no tensor" that gen__tensor_free accepts.
 *
 * This module knows nothing about devices beyond the pointer: allocation,
 * copies and ops are in lib/backend. The dtype conversions here are host-side
 * and exact (used by the CPU backend, the model loader and the tests). */
#ifndef GEN_TENSOR_TENSOR_H
#define GEN_TENSOR_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gen/common.h>

#define GEN__TENSOR_MAX_DIMS 5

/* Element types. Values are stable (they appear in logs and tests). */
typedef enum gen__dtype {
    GEN__F32 = 0,
    GEN__F16 = 1,   /* IEEE 754 binary16 */
    GEN__BF16 = 2,  /* bfloat16: the top 16 bits of an f32 */
    GEN__DTYPE_COUNT
} gen__dtype;

struct gen__backend; /* lib/backend/backend.h */

typedef struct gen__tensor {
    gen__dtype dtype;
    int ndim;                              /* 1..GEN__TENSOR_MAX_DIMS; 0 = empty tensor */
    int64_t shape[GEN__TENSOR_MAX_DIMS];   /* shape[0] outermost; unused entries are 1 */
    void *data;                            /* device memory of `backend` (host memory for CPU) */
    struct gen__backend *backend;          /* the owning device */
    bool owned;                            /* true: gen__tensor_free releases `data` */
} gen__tensor;

#define GEN__TENSOR_EMPTY {GEN__F32, 0, {1, 1, 1, 1, 1}, NULL, NULL, false}

/* Bytes per element (4 or 2); 0 for an invalid dtype. */
size_t gen__dtype_size(gen__dtype dtype);

/* "f32", "f16", "bf16"; "invalid" otherwise. */
const char *gen__dtype_name(gen__dtype dtype);

/* Product of the dimensions (0 for an empty tensor). */
int64_t gen__tensor_numel(const gen__tensor *t);
size_t gen__tensor_nbytes(const gen__tensor *t);

/* Product of the dimensions [from, to) (1 when empty); negative indices count
 * from the end like Python (-1 is the last dimension). */
int64_t gen__tensor_dims(const gen__tensor *t, int from, int to);

/* Last dimension, and everything before it flattened ("rows"). */
int64_t gen__tensor_cols(const gen__tensor *t);
int64_t gen__tensor_rows(const gen__tensor *t);

/* Whether two tensors have the same ndim and shape (dtype not compared). */
bool gen__tensor_same_shape(const gen__tensor *a, const gen__tensor *b);

/* Writes e.g. "f32[2,320,64,64]" into buf (always NUL-terminated, cut if too
 * small) and returns buf, so it can be used inside an error message. Use
 * GEN__SHAPE_STR_MAX for the buffer size. */
#define GEN__SHAPE_STR_MAX 96
char *gen__tensor_str(const gen__tensor *t, char *buf, size_t buf_size);

/* Fill *t with a description (no memory): dtype, shape. GEN_EINVAL (naming the
 * bad dimension) for ndim outside 1..MAX, a dimension < 1, or an element count
 * whose byte size overflows. `data`, `backend` are left NULL, owned false. */
gen_status gen__tensor_describe(gen__tensor *t, gen__dtype dtype, int ndim, const int64_t *shape);

/* A view of `src` with a new shape and the same dtype, starting `elem_offset`
 * elements into src's data. GEN_EINVAL (naming both shapes) if the view would
 * reach past the end of src. The view is never owned. Typical uses: reshape
 * [N,C,H,W] -> [N,C,H*W]; pick batch entry i with elem_offset = i*C*H*W. */
gen_status gen__tensor_view(gen__tensor *out, const gen__tensor *src, int ndim,
                            const int64_t *shape, int64_t elem_offset);

/* Shorthand for the common 2..4-dim views (same rules as gen__tensor_view). */
gen_status gen__tensor_view2(gen__tensor *out, const gen__tensor *src, int64_t d0, int64_t d1,
                             int64_t elem_offset);
gen_status gen__tensor_view3(gen__tensor *out, const gen__tensor *src, int64_t d0, int64_t d1,
                             int64_t d2, int64_t elem_offset);
gen_status gen__tensor_view4(gen__tensor *out, const gen__tensor *src, int64_t d0, int64_t d1,
                             int64_t d2, int64_t d3, int64_t elem_offset);

/* ---- exact host conversions --------------------------------------------------
 * f16/bf16 -> f32 is exact. f32 -> f16/bf16 rounds to nearest, ties to even;
 * values beyond the f16 range become +-inf, tiny ones become (signed) zero or
 * subnormals; inf stays inf and NaN stays NaN (quiet, sign and the top payload
 * bits kept). Pure integer code: independent of the FPU rounding mode. */
float gen__f16_to_f32(uint16_t h);
uint16_t gen__f32_to_f16(float f);
float gen__bf16_to_f32(uint16_t b);
uint16_t gen__f32_to_bf16(float f);

/* Convert `count` elements between host buffers of the given dtypes (same dtype
 * = memcpy). The buffers must not overlap. */
void gen__convert_host(void *dst, gen__dtype dst_dtype, const void *src, gen__dtype src_dtype,
                       size_t count);

#endif
