/* Building blocks shared by the UNet, the VAE and the text encoder, written only
 * against the backend ops: Linear, Conv2d, GroupNorm/LayerNorm parameters,
 * diffusers' ResnetBlock2D and Attention (projections + scaled dot product).
 *
 * bind_* functions take views of a device weight copy (checking every shape, so
 * a wrong config or file fails at load with the tensor's name); *_forward
 * functions allocate their output on the weights' backend in the weights' dtype
 * and free every temporary before returning (also on error). */
#ifndef GEN_PIPELINE_NN_H
#define GEN_PIPELINE_NN_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "pipeline/weights.h"

/* Longest weight name the networks build. */
#define GEN__NN_NAME_MAX 192

typedef struct gen__nn_linear {
    gen__tensor w; /* [out, in] */
    gen__tensor b; /* [out] or empty (ndim 0) */
} gen__nn_linear;

typedef struct gen__nn_conv {
    gen__tensor w; /* [out, in, k, k] */
    gen__tensor b; /* [out] or empty */
    gen__conv2d_params p;
} gen__nn_conv;

typedef struct gen__nn_norm {
    gen__tensor g, b; /* [C] */
    int groups;       /* GroupNorm only */
    float eps;
} gen__nn_norm;

/* diffusers ResnetBlock2D (pre-activation, optional time embedding projection,
 * 1x1 conv_shortcut when channels change). */
typedef struct gen__nn_resnet {
    gen__nn_norm norm1, norm2;
    gen__nn_conv conv1, conv2, shortcut;
    gen__nn_linear temb;
    bool has_shortcut, has_temb;
    float out_scale; /* output_scale_factor: (x + h) / out_scale */
} gen__nn_resnet;

/* diffusers Attention's projections (to_q, to_k, to_v, to_out.0). */
typedef struct gen__nn_attn {
    gen__nn_linear q, k, v, out;
    int heads;
    int64_t dim; /* inner dim = heads * head_dim */
} gen__nn_attn;

/* "<prefix>.<suffix>" into buf (GEN_EINVAL if too long). */
gen_status gen__nn_name(char *buf, const char *prefix, const char *suffix);

/* prefix.weight [out, in] (also accepted as a 1x1 conv [out, in, 1, 1], LDM's
 * VAE attention) and prefix.bias [out] when `bias`. */
gen_status gen__nn_bind_linear(const gen__device_weights *w, const char *prefix, int64_t out,
                               int64_t in, bool bias, gen__nn_linear *l);
/* prefix.weight [out, in, k, k] and prefix.bias [out]; symmetric stride/padding. */
gen_status gen__nn_bind_conv(const gen__device_weights *w, const char *prefix, int64_t out,
                             int64_t in, int k, int stride, int pad, gen__nn_conv *c);
/* prefix.weight / prefix.bias [channels] (a norm's gamma/beta). */
gen_status gen__nn_bind_norm(const gen__device_weights *w, const char *prefix, int64_t channels,
                             int groups, float eps, gen__nn_norm *n);
/* ResnetBlock2D at prefix (norm1, conv1, [time_emb_proj], norm2, conv2,
 * [conv_shortcut]); temb_channels 0 = no time embedding (VAE). */
gen_status gen__nn_bind_resnet(const gen__device_weights *w, const char *prefix, int64_t cin,
                               int64_t cout, int64_t temb_channels, int groups, float eps,
                               gen__nn_resnet *r);
/* Attention at prefix: to_q [dim, qdim], to_k/to_v [dim, kvdim], to_out.0 [qdim, dim]
 * with bias; q/k/v biases when qkv_bias. */
gen_status gen__nn_bind_attn(const gen__device_weights *w, const char *prefix, int64_t qdim,
                             int64_t kvdim, int64_t dim, int heads, bool qkv_bias,
                             gen__nn_attn *a);

/* Allocate an uninitialised tensor like `shape` on x's backend and dtype. */
gen_status gen__nn_alloc(gen__tensor *out, const gen__tensor *like, int ndim,
                         const int64_t *shape);

/* out (allocated) = x @ w^T + b over x's last dimension. */
gen_status gen__nn_linear_forward(const gen__nn_linear *l, gen__tensor *out, const gen__tensor *x);
/* out (allocated) = conv2d(x). */
gen_status gen__nn_conv_forward(const gen__nn_conv *c, gen__tensor *out, const gen__tensor *x);
/* out (allocated) = group_norm(x) [+ silu]. */
gen_status gen__nn_group_norm_forward(const gen__nn_norm *n, gen__tensor *out,
                                      const gen__tensor *x, bool silu);
/* out (allocated) = layer_norm(x). */
gen_status gen__nn_layer_norm_forward(const gen__nn_norm *n, gen__tensor *out,
                                      const gen__tensor *x);
/* out (allocated) = ResnetBlock2D(x, temb). temb_act: silu(time embedding)
 * [N, temb_channels] or NULL when the block has none. */
gen_status gen__nn_resnet_forward(const gen__nn_resnet *r, gen__tensor *out, const gen__tensor *x,
                                  const gen__tensor *temb_act);
/* out (allocated) [B, Nq, qdim] = to_out(attention(to_q(x), to_k(ctx), to_v(ctx)));
 * ctx NULL = self-attention; scale 1/sqrt(head_dim). */
gen_status gen__nn_attn_forward(const gen__nn_attn *a, gen__tensor *out, const gen__tensor *x,
                                const gen__tensor *ctx, bool causal);

/* [N, C, H, W] <-> [N, H*W, C] (allocated), the layout switch of attention blocks. */
gen_status gen__nn_nchw_to_nlc(gen__tensor *out, const gen__tensor *x);
gen_status gen__nn_nlc_to_nchw(gen__tensor *out, const gen__tensor *x, int64_t h, int64_t w);

#endif
