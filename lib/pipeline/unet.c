/* UNet2DConditionModel forward (see unet.h). Names and channel bookkeeping
 * follow diffusers' UNet2DConditionModel / get_down_block / get_up_block. */
#include "pipeline/unet.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "pipeline/nn.h"

#define TRY(expr)                 \
    do {                          \
        st = (expr);              \
        if (st != GEN_OK)         \
            goto done;            \
    } while (0)

/* Transformer2DModel's GroupNorm and BasicTransformerBlock's LayerNorms */
#define TRANSFORMER_GN_EPS 1e-6f
#define BLOCK_LN_EPS 1e-5f
#define MAX_LAYERS 16 /* resnets per block */

typedef struct tblock {
    gen__nn_norm n1, n2, n3;
    gen__nn_attn a1, a2;
    gen__nn_linear ff1, ff2;
    bool only_cross;
} tblock;

typedef struct transformer {
    gen__nn_norm norm;
    bool linear;
    gen__nn_linear proj_in_l, proj_out_l;
    gen__nn_conv proj_in_c, proj_out_c;
    int n_blocks;
    tblock *blocks;
} transformer;

typedef struct unet_block {
    int n_layers;
    gen__nn_resnet resnets[MAX_LAYERS];
    transformer *attns[MAX_LAYERS]; /* NULL for plain blocks */
    bool has_sampler;
    gen__nn_conv sampler;           /* downsamplers.0.conv / upsamplers.0.conv */
} unet_block;

struct gen__unet {
    gen__unet_config cfg;
    gen__nn_linear time1, time2;
    gen__nn_conv conv_in, conv_out;
    gen__nn_norm norm_out;
    unet_block down[GEN__MAX_BLOCKS], up[GEN__MAX_BLOCKS];
    gen__nn_resnet mid_res[2];
    transformer *mid_attn;
};

/* "<prefix>.<kind>.<i>" */
static gen_status namef(char *buf, const char *kind, const char *prefix, int i)
{
    char suffix[64];
    snprintf(suffix, sizeof suffix, "%s.%d", kind, i);
    return gen__nn_name(buf, prefix, suffix);
}

static void transformer_free(transformer *t)
{
    if (t) {
        gen__free(t->blocks);
        gen__free(t);
    }
}

static gen_status bind_transformer(const gen__device_weights *w, const gen__unet_config *cfg,
                                   const char *prefix, int64_t ch, int heads, int layers,
                                   bool only_cross, transformer **out)
{
    char name[GEN__NN_NAME_MAX], bp[GEN__NN_NAME_MAX];
    gen_status st;
    *out = NULL;
    transformer *t = gen__calloc(1, sizeof *t);
    tblock *blocks = gen__calloc((size_t)layers, sizeof *blocks);
    if (!t || !blocks) {
        gen__free(t);
        gen__free(blocks);
        return gen__error(GEN_ENOMEM, "unet: out of memory");
    }
    t->blocks = blocks;
    t->n_blocks = layers;
    t->linear = cfg->use_linear_projection;
    int64_t ctx = cfg->cross_attention_dim;
    TRY(gen__nn_name(name, prefix, "norm"));
    TRY(gen__nn_bind_norm(w, name, ch, cfg->norm_num_groups, TRANSFORMER_GN_EPS, &t->norm));
    if (t->linear) {
        TRY(gen__nn_name(name, prefix, "proj_in"));
        TRY(gen__nn_bind_linear(w, name, ch, ch, true, &t->proj_in_l));
        TRY(gen__nn_name(name, prefix, "proj_out"));
        TRY(gen__nn_bind_linear(w, name, ch, ch, true, &t->proj_out_l));
    } else {
        TRY(gen__nn_name(name, prefix, "proj_in"));
        TRY(gen__nn_bind_conv(w, name, ch, ch, 1, 1, 0, &t->proj_in_c));
        TRY(gen__nn_name(name, prefix, "proj_out"));
        TRY(gen__nn_bind_conv(w, name, ch, ch, 1, 1, 0, &t->proj_out_c));
    }
    for (int i = 0; i < layers; i++) {
        tblock *b = &blocks[i];
        b->only_cross = only_cross;
        TRY(namef(bp, "transformer_blocks", prefix, i));
        TRY(gen__nn_name(name, bp, "norm1"));
        TRY(gen__nn_bind_norm(w, name, ch, 0, BLOCK_LN_EPS, &b->n1));
        TRY(gen__nn_name(name, bp, "norm2"));
        TRY(gen__nn_bind_norm(w, name, ch, 0, BLOCK_LN_EPS, &b->n2));
        TRY(gen__nn_name(name, bp, "norm3"));
        TRY(gen__nn_bind_norm(w, name, ch, 0, BLOCK_LN_EPS, &b->n3));
        TRY(gen__nn_name(name, bp, "attn1"));
        TRY(gen__nn_bind_attn(w, name, ch, only_cross ? ctx : ch, ch, heads, false, &b->a1));
        TRY(gen__nn_name(name, bp, "attn2"));
        TRY(gen__nn_bind_attn(w, name, ch, ctx, ch, heads, false, &b->a2));
        TRY(gen__nn_name(name, bp, "ff.net.0.proj"));
        TRY(gen__nn_bind_linear(w, name, 8 * ch, ch, true, &b->ff1));
        TRY(gen__nn_name(name, bp, "ff.net.2"));
        TRY(gen__nn_bind_linear(w, name, ch, 4 * ch, true, &b->ff2));
    }
done:
    if (st != GEN_OK) {
        transformer_free(t);
        return st;
    }
    *out = t;
    return GEN_OK;
}

void gen__unet_destroy(gen__unet *u)
{
    if (!u)
        return;
    for (int i = 0; i < GEN__MAX_BLOCKS; i++)
        for (int j = 0; j < MAX_LAYERS; j++) {
            transformer_free(u->down[i].attns[j]);
            transformer_free(u->up[i].attns[j]);
        }
    transformer_free(u->mid_attn);
    gen__free(u);
}

const gen__unet_config *gen__unet_config_of(const gen__unet *u) { return &u->cfg; }

gen_status gen__unet_create(gen__unet **out, const gen__unet_config *cfg,
                            const gen__device_weights *w)
{
    *out = NULL;
    if (cfg->addition_text_time)
        return gen__error(GEN_EUNSUPPORTED, "unet: SDXL text_time additions are not supported");
    if (cfg->center_input_sample)
        return gen__error(GEN_EUNSUPPORTED, "unet: center_input_sample is not supported");
    if (cfg->n_blocks < 1 || cfg->n_blocks > GEN__MAX_BLOCKS || cfg->layers_per_block < 1 ||
        cfg->layers_per_block + 1 > MAX_LAYERS)
        return gen__error(GEN_EUNSUPPORTED, "unet: %d blocks of %d layers not supported",
                          cfg->n_blocks, cfg->layers_per_block);
    gen__unet *u = gen__calloc(1, sizeof *u);
    if (!u)
        return gen__error(GEN_ENOMEM, "unet: out of memory");
    u->cfg = *cfg;
    const int nb = cfg->n_blocks, groups = cfg->norm_num_groups;
    const float eps = (float)cfg->norm_eps;
    const int64_t c0 = cfg->block_out_channels[0], temb = 4 * c0;
    char name[GEN__NN_NAME_MAX], bp[GEN__NN_NAME_MAX];
    gen_status st;
    TRY(gen__nn_bind_linear(w, "time_embedding.linear_1", temb, c0, true, &u->time1));
    TRY(gen__nn_bind_linear(w, "time_embedding.linear_2", temb, temb, true, &u->time2));
    TRY(gen__nn_bind_conv(w, "conv_in", c0, cfg->in_channels, 3, 1, 1, &u->conv_in));

    int64_t out_ch = c0;
    for (int i = 0; i < nb; i++) {
        unet_block *b = &u->down[i];
        int64_t in_ch = out_ch;
        out_ch = cfg->block_out_channels[i];
        bool cross = cfg->down_blocks[i] == GEN__BLOCK_CROSS_ATTN;
        b->n_layers = cfg->layers_per_block;
        snprintf(bp, sizeof bp, "down_blocks.%d", i);
        for (int j = 0; j < b->n_layers; j++) {
            TRY(namef(name, "resnets", bp, j));
            TRY(gen__nn_bind_resnet(w, name, j == 0 ? in_ch : out_ch, out_ch, temb, groups, eps,
                                    &b->resnets[j]));
            if (cross) {
                TRY(namef(name, "attentions", bp, j));
                TRY(bind_transformer(w, cfg, name, out_ch, cfg->attention_heads[i],
                                     cfg->transformer_layers[i], cfg->only_cross_attention[i],
                                     &b->attns[j]));
            }
        }
        b->has_sampler = i < nb - 1;
        if (b->has_sampler) {
            TRY(gen__nn_name(name, bp, "downsamplers.0.conv"));
            TRY(gen__nn_bind_conv(w, name, out_ch, out_ch, 3, 2, cfg->downsample_padding,
                                  &b->sampler));
            if (cfg->downsample_padding == 0)
                b->sampler.p = (gen__conv2d_params){2, 2, 0, 1, 0, 1};
        }
    }

    const int64_t top = cfg->block_out_channels[nb - 1];
    TRY(gen__nn_bind_resnet(w, "mid_block.resnets.0", top, top, temb, groups, eps, &u->mid_res[0]));
    TRY(gen__nn_bind_resnet(w, "mid_block.resnets.1", top, top, temb, groups, eps, &u->mid_res[1]));
    u->mid_res[0].out_scale = u->mid_res[1].out_scale = (float)cfg->mid_block_scale_factor;
    if (cfg->mid_block_cross_attn)
        TRY(bind_transformer(w, cfg, "mid_block.attentions.0", top, cfg->attention_heads[nb - 1],
                             cfg->transformer_layers[nb - 1], false, &u->mid_attn));

    int64_t prev = top;
    out_ch = top;
    for (int i = 0; i < nb; i++) {
        unet_block *b = &u->up[i];
        int r = nb - 1 - i; /* the mirrored down block: heads, layers, channels */
        prev = out_ch;
        out_ch = cfg->block_out_channels[r];
        int64_t in_ch = cfg->block_out_channels[r > 0 ? r - 1 : 0];
        bool cross = cfg->up_blocks[i] == GEN__BLOCK_CROSS_ATTN;
        b->n_layers = cfg->layers_per_block + 1;
        snprintf(bp, sizeof bp, "up_blocks.%d", i);
        for (int j = 0; j < b->n_layers; j++) {
            int64_t skip = j == b->n_layers - 1 ? in_ch : out_ch;
            int64_t res_in = j == 0 ? prev : out_ch;
            TRY(namef(name, "resnets", bp, j));
            TRY(gen__nn_bind_resnet(w, name, res_in + skip, out_ch, temb, groups, eps,
                                    &b->resnets[j]));
            if (cross) {
                TRY(namef(name, "attentions", bp, j));
                TRY(bind_transformer(w, cfg, name, out_ch, cfg->attention_heads[r],
                                     cfg->transformer_layers[r], cfg->only_cross_attention[r],
                                     &b->attns[j]));
            }
        }
        b->has_sampler = i < nb - 1;
        if (b->has_sampler) {
            TRY(gen__nn_name(name, bp, "upsamplers.0.conv"));
            TRY(gen__nn_bind_conv(w, name, out_ch, out_ch, 3, 1, 1, &b->sampler));
        }
    }
    TRY(gen__nn_bind_norm(w, "conv_norm_out", c0, groups, eps, &u->norm_out));
    TRY(gen__nn_bind_conv(w, "conv_out", cfg->out_channels, c0, 3, 1, 1, &u->conv_out));
done:
    if (st != GEN_OK) {
        gen__unet_destroy(u);
        return st;
    }
    *out = u;
    return GEN_OK;
}

/* ---- forward ------------------------------------------------------------------ */

/* x [B, L, C] in place: the three residual sub-blocks of BasicTransformerBlock. */
static gen_status tblock_forward(const tblock *b, gen__tensor *x, const gen__tensor *ctx)
{
    gen__tensor h = GEN__TENSOR_EMPTY, a = GEN__TENSOR_EMPTY, f = GEN__TENSOR_EMPTY;
    gen_status st;
    TRY(gen__nn_layer_norm_forward(&b->n1, &h, x));
    TRY(gen__nn_attn_forward(&b->a1, &a, &h, b->only_cross ? ctx : NULL, false));
    TRY(gen__add(x, x, &a));
    gen__tensor_free(&a);
    TRY(gen__layer_norm(&h, x, &b->n2.g, &b->n2.b, b->n2.eps));
    TRY(gen__nn_attn_forward(&b->a2, &a, &h, ctx, false));
    TRY(gen__add(x, x, &a));
    gen__tensor_free(&a);
    TRY(gen__layer_norm(&h, x, &b->n3.g, &b->n3.b, b->n3.eps));
    TRY(gen__nn_linear_forward(&b->ff1, &f, &h));
    gen__tensor_free(&h);
    int64_t shape[3] = {f.shape[0], f.shape[1], f.shape[2] / 2};
    TRY(gen__nn_alloc(&a, &f, 3, shape));
    TRY(gen__geglu(&a, &f));
    gen__tensor_free(&f);
    TRY(gen__nn_linear_forward(&b->ff2, &h, &a));
    TRY(gen__add(x, x, &h));
done:
    gen__tensor_free(&h);
    gen__tensor_free(&a);
    gen__tensor_free(&f);
    return st;
}

/* Transformer2DModel: out (allocated) = x + proj_out(blocks(proj_in(norm(x)))). */
static gen_status transformer_forward(const transformer *t, gen__tensor *out, const gen__tensor *x,
                                      const gen__tensor *ctx)
{
    gen__tensor h = GEN__TENSOR_EMPTY, s = GEN__TENSOR_EMPTY, r = GEN__TENSOR_EMPTY;
    const int64_t H = x->shape[2], W = x->shape[3];
    gen_status st;
    TRY(gen__nn_group_norm_forward(&t->norm, &h, x, false));
    if (t->linear) {
        TRY(gen__nn_nchw_to_nlc(&s, &h));
        gen__tensor_free(&h);
        TRY(gen__nn_linear_forward(&t->proj_in_l, &h, &s));
        gen__tensor_free(&s);
    } else {
        TRY(gen__nn_conv_forward(&t->proj_in_c, &s, &h));
        gen__tensor_free(&h);
        TRY(gen__nn_nchw_to_nlc(&h, &s));
        gen__tensor_free(&s);
    }
    for (int i = 0; i < t->n_blocks; i++)
        TRY(tblock_forward(&t->blocks[i], &h, ctx));
    if (t->linear) {
        TRY(gen__nn_linear_forward(&t->proj_out_l, &s, &h));
        gen__tensor_free(&h);
        TRY(gen__nn_nlc_to_nchw(&r, &s, H, W));
    } else {
        TRY(gen__nn_nlc_to_nchw(&s, &h, H, W));
        gen__tensor_free(&h);
        TRY(gen__nn_conv_forward(&t->proj_out_c, &r, &s));
    }
    TRY(gen__add(&r, &r, x));
    *out = r;
    r = (gen__tensor)GEN__TENSOR_EMPTY;
done:
    gen__tensor_free(&h);
    gen__tensor_free(&s);
    gen__tensor_free(&r);
    return st;
}

/* *x = f(*x): replace the tensor with a new one, freeing the old. */
static void replace(gen__tensor *x, gen__tensor *next)
{
    gen__tensor_free(x);
    *x = *next;
    *next = (gen__tensor)GEN__TENSOR_EMPTY;
}

#define MAX_SKIPS (GEN__MAX_BLOCKS * (MAX_LAYERS + 1) + 1)

gen_status gen__unet_forward(const gen__unet *u, gen__tensor *out, const gen__tensor *sample,
                             const float *timesteps, const gen__tensor *context)
{
    const gen__unet_config *cfg = &u->cfg;
    gen__tensor empty = GEN__TENSOR_EMPTY;
    *out = empty;
    if (sample->ndim != 4 || sample->shape[1] != cfg->in_channels || context->ndim != 3 ||
        context->shape[0] != sample->shape[0] || context->shape[2] != cfg->cross_attention_dim) {
        char a[GEN__SHAPE_STR_MAX], b[GEN__SHAPE_STR_MAX];
        return gen__error(GEN_EINVAL,
                          "unet: sample %s / context %s do not match the config "
                          "([N,%d,h,w] / [N,tokens,%d])",
                          gen__tensor_str(sample, a, sizeof a), gen__tensor_str(context, b, sizeof b),
                          cfg->in_channels, cfg->cross_attention_dim);
    }
    const int64_t mult = (int64_t)1 << (cfg->n_blocks - 1);
    if (sample->shape[2] % mult || sample->shape[3] % mult)
        return gen__error(GEN_EUNSUPPORTED,
                          "unet: latent size %lldx%lld is not a multiple of %lld (%d blocks)",
                          (long long)sample->shape[2], (long long)sample->shape[3],
                          (long long)mult, cfg->n_blocks);
    const int64_t n = sample->shape[0], c0 = cfg->block_out_channels[0];
    gen__tensor temb = GEN__TENSOR_EMPTY, t1 = GEN__TENSOR_EMPTY, x = GEN__TENSOR_EMPTY;
    gen__tensor y = GEN__TENSOR_EMPTY;
    gen__tensor skips[MAX_SKIPS];
    int n_skips = 0;
    gen_status st;

    /* time embedding: linear_2(silu(linear_1(sinusoids(t)))); resnets take silu(emb) */
    TRY(gen__nn_alloc(&t1, &u->time1.w, 2, (int64_t[]){n, c0}));
    TRY(gen__timestep_embedding(&t1, timesteps, (size_t)n, cfg->flip_sin_to_cos,
                                (float)cfg->freq_shift, 1.0f, 10000.0f));
    TRY(gen__nn_linear_forward(&u->time1, &y, &t1));
    TRY(gen__silu(&y, &y));
    TRY(gen__nn_linear_forward(&u->time2, &temb, &y));
    gen__tensor_free(&y);
    gen__tensor_free(&t1);
    TRY(gen__silu(&temb, &temb));

    TRY(gen__nn_conv_forward(&u->conv_in, &x, sample));
    skips[n_skips++] = x;
    x.owned = false; /* the skip list owns it; x is a borrowed alias until replaced */

    for (int i = 0; i < cfg->n_blocks; i++) {
        const unet_block *b = &u->down[i];
        for (int j = 0; j < b->n_layers; j++) {
            TRY(gen__nn_resnet_forward(&b->resnets[j], &y, &x, &temb));
            x = y;
            y = empty;
            if (b->attns[j]) {
                TRY(transformer_forward(b->attns[j], &y, &x, context));
                gen__tensor_free(&x);
                x = y;
                y = empty;
            }
            skips[n_skips++] = x;
            x.owned = false;
        }
        if (b->has_sampler) {
            TRY(gen__nn_conv_forward(&b->sampler, &y, &x));
            x = y;
            y = empty;
            skips[n_skips++] = x;
            x.owned = false;
        }
    }

    TRY(gen__nn_resnet_forward(&u->mid_res[0], &y, &x, &temb));
    x = y; /* x now owned (the last skip stays owned by the list) */
    y = empty;
    if (u->mid_attn) {
        TRY(transformer_forward(u->mid_attn, &y, &x, context));
        replace(&x, &y);
    }
    TRY(gen__nn_resnet_forward(&u->mid_res[1], &y, &x, &temb));
    replace(&x, &y);

    for (int i = 0; i < cfg->n_blocks; i++) {
        const unet_block *b = &u->up[i];
        for (int j = 0; j < b->n_layers; j++) {
            gen__tensor *skip = &skips[--n_skips];
            gen__tensor cat;
            TRY(gen__nn_alloc(&cat, &x, 4,
                              (int64_t[]){n, x.shape[1] + skip->shape[1], x.shape[2], x.shape[3]}));
            st = gen__concat(&cat, &x, skip, 1);
            gen__tensor_free(skip);
            replace(&x, &cat);
            if (st != GEN_OK)
                goto done;
            TRY(gen__nn_resnet_forward(&b->resnets[j], &y, &x, &temb));
            replace(&x, &y);
            if (b->attns[j]) {
                TRY(transformer_forward(b->attns[j], &y, &x, context));
                replace(&x, &y);
            }
        }
        if (b->has_sampler) {
            TRY(gen__nn_alloc(&y, &x, 4, (int64_t[]){n, x.shape[1], 2 * x.shape[2], 2 * x.shape[3]}));
            TRY(gen__upsample_nearest2x(&y, &x));
            replace(&x, &y);
            TRY(gen__nn_conv_forward(&b->sampler, &y, &x));
            replace(&x, &y);
        }
    }
    TRY(gen__group_norm(&x, &x, &u->norm_out.g, &u->norm_out.b, u->norm_out.groups,
                        u->norm_out.eps, true));
    TRY(gen__nn_conv_forward(&u->conv_out, out, &x));
done:
    gen__tensor_free(&temb);
    gen__tensor_free(&t1);
    gen__tensor_free(&y);
    gen__tensor_free(&x);
    for (int i = 0; i < n_skips; i++)
        gen__tensor_free(&skips[i]);
    if (st != GEN_OK)
        gen__error_prefix("unet: ");
    return st;
}
