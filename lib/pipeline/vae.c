/* AutoencoderKL encoder and decoder (see vae.h); names and channel bookkeeping
 * follow diffusers' Encoder / Decoder / UNetMidBlock2D. */
#include "pipeline/vae.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "pipeline/nn.h"

#define VAE_EPS 1e-6f
#define MAX_LAYERS 16

typedef struct vae_attn {
    gen__nn_norm norm;
    gen__nn_attn attn;
} vae_attn;

typedef struct vae_mid {
    gen__nn_resnet res[2];
    bool has_attn;
    vae_attn attn;
} vae_mid;

typedef struct vae_block {
    int n_layers;
    gen__nn_resnet resnets[MAX_LAYERS];
    bool has_sampler;
    gen__nn_conv sampler;
} vae_block;

struct gen__vae {
    gen__vae_config cfg;
    bool has_encoder;
    /* encoder */
    gen__nn_conv enc_in, enc_out, quant;
    vae_block down[GEN__MAX_BLOCKS];
    vae_mid enc_mid;
    gen__nn_norm enc_norm;
    /* decoder */
    gen__nn_conv post_quant, dec_in, dec_out;
    vae_block up[GEN__MAX_BLOCKS];
    vae_mid dec_mid;
    gen__nn_norm dec_norm;
};

static gen_status bind_mid(const gen__device_weights *w, const gen__vae_config *cfg,
                           const char *prefix, int64_t ch, vae_mid *m)
{
    char name[GEN__NN_NAME_MAX];
    gen_status st;
    GEN__NN_TRY(gen__nn_name(name, prefix, "resnets.0"));
    GEN__NN_TRY(gen__nn_bind_resnet(w, name, ch, ch, 0, cfg->norm_num_groups, VAE_EPS, &m->res[0]));
    GEN__NN_TRY(gen__nn_name(name, prefix, "resnets.1"));
    GEN__NN_TRY(gen__nn_bind_resnet(w, name, ch, ch, 0, cfg->norm_num_groups, VAE_EPS, &m->res[1]));
    m->has_attn = cfg->mid_block_add_attention;
    if (m->has_attn) {
        GEN__NN_TRY(gen__nn_name(name, prefix, "attentions.0.group_norm"));
        GEN__NN_TRY(gen__nn_bind_norm(w, name, ch, cfg->norm_num_groups, VAE_EPS, &m->attn.norm));
        GEN__NN_TRY(gen__nn_name(name, prefix, "attentions.0"));
        GEN__NN_TRY(gen__nn_bind_attn(w, name, ch, ch, ch, 1, true, &m->attn.attn));
    }
done:
    return st;
}

gen_status gen__vae_create(gen__vae **out, const gen__vae_config *cfg, const gen__device_weights *w,
                           bool with_encoder)
{
    *out = NULL;
    if (cfg->n_blocks < 1 || cfg->n_blocks > GEN__MAX_BLOCKS || cfg->layers_per_block < 1 ||
        cfg->layers_per_block + 1 > MAX_LAYERS)
        return gen__error(GEN_EUNSUPPORTED, "vae: %d blocks of %d layers not supported",
                          cfg->n_blocks, cfg->layers_per_block);
    if (!(cfg->scaling_factor > 0.0))
        return gen__error(GEN_EINVAL, "vae: scaling_factor %g must be positive",
                          cfg->scaling_factor);
    gen__vae *v = gen__calloc(1, sizeof *v);
    if (!v)
        return gen__error(GEN_ENOMEM, "vae: out of memory");
    v->cfg = *cfg;
    v->has_encoder = with_encoder;
    const int nb = cfg->n_blocks, groups = cfg->norm_num_groups;
    const int64_t lat = cfg->latent_channels, top = cfg->block_out_channels[nb - 1];
    const int64_t c0 = cfg->block_out_channels[0];
    char name[GEN__NN_NAME_MAX];
    gen_status st;

    if (with_encoder) {
        GEN__NN_TRY(
            gen__nn_bind_conv(w, "encoder.conv_in", c0, cfg->in_channels, 3, 1, 1, &v->enc_in));
        int64_t out_ch = c0;
        for (int i = 0; i < nb; i++) {
            vae_block *b = &v->down[i];
            int64_t in_ch = out_ch;
            out_ch = cfg->block_out_channels[i];
            b->n_layers = cfg->layers_per_block;
            for (int j = 0; j < b->n_layers; j++) {
                snprintf(name, sizeof name, "encoder.down_blocks.%d.resnets.%d", i, j);
                GEN__NN_TRY(gen__nn_bind_resnet(w, name, j == 0 ? in_ch : out_ch, out_ch, 0, groups,
                                                VAE_EPS, &b->resnets[j]));
            }
            b->has_sampler = i < nb - 1;
            if (b->has_sampler) {
                snprintf(name, sizeof name, "encoder.down_blocks.%d.downsamplers.0.conv", i);
                GEN__NN_TRY(gen__nn_bind_conv(w, name, out_ch, out_ch, 3, 2, 0, &b->sampler));
                /* Downsample2D(padding=0) pads right and bottom by one */
                b->sampler.p = (gen__conv2d_params){2, 2, 0, 1, 0, 1};
            }
        }
        GEN__NN_TRY(bind_mid(w, cfg, "encoder.mid_block", top, &v->enc_mid));
        GEN__NN_TRY(
            gen__nn_bind_norm(w, "encoder.conv_norm_out", top, groups, VAE_EPS, &v->enc_norm));
        GEN__NN_TRY(gen__nn_bind_conv(w, "encoder.conv_out", 2 * lat, top, 3, 1, 1, &v->enc_out));
        if (cfg->use_quant_conv)
            GEN__NN_TRY(gen__nn_bind_conv(w, "quant_conv", 2 * lat, 2 * lat, 1, 1, 0, &v->quant));
    }

    if (cfg->use_post_quant_conv)
        GEN__NN_TRY(gen__nn_bind_conv(w, "post_quant_conv", lat, lat, 1, 1, 0, &v->post_quant));
    GEN__NN_TRY(gen__nn_bind_conv(w, "decoder.conv_in", top, lat, 3, 1, 1, &v->dec_in));
    GEN__NN_TRY(bind_mid(w, cfg, "decoder.mid_block", top, &v->dec_mid));
    int64_t out_ch = top;
    for (int i = 0; i < nb; i++) {
        vae_block *b = &v->up[i];
        int64_t prev = out_ch;
        out_ch = cfg->block_out_channels[nb - 1 - i];
        b->n_layers = cfg->layers_per_block + 1;
        for (int j = 0; j < b->n_layers; j++) {
            snprintf(name, sizeof name, "decoder.up_blocks.%d.resnets.%d", i, j);
            GEN__NN_TRY(gen__nn_bind_resnet(w, name, j == 0 ? prev : out_ch, out_ch, 0, groups,
                                            VAE_EPS, &b->resnets[j]));
        }
        b->has_sampler = i < nb - 1;
        if (b->has_sampler) {
            snprintf(name, sizeof name, "decoder.up_blocks.%d.upsamplers.0.conv", i);
            GEN__NN_TRY(gen__nn_bind_conv(w, name, out_ch, out_ch, 3, 1, 1, &b->sampler));
        }
    }
    GEN__NN_TRY(gen__nn_bind_norm(w, "decoder.conv_norm_out", c0, groups, VAE_EPS, &v->dec_norm));
    GEN__NN_TRY(
        gen__nn_bind_conv(w, "decoder.conv_out", cfg->out_channels, c0, 3, 1, 1, &v->dec_out));
done:
    if (st != GEN_OK) {
        gen__vae_destroy(v);
        return st;
    }
    *out = v;
    return GEN_OK;
}

void gen__vae_destroy(gen__vae *vae)
{
    gen__free(vae);
}

int gen__vae_scale_factor(const gen__vae *vae)
{
    return 1 << (vae->cfg.n_blocks - 1);
}
double gen__vae_scaling_factor(const gen__vae *vae)
{
    return vae->cfg.scaling_factor;
}

/* ---- forward ------------------------------------------------------------------ */

static void replace(gen__tensor *x, gen__tensor *next)
{
    gen__tensor_free(x);
    *x = *next;
    *next = (gen__tensor)GEN__TENSOR_EMPTY;
}

/* Attention block with residual: x + to_out(attn(group_norm(x) as [N, HW, C])). */
static gen_status attn_forward(const vae_attn *a, gen__tensor *x)
{
    gen__tensor h = GEN__TENSOR_EMPTY, s = GEN__TENSOR_EMPTY, o = GEN__TENSOR_EMPTY;
    gen_status st;
    GEN__NN_TRY(gen__nn_group_norm_forward(&a->norm, &h, x, false));
    GEN__NN_TRY(gen__nn_nchw_to_nlc(&s, &h));
    gen__tensor_free(&h);
    GEN__NN_TRY(gen__nn_attn_forward(&a->attn, &o, &s, NULL, false));
    gen__tensor_free(&s);
    GEN__NN_TRY(gen__nn_nlc_to_nchw(&h, &o, x->shape[2], x->shape[3]));
    GEN__NN_TRY(gen__add(x, x, &h));
done:
    gen__tensor_free(&h);
    gen__tensor_free(&s);
    gen__tensor_free(&o);
    return st;
}

static gen_status mid_forward(const vae_mid *m, gen__tensor *x)
{
    gen__tensor y = GEN__TENSOR_EMPTY;
    gen_status st;
    GEN__NN_TRY(gen__nn_resnet_forward(&m->res[0], &y, x, NULL));
    replace(x, &y);
    if (m->has_attn)
        GEN__NN_TRY(attn_forward(&m->attn, x));
    GEN__NN_TRY(gen__nn_resnet_forward(&m->res[1], &y, x, NULL));
    replace(x, &y);
done:
    return st;
}

static gen_status check_latents(const gen__vae *v, const gen__tensor *latents)
{
    if (latents->ndim != 4 || latents->shape[1] != v->cfg.latent_channels) {
        char a[GEN__SHAPE_STR_MAX];
        return gen__error(GEN_EINVAL, "vae decode: latents %s are not [N,%d,h,w]",
                          gen__tensor_str(latents, a, sizeof a), v->cfg.latent_channels);
    }
    return GEN_OK;
}

gen_status gen__vae_unscale(const gen__vae *v, gen__tensor *z, const gen__tensor *latents)
{
    const gen__vae_config *cfg = &v->cfg;
    *z = (gen__tensor)GEN__TENSOR_EMPTY;
    gen_status st = check_latents(v, latents);
    if (st != GEN_OK)
        return st;
    gen__tensor y = GEN__TENSOR_EMPTY;
    /* in the VAE's own dtype (it may run in f32 while the UNet runs in f16:
     * force_upcast), then z = latents / scaling_factor (+ shift_factor) */
    GEN__NN_TRY(gen__nn_alloc(z, &v->dec_in.w, latents->ndim, latents->shape));
    GEN__NN_TRY(gen__convert(z, latents));
    if (cfg->has_shift_factor && cfg->shift_factor != 0.0) {
        GEN__NN_TRY(gen__tensor_alloc_like(&y, z->backend, z));
        GEN__NN_TRY(gen__fill(&y, (float)cfg->shift_factor));
        GEN__NN_TRY(gen__axpby(z, (float)(1.0 / cfg->scaling_factor), z, 1.0f, &y));
    } else {
        GEN__NN_TRY(gen__scale(z, z, (float)(1.0 / cfg->scaling_factor)));
    }
done:
    gen__tensor_free(&y);
    if (st != GEN_OK) {
        gen__tensor_free(z);
        gen__error_prefix("vae decode: ");
    }
    return st;
}

gen_status gen__vae_decoder_forward(const gen__vae *v, gen__tensor *image, const gen__tensor *z)
{
    const gen__vae_config *cfg = &v->cfg;
    *image = (gen__tensor)GEN__TENSOR_EMPTY;
    gen_status st = check_latents(v, z);
    if (st != GEN_OK)
        return st;
    gen__tensor x = GEN__TENSOR_EMPTY, y = GEN__TENSOR_EMPTY;
    if (cfg->use_post_quant_conv) {
        GEN__NN_TRY(gen__nn_conv_forward(&v->post_quant, &x, z));
        GEN__NN_TRY(gen__nn_conv_forward(&v->dec_in, &y, &x));
    } else {
        GEN__NN_TRY(gen__nn_conv_forward(&v->dec_in, &y, z));
    }
    replace(&x, &y);
    GEN__NN_TRY(mid_forward(&v->dec_mid, &x));
    for (int i = 0; i < cfg->n_blocks; i++) {
        const vae_block *b = &v->up[i];
        for (int j = 0; j < b->n_layers; j++) {
            GEN__NN_TRY(gen__nn_resnet_forward(&b->resnets[j], &y, &x, NULL));
            replace(&x, &y);
        }
        if (b->has_sampler) {
            GEN__NN_TRY(gen__nn_alloc(
                &y, &x, 4, (int64_t[]){x.shape[0], x.shape[1], 2 * x.shape[2], 2 * x.shape[3]}));
            GEN__NN_TRY(gen__upsample_nearest2x(&y, &x));
            replace(&x, &y);
            GEN__NN_TRY(gen__nn_conv_forward(&b->sampler, &y, &x));
            replace(&x, &y);
        }
    }
    GEN__NN_TRY(gen__group_norm(&x, &x, &v->dec_norm.g, &v->dec_norm.b, v->dec_norm.groups,
                                v->dec_norm.eps, true));
    GEN__NN_TRY(gen__nn_conv_forward(&v->dec_out, image, &x));
done:
    gen__tensor_free(&x);
    gen__tensor_free(&y);
    if (st != GEN_OK)
        gen__error_prefix("vae decode: ");
    return st;
}

gen_status gen__vae_decode(const gen__vae *v, gen__tensor *image, const gen__tensor *latents)
{
    gen__tensor z = GEN__TENSOR_EMPTY;
    *image = z;
    gen_status st = gen__vae_unscale(v, &z, latents);
    if (st == GEN_OK)
        st = gen__vae_decoder_forward(v, image, &z);
    gen__tensor_free(&z);
    return st;
}

/* std = exp(0.5 * clamp(logvar, -30, 20)) in f32 on the host (the tensor is
 * small: latent size), in place on `t`. */
static gen_status logvar_to_std(gen__tensor *t)
{
    size_t n = (size_t)gen__tensor_numel(t);
    gen__tensor f = GEN__TENSOR_EMPTY;
    const gen__tensor *src = t;
    gen_status st = GEN_OK;
    float *host = gen__malloc(n * sizeof *host);
    if (!host)
        return gen__error(GEN_ENOMEM, "vae encode: out of memory");
    if (t->dtype != GEN__F32) {
        GEN__NN_TRY(gen__tensor_alloc(&f, t->backend, GEN__F32, t->ndim, t->shape));
        GEN__NN_TRY(gen__convert(&f, t));
        src = &f;
    }
    GEN__NN_TRY(gen__tensor_download(src, host, n * sizeof *host));
    for (size_t i = 0; i < n; i++) {
        float lv = host[i] < -30.0f ? -30.0f : host[i] > 20.0f ? 20.0f : host[i];
        host[i] = expf(0.5f * lv);
    }
    if (src == t) {
        GEN__NN_TRY(gen__tensor_upload(t, host, n * sizeof *host));
    } else {
        GEN__NN_TRY(gen__tensor_upload(&f, host, n * sizeof *host));
        GEN__NN_TRY(gen__convert(t, &f));
    }
done:
    gen__tensor_free(&f);
    gen__free(host);
    return st;
}

gen_status gen__vae_encoder_forward(const gen__vae *v, gen__tensor *moments,
                                    const gen__tensor *image)
{
    const gen__vae_config *cfg = &v->cfg;
    *moments = (gen__tensor)GEN__TENSOR_EMPTY;
    if (!v->has_encoder)
        return gen__error(GEN_ESTATE, "vae encode: the VAE was loaded without its encoder");
    const int64_t f = gen__vae_scale_factor(v);
    if (image->ndim != 4 || image->shape[1] != cfg->in_channels || image->shape[2] % f ||
        image->shape[3] % f) {
        char a[GEN__SHAPE_STR_MAX];
        return gen__error(GEN_EINVAL,
                          "vae encode: image %s is not [N,%d,H,W] with H, W multiples of %lld",
                          gen__tensor_str(image, a, sizeof a), cfg->in_channels, (long long)f);
    }
    gen__tensor x = GEN__TENSOR_EMPTY, y = GEN__TENSOR_EMPTY;
    gen_status st;
    if (image->dtype != v->enc_in.w.dtype) { /* e.g. an f16 image into an f32 (upcast) VAE */
        GEN__NN_TRY(gen__nn_alloc(&y, &v->enc_in.w, image->ndim, image->shape));
        GEN__NN_TRY(gen__convert(&y, image));
        GEN__NN_TRY(gen__nn_conv_forward(&v->enc_in, &x, &y));
        gen__tensor_free(&y);
    } else {
        GEN__NN_TRY(gen__nn_conv_forward(&v->enc_in, &x, image));
    }
    for (int i = 0; i < cfg->n_blocks; i++) {
        const vae_block *b = &v->down[i];
        for (int j = 0; j < b->n_layers; j++) {
            GEN__NN_TRY(gen__nn_resnet_forward(&b->resnets[j], &y, &x, NULL));
            replace(&x, &y);
        }
        if (b->has_sampler) {
            GEN__NN_TRY(gen__nn_conv_forward(&b->sampler, &y, &x));
            replace(&x, &y);
        }
    }
    GEN__NN_TRY(mid_forward(&v->enc_mid, &x));
    GEN__NN_TRY(gen__group_norm(&x, &x, &v->enc_norm.g, &v->enc_norm.b, v->enc_norm.groups,
                                v->enc_norm.eps, true));
    GEN__NN_TRY(gen__nn_conv_forward(&v->enc_out, &y, &x));
    replace(&x, &y);
    if (cfg->use_quant_conv) {
        GEN__NN_TRY(gen__nn_conv_forward(&v->quant, &y, &x));
        replace(&x, &y);
    }
    *moments = x;
    x = (gen__tensor)GEN__TENSOR_EMPTY;
done:
    gen__tensor_free(&x);
    gen__tensor_free(&y);
    if (st != GEN_OK)
        gen__error_prefix("vae encode: ");
    return st;
}

gen_status gen__vae_moments_split(const gen__vae *v, gen__tensor *mean, gen__tensor *std,
                                  const gen__tensor *moments)
{
    gen__tensor empty = GEN__TENSOR_EMPTY;
    *mean = empty;
    *std = empty;
    const int64_t lat = v->cfg.latent_channels;
    if (moments->ndim != 4 || moments->shape[1] != 2 * lat) {
        char a[GEN__SHAPE_STR_MAX];
        return gen__error(GEN_EINVAL, "vae encode: moments %s are not [N,%lld,h,w]",
                          gen__tensor_str(moments, a, sizeof a), (long long)(2 * lat));
    }
    /* moments [N, 2L, h, w] -> mean = first L channels, logvar = the rest */
    const int64_t n = moments->shape[0], h = moments->shape[2], w = moments->shape[3];
    const int64_t plane = lat * h * w;
    gen_status st;
    GEN__NN_TRY(gen__nn_alloc(mean, moments, 4, (int64_t[]){n, lat, h, w}));
    GEN__NN_TRY(gen__nn_alloc(std, moments, 4, (int64_t[]){n, lat, h, w}));
    for (int64_t b = 0; b < n; b++) {
        gen__tensor src, dst;
        GEN__NN_TRY(gen__tensor_view4(&src, moments, 1, lat, h, w, b * 2 * plane));
        GEN__NN_TRY(gen__tensor_view4(&dst, mean, 1, lat, h, w, b * plane));
        GEN__NN_TRY(gen__tensor_copy(&dst, &src));
        GEN__NN_TRY(gen__tensor_view4(&src, moments, 1, lat, h, w, b * 2 * plane + plane));
        GEN__NN_TRY(gen__tensor_view4(&dst, std, 1, lat, h, w, b * plane));
        GEN__NN_TRY(gen__tensor_copy(&dst, &src));
    }
    GEN__NN_TRY(logvar_to_std(std));
done:
    if (st != GEN_OK) {
        gen__tensor_free(mean);
        gen__tensor_free(std);
        gen__error_prefix("vae encode: ");
    }
    return st;
}

gen_status gen__vae_encode(const gen__vae *v, gen__tensor *mean, gen__tensor *std,
                           const gen__tensor *image)
{
    gen__tensor moments = GEN__TENSOR_EMPTY;
    *mean = moments;
    *std = moments;
    gen_status st = gen__vae_encoder_forward(v, &moments, image);
    if (st == GEN_OK)
        st = gen__vae_moments_split(v, mean, std, &moments);
    gen__tensor_free(&moments);
    return st;
}

const gen__vae_config *gen__vae_get_config(const gen__vae *vae)
{
    return &vae->cfg;
}

gen__dtype gen__vae_dtype(const gen__vae *vae)
{
    return vae->dec_in.w.dtype;
}
