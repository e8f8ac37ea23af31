/* Tensor descriptions, shapes and views (no device code here). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "tensor/tensor.h"

size_t gen__dtype_size(gen__dtype dtype)
{
    switch (dtype) {
    case GEN__F32: return 4;
    case GEN__F16:
    case GEN__BF16: return 2;
    default: return 0;
    }
}

const char *gen__dtype_name(gen__dtype dtype)
{
    switch (dtype) {
    case GEN__F32: return "f32";
    case GEN__F16: return "f16";
    case GEN__BF16: return "bf16";
    default: return "invalid";
    }
}

int64_t gen__tensor_numel(const gen__tensor *t)
{
    if (t->ndim <= 0)
        return 0;
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

size_t gen__tensor_nbytes(const gen__tensor *t)
{
    return (size_t)gen__tensor_numel(t) * gen__dtype_size(t->dtype);
}

int64_t gen__tensor_dims(const gen__tensor *t, int from, int to)
{
    if (from < 0)
        from += t->ndim;
    if (to < 0)
        to += t->ndim;
    int64_t n = 1;
    for (int i = from < 0 ? 0 : from; i < to && i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

int64_t gen__tensor_cols(const gen__tensor *t)
{
    return t->ndim > 0 ? t->shape[t->ndim - 1] : 0;
}

int64_t gen__tensor_rows(const gen__tensor *t)
{
    return t->ndim > 0 ? gen__tensor_dims(t, 0, t->ndim - 1) : 0;
}

bool gen__tensor_same_shape(const gen__tensor *a, const gen__tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

char *gen__tensor_str(const gen__tensor *t, char *buf, size_t buf_size)
{
    if (buf_size == 0)
        return buf;
    if (!t) {
        snprintf(buf, buf_size, "(null)");
        return buf;
    }
    size_t n = (size_t)snprintf(buf, buf_size, "%s[", gen__dtype_name(t->dtype));
    for (int i = 0; i < t->ndim && n < buf_size; i++)
        n += (size_t)snprintf(buf + n, buf_size - n, "%s%" PRId64, i ? "," : "", t->shape[i]);
    if (n < buf_size)
        snprintf(buf + n, buf_size - n, "]");
    return buf;
}

gen_status gen__tensor_describe(gen__tensor *t, gen__dtype dtype, int ndim, const int64_t *shape)
{
    gen__tensor empty = GEN__TENSOR_EMPTY;
    *t = empty;
    if (gen__dtype_size(dtype) == 0)
        return gen__error(GEN_EINVAL, "tensor: invalid dtype %d", (int)dtype);
    if (ndim < 1 || ndim > GEN__TENSOR_MAX_DIMS)
        return gen__error(GEN_EINVAL, "tensor: %d dimensions (1..%d supported)", ndim,
                          GEN__TENSOR_MAX_DIMS);
    uint64_t n = gen__dtype_size(dtype);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1)
            return gen__error(GEN_EINVAL, "tensor: dimension %d is %" PRId64 " (must be >= 1)",
                              i, shape[i]);
        if ((uint64_t)shape[i] > (UINT64_C(1) << 62) / n)
            return gen__error(GEN_EINVAL, "tensor: shape too large at dimension %d (%" PRId64 ")",
                              i, shape[i]);
        n *= (uint64_t)shape[i];
    }
    if (n > (uint64_t)SIZE_MAX / 2)
        return gen__error(GEN_EINVAL, "tensor: %" PRIu64 " bytes is too large", n);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    return GEN_OK;
}

gen_status gen__tensor_view(gen__tensor *out, const gen__tensor *src, int ndim,
                            const int64_t *shape, int64_t elem_offset)
{
    gen__tensor v;
    gen_status st = gen__tensor_describe(&v, src->dtype, ndim, shape);
    if (st != GEN_OK)
        return gen__error_prefix("view: ");
    char a[GEN__SHAPE_STR_MAX], b[GEN__SHAPE_STR_MAX];
    int64_t total = gen__tensor_numel(src);
    int64_t need = gen__tensor_numel(&v);
    if (elem_offset < 0 || elem_offset > total || need > total - elem_offset)
        return gen__error(GEN_EINVAL, "view: %s at offset %" PRId64 " reaches past the end of %s",
                          gen__tensor_str(&v, a, sizeof(a)), elem_offset,
                          gen__tensor_str(src, b, sizeof(b)));
    v.data = src->data ? (char *)src->data + (size_t)elem_offset * gen__dtype_size(src->dtype)
                       : NULL;
    v.backend = src->backend;
    v.owned = false;
    *out = v;
    return GEN_OK;
}

gen_status gen__tensor_view2(gen__tensor *out, const gen__tensor *src, int64_t d0, int64_t d1,
                             int64_t elem_offset)
{
    const int64_t s[2] = {d0, d1};
    return gen__tensor_view(out, src, 2, s, elem_offset);
}

gen_status gen__tensor_view3(gen__tensor *out, const gen__tensor *src, int64_t d0, int64_t d1,
                             int64_t d2, int64_t elem_offset)
{
    const int64_t s[3] = {d0, d1, d2};
    return gen__tensor_view(out, src, 3, s, elem_offset);
}

gen_status gen__tensor_view4(gen__tensor *out, const gen__tensor *src, int64_t d0, int64_t d1,
                             int64_t d2, int64_t d3, int64_t elem_offset)
{
    const int64_t s[4] = {d0, d1, d2, d3};
    return gen__tensor_view(out, src, 4, s, elem_offset);
}
