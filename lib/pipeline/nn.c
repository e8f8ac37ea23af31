/* Shared network blocks (see nn.h). */
#include "pipeline/nn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

#define TRY(expr)                 \
    do {                          \
        st = (expr);              \
        if (st != GEN_OK)         \
            goto done;            \
    } while (0)

gen_status gen__nn_name(char *buf, const char *prefix, const char *suffix)
{
    int n = snprintf(buf, GEN__NN_NAME_MAX, "%s%s%s", prefix, *prefix ? "." : "", suffix);
    if (n < 0 || n >= GEN__NN_NAME_MAX)
        return gen__error(GEN_EINVAL, "weight name '%s.%s' is too long", prefix, suffix);
    return GEN_OK;
}

static gen_status bind_bias(const gen__device_weights *w, const char *prefix, int64_t n,
                            gen__tensor *b)
{
    char name[GEN__NN_NAME_MAX];
    gen_status st = gen__nn_name(name, prefix, "bias");
    if (st != GEN_OK)
        return st;
    return gen__weights_get(w, name, 1, (int64_t[]){n}, b);
}

gen_status gen__nn_bind_linear(const gen__device_weights *w, const char *prefix, int64_t out,
                               int64_t in, bool bias, gen__nn_linear *l)
{
    gen__tensor empty = GEN__TENSOR_EMPTY;
    l->w = l->b = empty;
    char name[GEN__NN_NAME_MAX];
    gen_status st = gen__nn_name(name, prefix, "weight");
    if (st != GEN_OK)
        return st;
    bool found = false;
    gen__tensor w4;
    /* LDM checkpoints store the VAE attention projections as 1x1 convs. */
    if (gen__weights_get_opt(w, name, 4, (int64_t[]){out, in, 1, 1}, &w4, &found) == GEN_OK &&
        found)
        st = gen__tensor_view2(&l->w, &w4, out, in, 0);
    else
        st = gen__weights_get(w, name, 2, (int64_t[]){out, in}, &l->w);
    if (st == GEN_OK && bias)
        st = bind_bias(w, prefix, out, &l->b);
    return st;
}

gen_status gen__nn_bind_conv(const gen__device_weights *w, const char *prefix, int64_t out,
                             int64_t in, int k, int stride, int pad, gen__nn_conv *c)
{
    gen__tensor empty = GEN__TENSOR_EMPTY;
    c->w = c->b = empty;
    c->p = gen__conv2d_simple(stride, pad);
    char name[GEN__NN_NAME_MAX];
    gen_status st = gen__nn_name(name, prefix, "weight");
    if (st == GEN_OK)
        st = gen__weights_get(w, name, 4, (int64_t[]){out, in, k, k}, &c->w);
    if (st == GEN_OK)
        st = bind_bias(w, prefix, out, &c->b);
    return st;
}

gen_status gen__nn_bind_norm(const gen__device_weights *w, const char *prefix, int64_t channels,
                             int groups, float eps, gen__nn_norm *n)
{
    n->groups = groups;
    n->eps = eps;
    char name[GEN__NN_NAME_MAX];
    gen_status st = gen__nn_name(name, prefix, "weight");
    if (st == GEN_OK)
        st = gen__weights_get(w, name, 1, (int64_t[]){channels}, &n->g);
    if (st == GEN_OK)
        st = bind_bias(w, prefix, channels, &n->b);
    return st;
}

gen_status gen__nn_bind_resnet(const gen__device_weights *w, const char *prefix, int64_t cin,
                               int64_t cout, int64_t temb_channels, int groups, float eps,
                               gen__nn_resnet *r)
{
    char name[GEN__NN_NAME_MAX];
    gen_status st;
    memset(r, 0, sizeof *r);
    r->out_scale = 1.0f;
    TRY(gen__nn_name(name, prefix, "norm1"));
    TRY(gen__nn_bind_norm(w, name, cin, groups, eps, &r->norm1));
    TRY(gen__nn_name(name, prefix, "conv1"));
    TRY(gen__nn_bind_conv(w, name, cout, cin, 3, 1, 1, &r->conv1));
    TRY(gen__nn_name(name, prefix, "norm2"));
    TRY(gen__nn_bind_norm(w, name, cout, groups, eps, &r->norm2));
    TRY(gen__nn_name(name, prefix, "conv2"));
    TRY(gen__nn_bind_conv(w, name, cout, cout, 3, 1, 1, &r->conv2));
    r->has_temb = temb_channels > 0;
    if (r->has_temb) {
        TRY(gen__nn_name(name, prefix, "time_emb_proj"));
        TRY(gen__nn_bind_linear(w, name, cout, temb_channels, true, &r->temb));
    }
    r->has_shortcut = cin != cout;
    if (r->has_shortcut) {
        TRY(gen__nn_name(name, prefix, "conv_shortcut"));
        TRY(gen__nn_bind_conv(w, name, cout, cin, 1, 1, 0, &r->shortcut));
    }
done:
    return st;
}

gen_status gen__nn_bind_attn(const gen__device_weights *w, const char *prefix, int64_t qdim,
                             int64_t kvdim, int64_t dim, int heads, bool qkv_bias,
                             gen__nn_attn *a)
{
    char name[GEN__NN_NAME_MAX];
    gen_status st;
    a->heads = heads;
    a->dim = dim;
    if (heads < 1 || dim % heads)
        return gen__error(GEN_EINVAL, "%s: %lld channels cannot be split into %d heads", prefix,
                          (long long)dim, heads);
    TRY(gen__nn_name(name, prefix, "to_q"));
    TRY(gen__nn_bind_linear(w, name, dim, qdim, qkv_bias, &a->q));
    TRY(gen__nn_name(name, prefix, "to_k"));
    TRY(gen__nn_bind_linear(w, name, dim, kvdim, qkv_bias, &a->k));
    TRY(gen__nn_name(name, prefix, "to_v"));
    TRY(gen__nn_bind_linear(w, name, dim, kvdim, qkv_bias, &a->v));
    TRY(gen__nn_name(name, prefix, "to_out.0"));
    TRY(gen__nn_bind_linear(w, name, qdim, dim, true, &a->out));
done:
    return st;
}

/* ---- forward ---------------------------------------------------------------- */

gen_status gen__nn_alloc(gen__tensor *out, const gen__tensor *like, int ndim, const int64_t *shape)
{
    return gen__tensor_alloc(out, like->backend, like->dtype, ndim, shape);
}

static const gen__tensor *opt(const gen__tensor *t) { return t->ndim ? t : NULL; }

gen_status gen__nn_linear_forward(const gen__nn_linear *l, gen__tensor *out, const gen__tensor *x)
{
    int64_t shape[GEN__TENSOR_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = l->w.shape[0];
    gen_status st = gen__tensor_alloc(out, l->w.backend, l->w.dtype, x->ndim, shape);
    if (st == GEN_OK)
        st = gen__linear(out, x, &l->w, opt(&l->b));
    if (st != GEN_OK)
        gen__tensor_free(out);
    return st;
}

gen_status gen__nn_conv_forward(const gen__nn_conv *c, gen__tensor *out, const gen__tensor *x)
{
    if (x->ndim != 4) {
        char a[GEN__SHAPE_STR_MAX];
        return gen__error(GEN_EINVAL, "conv2d: input %s is not [N,C,H,W]",
                          gen__tensor_str(x, a, sizeof a));
    }
    int64_t ho = gen__conv2d_out_size(x->shape[2], (int)c->w.shape[2], c->p.stride_h,
                                      c->p.pad_top, c->p.pad_bottom);
    int64_t wo = gen__conv2d_out_size(x->shape[3], (int)c->w.shape[3], c->p.stride_w,
                                      c->p.pad_left, c->p.pad_right);
    if (ho < 1 || wo < 1)
        return gen__error(GEN_EINVAL, "conv2d: input %lldx%lld too small for the kernel",
                          (long long)x->shape[2], (long long)x->shape[3]);
    int64_t shape[4] = {x->shape[0], c->w.shape[0], ho, wo};
    gen_status st = gen__tensor_alloc(out, c->w.backend, c->w.dtype, 4, shape);
    if (st == GEN_OK)
        st = gen__conv2d(out, x, &c->w, opt(&c->b), &c->p);
    if (st != GEN_OK)
        gen__tensor_free(out);
    return st;
}

gen_status gen__nn_group_norm_forward(const gen__nn_norm *n, gen__tensor *out,
                                      const gen__tensor *x, bool silu)
{
    gen_status st = gen__tensor_alloc_like(out, x->backend, x);
    if (st == GEN_OK)
        st = gen__group_norm(out, x, &n->g, &n->b, n->groups, n->eps, silu);
    if (st != GEN_OK)
        gen__tensor_free(out);
    return st;
}

gen_status gen__nn_layer_norm_forward(const gen__nn_norm *n, gen__tensor *out,
                                      const gen__tensor *x)
{
    gen_status st = gen__tensor_alloc_like(out, x->backend, x);
    if (st == GEN_OK)
        st = gen__layer_norm(out, x, &n->g, &n->b, n->eps);
    if (st != GEN_OK)
        gen__tensor_free(out);
    return st;
}

gen_status gen__nn_resnet_forward(const gen__nn_resnet *r, gen__tensor *out, const gen__tensor *x,
                                  const gen__tensor *temb_act)
{
    gen__tensor h = GEN__TENSOR_EMPTY, h2 = GEN__TENSOR_EMPTY, t = GEN__TENSOR_EMPTY;
    gen__tensor sc = GEN__TENSOR_EMPTY, res = GEN__TENSOR_EMPTY;
    gen_status st;
    TRY(gen__nn_group_norm_forward(&r->norm1, &h, x, true));
    TRY(gen__nn_conv_forward(&r->conv1, &h2, &h));
    gen__tensor_free(&h);
    if (r->has_temb) {
        if (!temb_act) {
            st = gen__error(GEN_EINVAL, "resnet: time embedding missing");
            goto done;
        }
        gen__tensor t4;
        TRY(gen__nn_linear_forward(&r->temb, &t, temb_act));
        TRY(gen__tensor_view4(&t4, &t, t.shape[0], t.shape[1], 1, 1, 0));
        TRY(gen__add(&h2, &h2, &t4));
        gen__tensor_free(&t);
    }
    TRY(gen__group_norm(&h2, &h2, &r->norm2.g, &r->norm2.b, r->norm2.groups, r->norm2.eps, true));
    TRY(gen__nn_conv_forward(&r->conv2, &res, &h2));
    gen__tensor_free(&h2);
    if (r->has_shortcut) {
        TRY(gen__nn_conv_forward(&r->shortcut, &sc, x));
        TRY(gen__add(&res, &res, &sc));
        gen__tensor_free(&sc);
    } else {
        TRY(gen__add(&res, &res, x));
    }
    if (r->out_scale != 1.0f)
        TRY(gen__scale(&res, &res, 1.0f / r->out_scale));
    *out = res;
    res = (gen__tensor)GEN__TENSOR_EMPTY;
done:
    gen__tensor_free(&h);
    gen__tensor_free(&h2);
    gen__tensor_free(&t);
    gen__tensor_free(&sc);
    gen__tensor_free(&res);
    return st;
}

gen_status gen__nn_attn_forward(const gen__nn_attn *a, gen__tensor *out, const gen__tensor *x,
                                const gen__tensor *ctx, bool causal)
{
    gen__tensor q = GEN__TENSOR_EMPTY, k = GEN__TENSOR_EMPTY, v = GEN__TENSOR_EMPTY;
    gen__tensor o = GEN__TENSOR_EMPTY;
    gen_status st;
    if (!ctx)
        ctx = x;
    TRY(gen__nn_linear_forward(&a->q, &q, x));
    TRY(gen__nn_linear_forward(&a->k, &k, ctx));
    TRY(gen__nn_linear_forward(&a->v, &v, ctx));
    TRY(gen__tensor_alloc_like(&o, q.backend, &q));
    float scale = (float)(1.0 / sqrt((double)(a->dim / a->heads)));
    TRY(gen__attention(&o, &q, &k, &v, a->heads, scale, causal));
    gen__tensor_free(&q);
    gen__tensor_free(&k);
    gen__tensor_free(&v);
    TRY(gen__nn_linear_forward(&a->out, out, &o));
done:
    gen__tensor_free(&q);
    gen__tensor_free(&k);
    gen__tensor_free(&v);
    gen__tensor_free(&o);
    return st;
}

gen_status gen__nn_nchw_to_nlc(gen__tensor *out, const gen__tensor *x)
{
    gen__tensor flat;
    int64_t n = x->shape[0], c = x->shape[1], hw = x->shape[2] * x->shape[3];
    gen_status st = gen__tensor_view3(&flat, x, n, c, hw, 0);
    if (st == GEN_OK)
        st = gen__nn_alloc(out, x, 3, (int64_t[]){n, hw, c});
    if (st == GEN_OK) {
        st = gen__transpose(out, &flat);
        if (st != GEN_OK)
            gen__tensor_free(out);
    }
    return st;
}

gen_status gen__nn_nlc_to_nchw(gen__tensor *out, const gen__tensor *x, int64_t h, int64_t w)
{
    int64_t n = x->shape[0], c = x->shape[2];
    gen__tensor flat;
    gen_status st = gen__nn_alloc(out, x, 4, (int64_t[]){n, c, h, w});
    if (st == GEN_OK)
        st = gen__tensor_view3(&flat, out, n, c, h * w, 0);
    if (st == GEN_OK)
        st = gen__transpose(&flat, x);
    if (st != GEN_OK)
        gen__tensor_free(out);
    return st;
}
