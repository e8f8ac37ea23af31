/* Backend-independent half of every op: argument checks with messages that
 * name the op and the shapes, then a call through the backend's table. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "backend/backend.h"
#include "core/alloc.h"
#include "core/error.h"

#define S(t, buf) gen__tensor_str((t), (buf), sizeof(buf))

gen__conv2d_params gen__conv2d_simple(int stride, int pad)
{
    gen__conv2d_params p = {stride, stride, pad, pad, pad, pad};
    return p;
}

int64_t gen__conv2d_out_size(int64_t in, int k, int stride, int pad0, int pad1)
{
    if (stride < 1)
        return 0;
    int64_t span = in + pad0 + pad1 - k;
    if (span < 0)
        return 0;
    return span / stride + 1;
}

void gen__backend_destroy(gen__backend *be)
{
    if (be)
        be->ops->destroy(be);
}

/* ---- common checks ---------------------------------------------------------- */

static gen_status check_tensor(const char *op, const char *what, const gen__tensor *t,
                               gen__backend *be)
{
    if (!t || t->ndim < 1 || !t->data)
        return gen__error(GEN_EINVAL, "%s: %s is missing or empty", op, what);
    if (t->backend != be) {
        char a[GEN__SHAPE_STR_MAX];
        return gen__error(GEN_EINVAL, "%s: %s %s lives on %s, not on %s", op, what, S(t, a),
                          t->backend ? t->backend->name : "no device", be ? be->name : "?");
    }
    return GEN_OK;
}

static gen_status check_compute(const char *op, const gen__tensor *t, gen__backend *be)
{
    if (!(be->compute_dtypes & (1u << t->dtype))) {
        char a[GEN__SHAPE_STR_MAX];
        return gen__error(GEN_EUNSUPPORTED, "%s: %s cannot compute in %s (tensor %s)", op,
                          be->name, gen__dtype_name(t->dtype), S(t, a));
    }
    return GEN_OK;
}

static gen_status check_same_dtype(const char *op, const char *what, const gen__tensor *t,
                                   const gen__tensor *ref)
{
    if (t->dtype != ref->dtype) {
        char a[GEN__SHAPE_STR_MAX], b[GEN__SHAPE_STR_MAX];
        return gen__error(GEN_EINVAL, "%s: %s %s has another dtype than %s", op, what, S(t, a),
                          S(ref, b));
    }
    return GEN_OK;
}

static gen_status shape_error(const char *op, const char *why, const gen__tensor *x,
                              const gen__tensor *y)
{
    char a[GEN__SHAPE_STR_MAX], b[GEN__SHAPE_STR_MAX];
    if (y)
        return gen__error(GEN_EINVAL, "%s: %s (%s, %s)", op, why, S(x, a), S(y, b));
    return gen__error(GEN_EINVAL, "%s: %s (%s)", op, why, S(x, a));
}

/* out and each input: on out's backend, same dtype as out, dtype computable. */
static gen_status check_op(const char *op, gen__tensor *out, const gen__tensor *const *in,
                           const char *const *names, int n)
{
    if (!out || !out->backend)
        return gen__error(GEN_EINVAL, "%s: output tensor is missing or has no device", op);
    gen__backend *be = out->backend;
    gen_status st = check_tensor(op, "output", out, be);
    for (int i = 0; st == GEN_OK && i < n; i++) {
        if (!in[i])
            continue; /* optional input: callers check required ones */
        st = check_tensor(op, names[i], in[i], be);
        if (st == GEN_OK)
            st = check_same_dtype(op, names[i], in[i], out);
    }
    if (st == GEN_OK)
        st = check_compute(op, out, be);
    return st;
}

/* ---- memory and tensors ----------------------------------------------------- */

gen_status gen__tensor_alloc(gen__tensor *out, gen__backend *be, gen__dtype dtype, int ndim,
                             const int64_t *shape)
{
    gen__tensor t;
    if (!be) {
        gen__tensor empty = GEN__TENSOR_EMPTY;
        *out = empty;
        return gen__error(GEN_EINVAL, "tensor alloc: no device given");
    }
    gen_status st = gen__tensor_describe(&t, dtype, ndim, shape);
    if (st != GEN_OK) {
        gen__tensor empty = GEN__TENSOR_EMPTY;
        *out = empty;
        return gen__error_prefix("%s: ", be->name);
    }
    void *p = NULL;
    st = be->ops->alloc(be, gen__tensor_nbytes(&t), &p);
    if (st != GEN_OK) {
        gen__tensor empty = GEN__TENSOR_EMPTY;
        *out = empty;
        char a[GEN__SHAPE_STR_MAX];
        return gen__error_prefix("tensor %s: ", S(&t, a));
    }
    t.data = p;
    t.backend = be;
    t.owned = true;
    *out = t;
    return GEN_OK;
}

gen_status gen__tensor_alloc_like(gen__tensor *out, gen__backend *be, const gen__tensor *like)
{
    return gen__tensor_alloc(out, be, like->dtype, like->ndim, like->shape);
}

void gen__tensor_free(gen__tensor *t)
{
    if (!t)
        return;
    if (t->owned && t->data && t->backend)
        t->backend->ops->free(t->backend, t->data);
    gen__tensor empty = GEN__TENSOR_EMPTY;
    *t = empty;
}

gen_status gen__tensor_upload(gen__tensor *t, const void *host, size_t bytes)
{
    gen_status st = check_tensor("upload", "tensor", t, t ? t->backend : NULL);
    if (st != GEN_OK)
        return st;
    if (bytes != gen__tensor_nbytes(t)) {
        char a[GEN__SHAPE_STR_MAX];
        return gen__error(GEN_EINVAL, "upload: %zu bytes for tensor %s of %zu bytes", bytes,
                          S(t, a), gen__tensor_nbytes(t));
    }
    return t->backend->ops->upload(t->backend, t->data, host, bytes);
}

gen_status gen__tensor_download(const gen__tensor *t, void *host, size_t bytes)
{
    gen_status st = check_tensor("download", "tensor", t, t ? t->backend : NULL);
    if (st != GEN_OK)
        return st;
    if (bytes != gen__tensor_nbytes(t)) {
        char a[GEN__SHAPE_STR_MAX];
        return gen__error(GEN_EINVAL, "download: %zu bytes for tensor %s of %zu bytes", bytes,
                          S(t, a), gen__tensor_nbytes(t));
    }
    return t->backend->ops->download(t->backend, host, t->data, bytes);
}

gen_status gen__tensor_copy(gen__tensor *dst, const gen__tensor *src)
{
    const gen__tensor *in[1] = {src};
    const char *names[1] = {"source"};
    if (!dst || !dst->backend)
        return gen__error(GEN_EINVAL, "copy: destination is missing or has no device");
    gen_status st = check_tensor("copy", "destination", dst, dst->backend);
    if (st == GEN_OK)
        st = check_tensor("copy", names[0], in[0], dst->backend);
    if (st == GEN_OK)
        st = check_same_dtype("copy", "source", src, dst);
    if (st != GEN_OK)
        return st;
    if (gen__tensor_numel(src) != gen__tensor_numel(dst))
        return shape_error("copy", "element counts differ", src, dst);
    if (src->data == dst->data)
        return GEN_OK;
    return dst->backend->ops->copy(dst->backend, dst->data, src->data, gen__tensor_nbytes(dst));
}

void gen__backend_memory(gen__backend *be, gen__backend_mem_info *out)
{
    be->ops->mem_info(be, out);
}

void gen__backend_reset_peak(gen__backend *be)
{
    be->ops->reset_peak(be);
}

gen_status gen__backend_synchronize(gen__backend *be)
{
    return be->ops->synchronize(be);
}

/* ---- ops ---------------------------------------------------------------------- */

gen_status gen__fill(gen__tensor *out, float value)
{
    gen_status st = check_op("fill", out, NULL, NULL, 0);
    if (st != GEN_OK)
        return st;
    return out->backend->ops->fill(out->backend, out, value);
}

gen_status gen__convert(gen__tensor *out, const gen__tensor *x)
{
    if (!out || !out->backend)
        return gen__error(GEN_EINVAL, "convert: output tensor is missing or has no device");
    gen_status st = check_tensor("convert", "output", out, out->backend);
    if (st == GEN_OK)
        st = check_tensor("convert", "input", x, out->backend);
    if (st != GEN_OK)
        return st;
    if (gen__tensor_numel(out) != gen__tensor_numel(x))
        return shape_error("convert", "element counts differ", x, out);
    return out->backend->ops->convert(out->backend, out, x);
}

gen_status gen__gemm(gen__tensor *c, const gen__tensor *a, const gen__tensor *b, bool trans_a,
                     bool trans_b, float alpha, float beta)
{
    const gen__tensor *in[2] = {a, b};
    const char *names[2] = {"a", "b"};
    if (!a || !b)
        return gen__error(GEN_EINVAL, "gemm: missing operand");
    gen_status st = check_op("gemm", c, in, names, 2);
    if (st != GEN_OK)
        return st;
    if (a->ndim < 2 || b->ndim < 2 || c->ndim < 2)
        return shape_error("gemm", "operands need at least 2 dimensions", a, b);
    int64_t m = trans_a ? a->shape[a->ndim - 1] : a->shape[a->ndim - 2];
    int64_t ka = trans_a ? a->shape[a->ndim - 2] : a->shape[a->ndim - 1];
    int64_t kb = trans_b ? b->shape[b->ndim - 1] : b->shape[b->ndim - 2];
    int64_t n = trans_b ? b->shape[b->ndim - 2] : b->shape[b->ndim - 1];
    if (ka != kb)
        return shape_error("gemm", "inner dimensions differ", a, b);
    if (c->shape[c->ndim - 2] != m || c->shape[c->ndim - 1] != n) {
        char x[GEN__SHAPE_STR_MAX];
        return gen__error(GEN_EINVAL,
                          "gemm: output %s should end in [%" PRId64 ",%" PRId64 "] for a %s%s, b %s%s",
                          S(c, x), m, n, gen__tensor_str(a, (char[GEN__SHAPE_STR_MAX]){0}, GEN__SHAPE_STR_MAX),
                          trans_a ? "^T" : "", gen__tensor_str(b, (char[GEN__SHAPE_STR_MAX]){0}, GEN__SHAPE_STR_MAX),
                          trans_b ? "^T" : "");
    }
    int64_t batch = gen__tensor_dims(c, 0, -2);
    int64_t ba = gen__tensor_dims(a, 0, -2), bb = gen__tensor_dims(b, 0, -2);
    if ((ba != 1 && ba != batch) || (bb != 1 && bb != batch))
        return shape_error("gemm", "batch sizes of a and b must be 1 or the output's", a, b);
    return c->backend->ops->gemm(c->backend, c, a, b, trans_a, trans_b, alpha, beta);
}

gen_status gen__linear(gen__tensor *out, const gen__tensor *x, const gen__tensor *weight,
                       const gen__tensor *bias)
{
    const gen__tensor *in[3] = {x, weight, bias};
    const char *names[3] = {"input", "weight", "bias"};
    if (!x || !weight)
        return gen__error(GEN_EINVAL, "linear: missing input or weight");
    gen_status st = check_op("linear", out, in, names, 3);
    if (st != GEN_OK)
        return st;
    if (weight->ndim != 2)
        return shape_error("linear", "weight must be [out_features, in_features]", weight, NULL);
    if (gen__tensor_cols(x) != weight->shape[1])
        return shape_error("linear", "input features differ from weight's in_features", x, weight);
    if (gen__tensor_cols(out) != weight->shape[0] || gen__tensor_rows(out) != gen__tensor_rows(x) ||
        out->ndim != x->ndim)
        return shape_error("linear", "output shape should be the input's with out_features last",
                           out, weight);
    if (bias && (bias->ndim != 1 || bias->shape[0] != weight->shape[0]))
        return shape_error("linear", "bias must be [out_features]", bias, weight);
    return out->backend->ops->linear(out->backend, out, x, weight, bias);
}

gen_status gen__conv2d(gen__tensor *out, const gen__tensor *x, const gen__tensor *weight,
                       const gen__tensor *bias, const gen__conv2d_params *p)
{
    const gen__tensor *in[3] = {x, weight, bias};
    const char *names[3] = {"input", "weight", "bias"};
    if (!x || !weight || !p)
        return gen__error(GEN_EINVAL, "conv2d: missing input, weight or parameters");
    gen_status st = check_op("conv2d", out, in, names, 3);
    if (st != GEN_OK)
        return st;
    if (x->ndim != 4 || weight->ndim != 4 || out->ndim != 4)
        return shape_error("conv2d", "input, weight and output must be 4-dimensional", x, weight);
    if (p->stride_h < 1 || p->stride_w < 1 || p->pad_top < 0 || p->pad_bottom < 0 ||
        p->pad_left < 0 || p->pad_right < 0)
        return gen__error(GEN_EINVAL, "conv2d: invalid stride %dx%d or padding %d,%d,%d,%d",
                          p->stride_h, p->stride_w, p->pad_top, p->pad_bottom, p->pad_left,
                          p->pad_right);
    if (weight->shape[1] != x->shape[1])
        return shape_error("conv2d", "weight's input channels differ from the input's", weight, x);
    int64_t ho = gen__conv2d_out_size(x->shape[2], (int)weight->shape[2], p->stride_h, p->pad_top,
                                      p->pad_bottom);
    int64_t wo = gen__conv2d_out_size(x->shape[3], (int)weight->shape[3], p->stride_w, p->pad_left,
                                      p->pad_right);
    if (ho < 1 || wo < 1)
        return shape_error("conv2d", "kernel larger than the padded input", x, weight);
    if (out->shape[0] != x->shape[0] || out->shape[1] != weight->shape[0] || out->shape[2] != ho ||
        out->shape[3] != wo) {
        char a[GEN__SHAPE_STR_MAX], b[GEN__SHAPE_STR_MAX], c[GEN__SHAPE_STR_MAX];
        return gen__error(GEN_EINVAL,
                          "conv2d: output %s should be [%" PRId64 ",%" PRId64 ",%" PRId64
                          ",%" PRId64 "] for input %s and weight %s",
                          S(out, a), x->shape[0], weight->shape[0], ho, wo, S(x, b), S(weight, c));
    }
    if (bias && (bias->ndim != 1 || bias->shape[0] != weight->shape[0]))
        return shape_error("conv2d", "bias must be [out_channels]", bias, weight);
    return out->backend->ops->conv2d(out->backend, out, x, weight, bias, p);
}

static gen_status check_affine(const char *op, const gen__tensor *p, int64_t n, const char *what)
{
    if (p && (p->ndim != 1 || p->shape[0] != n)) {
        char a[GEN__SHAPE_STR_MAX];
        return gen__error(GEN_EINVAL, "%s: %s %s should be [%" PRId64 "]", op, what, S(p, a), n);
    }
    return GEN_OK;
}

gen_status gen__group_norm(gen__tensor *out, const gen__tensor *x, const gen__tensor *gamma,
                           const gen__tensor *beta, int groups, float eps, bool fuse_silu)
{
    const gen__tensor *in[3] = {x, gamma, beta};
    const char *names[3] = {"input", "gamma", "beta"};
    if (!x)
        return gen__error(GEN_EINVAL, "group_norm: missing input");
    gen_status st = check_op("group_norm", out, in, names, 3);
    if (st != GEN_OK)
        return st;
    if (x->ndim < 2 || !gen__tensor_same_shape(x, out))
        return shape_error("group_norm", "input must be [N,C,...] and the output the same shape", x,
                           out);
    if (groups < 1 || x->shape[1] % groups != 0)
        return gen__error(GEN_EINVAL, "group_norm: %" PRId64 " channels not divisible into %d groups",
                          x->shape[1], groups);
    if ((gamma == NULL) != (beta == NULL))
        return gen__error(GEN_EINVAL, "group_norm: gamma and beta must be both given or both NULL");
    st = check_affine("group_norm", gamma, x->shape[1], "gamma");
    if (st == GEN_OK)
        st = check_affine("group_norm", beta, x->shape[1], "beta");
    if (st != GEN_OK)
        return st;
    return out->backend->ops->group_norm(out->backend, out, x, gamma, beta, groups, eps, fuse_silu);
}

gen_status gen__layer_norm(gen__tensor *out, const gen__tensor *x, const gen__tensor *gamma,
                           const gen__tensor *beta, float eps)
{
    const gen__tensor *in[3] = {x, gamma, beta};
    const char *names[3] = {"input", "gamma", "beta"};
    if (!x)
        return gen__error(GEN_EINVAL, "layer_norm: missing input");
    gen_status st = check_op("layer_norm", out, in, names, 3);
    if (st != GEN_OK)
        return st;
    if (!gen__tensor_same_shape(x, out))
        return shape_error("layer_norm", "output must have the input's shape", x, out);
    st = check_affine("layer_norm", gamma, gen__tensor_cols(x), "gamma");
    if (st == GEN_OK)
        st = check_affine("layer_norm", beta, gen__tensor_cols(x), "beta");
    if (st != GEN_OK)
        return st;
    return out->backend->ops->layer_norm(out->backend, out, x, gamma, beta, eps);
}

gen_status gen__softmax(gen__tensor *out, const gen__tensor *x, float scale)
{
    const gen__tensor *in[1] = {x};
    const char *names[1] = {"input"};
    if (!x)
        return gen__error(GEN_EINVAL, "softmax: missing input");
    gen_status st = check_op("softmax", out, in, names, 1);
    if (st != GEN_OK)
        return st;
    if (!gen__tensor_same_shape(x, out))
        return shape_error("softmax", "output must have the input's shape", x, out);
    return out->backend->ops->softmax(out->backend, out, x, scale);
}

gen_status gen__attention(gen__tensor *out, const gen__tensor *q, const gen__tensor *k,
                          const gen__tensor *v, int heads, float scale, bool causal)
{
    const gen__tensor *in[3] = {q, k, v};
    const char *names[3] = {"q", "k", "v"};
    if (!q || !k || !v)
        return gen__error(GEN_EINVAL, "attention: missing q, k or v");
    gen_status st = check_op("attention", out, in, names, 3);
    if (st != GEN_OK)
        return st;
    if (q->ndim != 3 || k->ndim != 3 || v->ndim != 3 || out->ndim != 3)
        return shape_error("attention", "q, k, v and output must be [B, N, heads*dim]", q, k);
    if (heads < 1 || q->shape[2] % heads || v->shape[2] % heads)
        return gen__error(GEN_EINVAL, "attention: widths %" PRId64 " / %" PRId64
                          " not divisible by %d heads", q->shape[2], v->shape[2], heads);
    if (k->shape[0] != q->shape[0] || v->shape[0] != q->shape[0] || k->shape[2] != q->shape[2] ||
        v->shape[1] != k->shape[1])
        return gen__error(GEN_EINVAL, "attention: q %s, k %s, v %s do not match",
                          gen__tensor_str(q, (char[GEN__SHAPE_STR_MAX]){0}, GEN__SHAPE_STR_MAX),
                          gen__tensor_str(k, (char[GEN__SHAPE_STR_MAX]){0}, GEN__SHAPE_STR_MAX),
                          gen__tensor_str(v, (char[GEN__SHAPE_STR_MAX]){0}, GEN__SHAPE_STR_MAX));
    if (out->shape[0] != q->shape[0] || out->shape[1] != q->shape[1] || out->shape[2] != v->shape[2])
        return shape_error("attention", "output must be [B, Nq, heads*dim_v]", out, v);
    if (out->data == q->data || out->data == k->data || out->data == v->data)
        return gen__error(GEN_EINVAL, "attention: output must not alias q, k or v");
    return out->backend->ops->attention(out->backend, out, q, k, v, heads, scale, causal);
}

gen_status gen__unary(gen__tensor *out, const gen__tensor *x, gen__unary_op op)
{
    const gen__tensor *in[1] = {x};
    const char *names[1] = {"input"};
    if (!x)
        return gen__error(GEN_EINVAL, "unary: missing input");
    if ((int)op < 0 || op >= GEN__UNARY_COUNT)
        return gen__error(GEN_EINVAL, "unary: unknown op %d", (int)op);
    gen_status st = check_op("unary", out, in, names, 1);
    if (st != GEN_OK)
        return st;
    if (!gen__tensor_same_shape(x, out))
        return shape_error("unary", "output must have the input's shape", x, out);
    return out->backend->ops->unary(out->backend, out, x, op);
}

gen_status gen__silu(gen__tensor *out, const gen__tensor *x)
{
    return gen__unary(out, x, GEN__UNARY_SILU);
}

gen_status gen__gelu(gen__tensor *out, const gen__tensor *x, gen__gelu_mode mode)
{
    return gen__unary(out, x, mode == GEN__GELU_TANH ? GEN__UNARY_GELU_TANH : GEN__UNARY_GELU);
}

gen_status gen__quick_gelu(gen__tensor *out, const gen__tensor *x)
{
    return gen__unary(out, x, GEN__UNARY_QUICK_GELU);
}

gen_status gen__geglu(gen__tensor *out, const gen__tensor *x)
{
    const gen__tensor *in[1] = {x};
    const char *names[1] = {"input"};
    if (!x)
        return gen__error(GEN_EINVAL, "geglu: missing input");
    gen_status st = check_op("geglu", out, in, names, 1);
    if (st != GEN_OK)
        return st;
    if (out->ndim != x->ndim || gen__tensor_rows(out) != gen__tensor_rows(x) ||
        gen__tensor_cols(x) != 2 * gen__tensor_cols(out))
        return shape_error("geglu", "input must be [..., 2D] and output [..., D]", x, out);
    return out->backend->ops->geglu(out->backend, out, x);
}

gen_status gen__binary(gen__tensor *out, const gen__tensor *a, const gen__tensor *b,
                       gen__binary_op op)
{
    const gen__tensor *in[2] = {a, b};
    const char *names[2] = {"a", "b"};
    if (!a || !b)
        return gen__error(GEN_EINVAL, "binary: missing operand");
    if ((int)op < 0 || op >= GEN__BINARY_COUNT)
        return gen__error(GEN_EINVAL, "binary: unknown op %d", (int)op);
    const char *name = op == GEN__BINARY_ADD ? "add" : "mul";
    gen_status st = check_op(name, out, in, names, 2);
    if (st != GEN_OK)
        return st;
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    if (out->ndim != nd)
        return shape_error(name, "output must have the broadcast shape", a, b);
    for (int i = 0; i < nd; i++) {
        int ia = a->ndim - nd + i, ib = b->ndim - nd + i;
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return shape_error(name, "shapes cannot be broadcast together", a, b);
        if (out->shape[i] != (da > db ? da : db))
            return shape_error(name, "output must have the broadcast shape", a, b);
    }
    /* aliasing is only safe when the aliased operand is not broadcast */
    if ((out->data == a->data && !gen__tensor_same_shape(out, a)) ||
        (out->data == b->data && !gen__tensor_same_shape(out, b)))
        return shape_error(name, "output may alias only an operand of its own shape", a, b);
    return out->backend->ops->binary(out->backend, out, a, b, op);
}

gen_status gen__add(gen__tensor *out, const gen__tensor *a, const gen__tensor *b)
{
    return gen__binary(out, a, b, GEN__BINARY_ADD);
}

gen_status gen__mul(gen__tensor *out, const gen__tensor *a, const gen__tensor *b)
{
    return gen__binary(out, a, b, GEN__BINARY_MUL);
}

gen_status gen__axpby(gen__tensor *out, float alpha, const gen__tensor *a, float beta,
                      const gen__tensor *b)
{
    const gen__tensor *in[2] = {a, b};
    const char *names[2] = {"a", "b"};
    if (!a)
        return gen__error(GEN_EINVAL, "axpby: missing operand a");
    gen_status st = check_op("axpby", out, in, names, 2);
    if (st != GEN_OK)
        return st;
    if (!gen__tensor_same_shape(out, a) || (b && !gen__tensor_same_shape(out, b)))
        return shape_error("axpby", "operands and output must have one shape", a, b ? b : out);
    return out->backend->ops->axpby(out->backend, out, alpha, a, beta, b);
}

gen_status gen__scale(gen__tensor *out, const gen__tensor *x, float alpha)
{
    return gen__axpby(out, alpha, x, 0.0f, NULL);
}

gen_status gen__upsample_nearest2x(gen__tensor *out, const gen__tensor *x)
{
    const gen__tensor *in[1] = {x};
    const char *names[1] = {"input"};
    if (!x)
        return gen__error(GEN_EINVAL, "upsample_nearest2x: missing input");
    gen_status st = check_op("upsample_nearest2x", out, in, names, 1);
    if (st != GEN_OK)
        return st;
    if (x->ndim != 4 || out->ndim != 4 || out->shape[0] != x->shape[0] ||
        out->shape[1] != x->shape[1] || out->shape[2] != 2 * x->shape[2] ||
        out->shape[3] != 2 * x->shape[3])
        return shape_error("upsample_nearest2x", "input [N,C,H,W] needs output [N,C,2H,2W]", x,
                           out);
    return out->backend->ops->upsample_nearest2x(out->backend, out, x);
}

gen_status gen__concat(gen__tensor *out, const gen__tensor *a, const gen__tensor *b, int dim)
{
    const gen__tensor *in[2] = {a, b};
    const char *names[2] = {"a", "b"};
    if (!a || !b)
        return gen__error(GEN_EINVAL, "concat: missing operand");
    gen_status st = check_op("concat", out, in, names, 2);
    if (st != GEN_OK)
        return st;
    int d = dim < 0 ? dim + out->ndim : dim;
    if (d < 0 || d >= out->ndim)
        return gen__error(GEN_EINVAL, "concat: dimension %d out of range for %d dimensions", dim,
                          out->ndim);
    if (a->ndim != out->ndim || b->ndim != out->ndim)
        return shape_error("concat", "operands need the output's number of dimensions", a, b);
    for (int i = 0; i < out->ndim; i++) {
        bool ok = i == d ? a->shape[i] + b->shape[i] == out->shape[i]
                         : a->shape[i] == out->shape[i] && b->shape[i] == out->shape[i];
        if (!ok)
            return shape_error("concat", "shapes differ outside the concatenated dimension", a, b);
    }
    return out->backend->ops->concat(out->backend, out, a, b, d);
}

gen_status gen__transpose(gen__tensor *out, const gen__tensor *x)
{
    const gen__tensor *in[1] = {x};
    const char *names[1] = {"input"};
    if (!x)
        return gen__error(GEN_EINVAL, "transpose: missing input");
    gen_status st = check_op("transpose", out, in, names, 1);
    if (st != GEN_OK)
        return st;
    bool ok = x->ndim >= 2 && out->ndim == x->ndim;
    for (int i = 0; ok && i < x->ndim - 2; i++)
        ok = out->shape[i] == x->shape[i];
    if (ok)
        ok = out->shape[x->ndim - 2] == x->shape[x->ndim - 1] &&
             out->shape[x->ndim - 1] == x->shape[x->ndim - 2];
    if (!ok)
        return shape_error("transpose", "input [..., P, Q] needs output [..., Q, P]", x, out);
    if (out->data == x->data)
        return gen__error(GEN_EINVAL, "transpose: output must not alias the input");
    return out->backend->ops->transpose(out->backend, out, x);
}

gen_status gen__timestep_embedding(gen__tensor *out, const float *timesteps, size_t count,
                                   bool flip_sin_to_cos, float downscale_freq_shift, float scale,
                                   float max_period)
{
    gen_status st = check_op("timestep_embedding", out, NULL, NULL, 0);
    if (st != GEN_OK)
        return st;
    if (out->ndim != 2 || (size_t)out->shape[0] != count || !timesteps)
        return gen__error(GEN_EINVAL,
                          "timestep_embedding: output %s should be [%zu, dim] for %zu timesteps",
                          gen__tensor_str(out, (char[GEN__SHAPE_STR_MAX]){0}, GEN__SHAPE_STR_MAX),
                          count, count);
    int64_t half = out->shape[1] / 2;
    if (half < 1 || (double)half - downscale_freq_shift == 0.0 || !(max_period > 0.0f))
        return gen__error(GEN_EINVAL,
                          "timestep_embedding: dim %" PRId64 " with downscale_freq_shift %g and "
                          "max_period %g divides by zero",
                          out->shape[1], (double)downscale_freq_shift, (double)max_period);
    return out->backend->ops->timestep_embedding(out->backend, out, timesteps, flip_sin_to_cos,
                                                 downscale_freq_shift, scale, max_period);
}

gen_status gen__embedding(gen__tensor *out, const gen__tensor *table, const int32_t *ids,
                          size_t count)
{
    const gen__tensor *in[1] = {table};
    const char *names[1] = {"table"};
    if (!table || !ids)
        return gen__error(GEN_EINVAL, "embedding: missing table or ids");
    gen_status st = check_op("embedding", out, in, names, 1);
    if (st != GEN_OK)
        return st;
    if (table->ndim != 2 || gen__tensor_cols(out) != table->shape[1] ||
        (size_t)gen__tensor_rows(out) != count)
        return gen__error(GEN_EINVAL, "embedding: output %s should be [..., %" PRId64
                          "] with %zu rows for table %s",
                          gen__tensor_str(out, (char[GEN__SHAPE_STR_MAX]){0}, GEN__SHAPE_STR_MAX),
                          table->ndim == 2 ? table->shape[1] : 0, count,
                          gen__tensor_str(table, (char[GEN__SHAPE_STR_MAX]){0}, GEN__SHAPE_STR_MAX));
    for (size_t i = 0; i < count; i++)
        if (ids[i] < 0 || ids[i] >= table->shape[0])
            return gen__error(GEN_EINVAL, "embedding: id %d at position %zu outside [0, %" PRId64 ")",
                              (int)ids[i], i, table->shape[0]);
    return out->backend->ops->embedding(out->backend, out, table, ids);
}
