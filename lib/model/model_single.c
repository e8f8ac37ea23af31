/* Single-file checkpoints in the original LDM/CompVis key naming: one
 * .safetensors holding model.diffusion_model.* (UNet), first_stage_model.*
 * (VAE) and cond_stage_model.* (text encoder). Tensors are renamed to the
 * diffusers names; without a config folder the configs are derived from the
 * tensor shapes plus the family's reference values. */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "model/ldm_keys.h"
#include "model/model_internal.h"

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Reference scheduler configs of the families (as their diffusers repositories ship them). */
static const char sd1_scheduler[] =
    "{\"_class_name\": \"PNDMScheduler\", \"beta_end\": 0.012, \"beta_schedule\": "
    "\"scaled_linear\", \"beta_start\": 0.00085, \"clip_sample\": false, "
    "\"num_train_timesteps\": 1000, \"set_alpha_to_one\": false, \"skip_prk_steps\": true, "
    "\"steps_offset\": 1, \"trained_betas\": null}";
static const char sd2_scheduler[] =
    "{\"_class_name\": \"DDIMScheduler\", \"beta_end\": 0.012, \"beta_schedule\": "
    "\"scaled_linear\", \"beta_start\": 0.00085, \"clip_sample\": false, "
    "\"num_train_timesteps\": 1000, \"set_alpha_to_one\": false, \"skip_prk_steps\": true, "
    "\"steps_offset\": 1, \"trained_betas\": null}";

gen_status gen__model_default_scheduler(gen__model *m)
{
    const char *text = m->family == GEN__FAMILY_SD2 ? sd2_scheduler : sd1_scheduler;
    gen__scheduler_config_free(&m->scheduler);
    gen_status st = gen__scheduler_config_parse("built-in scheduler config", text, strlen(text),
                                                &m->scheduler);
    if (st != GEN_OK)
        return st;
    if (m->family == GEN__FAMILY_SD2 && m->layout == GEN__LAYOUT_SINGLE_FILE) {
        /* diffusers' single-file loader assumes v-prediction for SD2 (the 768-v model). */
        m->scheduler.prediction_type = GEN__PRED_V;
        m->scheduler.present |= GEN__SK_PREDICTION_TYPE;
    }
    return GEN_OK;
}

/* ---------------------------------------------------------------- structure from keys */

/* layers_per_block: the first downsampler sits at input_blocks.{L+1}. */
static int find_layers_per_block(const gen__st_file *f)
{
    int first_op = -1, max_index = -1;
    const size_t pl = strlen(GEN__LDM_UNET_PREFIX "input_blocks.");
    for (size_t i = 0; i < gen__st_count(f); i++) {
        const char *name = gen__st_at(f, i)->name;
        if (!has_prefix(name, GEN__LDM_UNET_PREFIX "input_blocks."))
            continue;
        int n = 0;
        const char *p = name + pl;
        while (*p >= '0' && *p <= '9' && n < 100000)
            n = n * 10 + (*p++ - '0');
        if (n > max_index)
            max_index = n;
        if (strncmp(p, ".0.op.", 6) == 0 && (first_op < 0 || n < first_op))
            first_op = n;
    }
    if (first_op > 1)
        return first_op - 1;
    return max_index >= 1 ? max_index : 0; /* one block, no downsampler */
}

static int find_vae_blocks(const gen__st_file *f)
{
    int max_index = -1;
    const char *prefix = GEN__LDM_VAE_PREFIX "encoder.down.";
    for (size_t i = 0; i < gen__st_count(f); i++) {
        const char *name = gen__st_at(f, i)->name;
        if (!has_prefix(name, prefix))
            continue;
        int n = 0;
        const char *p = name + strlen(prefix);
        while (*p >= '0' && *p <= '9' && n < 100000)
            n = n * 10 + (*p++ - '0');
        if (n > max_index)
            max_index = n;
    }
    return max_index + 1;
}

static int find_openclip_layers(const gen__st_file *f)
{
    int max_index = -1;
    const char *prefix = GEN__LDM_OPENCLIP_PREFIX "transformer.resblocks.";
    for (size_t i = 0; i < gen__st_count(f); i++) {
        const char *name = gen__st_at(f, i)->name;
        if (!has_prefix(name, prefix))
            continue;
        int n = 0;
        const char *p = name + strlen(prefix);
        while (*p >= '0' && *p <= '9' && n < 100000)
            n = n * 10 + (*p++ - '0');
        if (n > max_index)
            max_index = n;
    }
    return max_index + 1;
}

/* ---------------------------------------------------------------- renaming */

static gen_status unmapped(const gen__model *m, const char *key)
{
    return gen__error(GEN_EFORMAT, "%s: tensor '%s' has no diffusers counterpart (unknown layout)",
                      m->path, key);
}

static gen_status add_openclip(gen__model *m, const gen__st_view *t, const char *key,
                               int n_layers)
{
    char name[GEN__NAME_MAX];
    bool split, skip;
    const char *suffix;
    int layer;
    if (!gen__openclip_text_name(key + strlen(GEN__LDM_OPENCLIP_PREFIX), name, sizeof(name), &split,
                                 &suffix, &layer, &skip))
        return unmapped(m, key);
    /* SD2 conditions on the penultimate layer: diffusers' text encoder has one
     * layer fewer than the OpenCLIP model and never loads the last one. */
    if (skip || layer == n_layers - 1)
        return GEN_OK;
    if (!split)
        return gen__model_add(m, GEN__PART_TEXT_ENCODER, t, name);
    bool weight = strcmp(suffix, "weight") == 0;
    if (t->ndim != (weight ? 2 : 1) || t->shape[0] % 3 != 0 || t->shape[0] == 0 ||
        (weight && t->shape[1] != t->shape[0] / 3)) {
        char shape[160];
        gen__shape_format(t, shape, sizeof(shape));
        return gen__error(GEN_EFORMAT, "%s: tensor '%s' has shape %s; a fused q/k/v projection of "
                                       "width D must be [3D, D] (weight) or [3D] (bias)",
                          m->path, key, shape);
    }
    static const char *const qkv[3] = {"q_proj", "k_proj", "v_proj"};
    size_t third = t->nbytes / 3;
    for (int k = 0; k < 3; k++) {
        gen__st_view v = *t; /* rows [kD, (k+1)D): contiguous, still zero copy */
        v.shape[0] = t->shape[0] / 3;
        v.numel = t->numel / 3;
        v.nbytes = third;
        v.data = (const unsigned char *)t->data + (size_t)k * third;
        v.aligned = ((uintptr_t)v.data % gen__st_dtype_size(v.dtype)) == 0;
        char full[GEN__NAME_MAX];
        int w = snprintf(full, sizeof(full), "%s%s.%s", name, qkv[k], suffix);
        if (w < 0 || (size_t)w >= sizeof(full))
            return unmapped(m, key);
        gen_status st = gen__model_add(m, GEN__PART_TEXT_ENCODER, &v, full);
        if (st != GEN_OK)
            return st;
    }
    return GEN_OK;
}

static gen_status rename_all(gen__model *m, const gen__st_file *f, int L, int vae_blocks,
                             int openclip_layers)
{
    for (size_t i = 0; i < gen__st_count(f); i++) {
        const gen__st_view *t = gen__st_at(f, i);
        const char *key = t->name;
        char name[GEN__NAME_MAX];
        gen_status st = GEN_OK;
        if (has_prefix(key, GEN__LDM_UNET_PREFIX)) {
            if (!gen__ldm_unet_name(key + strlen(GEN__LDM_UNET_PREFIX), L, name, sizeof(name)))
                return unmapped(m, key);
            st = gen__model_add(m, GEN__PART_UNET, t, name);
        } else if (has_prefix(key, GEN__LDM_VAE_PREFIX)) {
            bool squeeze;
            if (!gen__ldm_vae_name(key + strlen(GEN__LDM_VAE_PREFIX), vae_blocks, name,
                                   sizeof(name), &squeeze))
                return unmapped(m, key);
            gen__st_view v = *t;
            if (squeeze && t->ndim != 2) {
                /* LDM keeps the mid-block attention projections as 1x1 convs
                 * (some converted files already store them as [C, C]). */
                if (t->ndim != 4 || t->shape[2] != 1 || t->shape[3] != 1) {
                    char shape[160];
                    gen__shape_format(t, shape, sizeof(shape));
                    return gen__error(GEN_EFORMAT,
                                      "%s: tensor '%s' has shape %s, expected [C, C, 1, 1]",
                                      m->path, key, shape);
                }
                v.ndim = 2;
            }
            st = gen__model_add(m, GEN__PART_VAE, &v, name);
        } else if (has_prefix(key, GEN__LDM_CLIP_PREFIX)) {
            bool skip;
            if (!gen__clip_text_name(key + strlen(GEN__LDM_CLIP_PREFIX), name, sizeof(name), &skip))
                return unmapped(m, key);
            if (!skip)
                st = gen__model_add(m, GEN__PART_TEXT_ENCODER, t, name);
        } else if (has_prefix(key, GEN__LDM_OPENCLIP_PREFIX)) {
            st = add_openclip(m, t, key, openclip_layers);
        }
        /* Anything else (EMA copies, alphas_cumprod, ...) is not part of the model we run. */
        if (st != GEN_OK)
            return st;
    }
    return GEN_OK;
}

/* Recognised-but-unsupported files: parts keep the file's names, grouped by prefix. */
static gen_status group_raw(gen__model *m, const gen__st_file *f)
{
    static const struct {
        const char *prefix;
        gen__part part;
    } groups[] = {{GEN__LDM_UNET_PREFIX, GEN__PART_UNET},
                  {GEN__LDM_VAE_PREFIX, GEN__PART_VAE},
                  {"conditioner.", GEN__PART_TEXT_ENCODER},
                  {"cond_stage_model.", GEN__PART_TEXT_ENCODER}};
    for (size_t i = 0; i < gen__st_count(f); i++) {
        const gen__st_view *t = gen__st_at(f, i);
        for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
            if (has_prefix(t->name, groups[g].prefix)) {
                gen_status st = gen__model_add(m, groups[g].part, t, t->name);
                if (st != GEN_OK)
                    return st;
                break;
            }
    }
    return GEN_OK;
}

/* ---------------------------------------------------------------- configs from shapes */

/* Find "<head><a><tail>". */
static const gen__st_view *findf(const gen__model *m, gen__part part, const char *head, int a,
                                     const char *tail)
{
    char name[GEN__NAME_MAX];
    snprintf(name, sizeof(name), "%s%d%s", head, a, tail);
    return gen__model_find(m, part, name);
}

static gen_status need(const gen__model *m, gen__part part, const char *name, int ndim,
                       const gen__st_view **out)
{
    *out = gen__model_find(m, part, name);
    if (!*out)
        return gen__error(GEN_EFORMAT, "%s: %s tensor '%s' is missing", m->path,
                          gen__part_name(part), name);
    if ((*out)->ndim != ndim)
        return gen__error(GEN_EFORMAT, "%s: %s tensor '%s' has %d dimensions, expected %d",
                          m->path, gen__part_name(part), name, (*out)->ndim, ndim);
    return GEN_OK;
}

static gen_status derive_unet(gen__model *m, int L)
{
    gen__unet_config c;
    gen__unet_config_defaults(&c);
    const gen__st_view *t;
    gen_status st = need(m, GEN__PART_UNET, "conv_in.weight", 4, &t);
    if (st != GEN_OK)
        return st;
    c.in_channels = (int)t->shape[1];
    st = need(m, GEN__PART_UNET, "conv_out.weight", 4, &t);
    if (st != GEN_OK)
        return st;
    c.out_channels = (int)t->shape[0];
    int n = 0;
    while (n < GEN__MAX_BLOCKS &&
           (t = findf(m, GEN__PART_UNET, "down_blocks.", n, ".resnets.0.conv1.weight")) != NULL)
        c.block_out_channels[n++] = (int)t->shape[0];
    if (n == 0)
        return gen__error(GEN_EFORMAT, "%s: no UNet down blocks found", m->path);
    c.n_blocks = n;
    c.layers_per_block = L;
    const bool sd2 = m->family == GEN__FAMILY_SD2;
    for (int i = 0; i < n; i++) {
        c.down_blocks[i] =
            findf(m, GEN__PART_UNET, "down_blocks.", i, ".attentions.0.proj_in.weight")
                ? GEN__BLOCK_CROSS_ATTN
                : GEN__BLOCK_PLAIN;
        c.up_blocks[i] = findf(m, GEN__PART_UNET, "up_blocks.", i, ".attentions.0.proj_in.weight")
                             ? GEN__BLOCK_CROSS_ATTN
                             : GEN__BLOCK_PLAIN;
        /* SD1 checkpoints use 8 heads everywhere, SD2 a head width of 64. */
        c.attention_heads[i] = sd2 ? c.block_out_channels[i] / 64 : 8;
        int k = 0;
        char name[GEN__NAME_MAX];
        do {
            snprintf(name, sizeof(name),
                     "down_blocks.%d.attentions.0.transformer_blocks.%d.attn1.to_q.weight", i, k);
        } while (gen__model_find(m, GEN__PART_UNET, name) && ++k < 64);
        c.transformer_layers[i] = k > 0 ? k : 1;
    }
    c.mid_block_cross_attn = gen__model_find(m, GEN__PART_UNET, "mid_block.attentions.0.proj_in.weight");
    const gen__st_view *proj = gen__model_find(m, GEN__PART_UNET, "mid_block.attentions.0.proj_in.weight");
    const gen__st_view *to_k = gen__model_find(
        m, GEN__PART_UNET, "mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight");
    if (!proj || !to_k || to_k->ndim != 2)
        return gen__error(GEN_EFORMAT, "%s: the UNet has no mid-block cross-attention", m->path);
    c.use_linear_projection = proj->ndim == 2;
    c.cross_attention_dim = (int)to_k->shape[1];
    c.upcast_attention = sd2 && m->prediction == GEN__PRED_V;
    c.sample_size = sd2 && m->prediction == GEN__PRED_V ? 96 : 64;
    st = gen__unet_config_validate(m->path, &c);
    if (st == GEN_OK)
        m->unet = c;
    return st;
}

static gen_status derive_vae(gen__model *m)
{
    gen__vae_config c;
    gen__vae_config_defaults(&c);
    const gen__st_view *t;
    int n = 0;
    while (n < GEN__MAX_BLOCKS &&
           (t = findf(m, GEN__PART_VAE, "encoder.down_blocks.", n, ".resnets.0.conv1.weight")))
        c.block_out_channels[n++] = (int)t->shape[0];
    if (n == 0)
        return gen__error(GEN_EFORMAT, "%s: no VAE encoder blocks found", m->path);
    c.n_blocks = n;
    int layers = 0;
    while (layers < 64 &&
           findf(m, GEN__PART_VAE, "encoder.down_blocks.0.resnets.", layers, ".conv1.weight"))
        layers++;
    c.layers_per_block = layers;
    gen_status st = need(m, GEN__PART_VAE, "encoder.conv_in.weight", 4, &t);
    if (st != GEN_OK)
        return st;
    c.in_channels = (int)t->shape[1];
    if ((st = need(m, GEN__PART_VAE, "decoder.conv_out.weight", 4, &t)) != GEN_OK)
        return st;
    c.out_channels = (int)t->shape[0];
    if ((st = need(m, GEN__PART_VAE, "decoder.conv_in.weight", 4, &t)) != GEN_OK)
        return st;
    c.latent_channels = (int)t->shape[1];
    c.use_quant_conv = gen__model_find(m, GEN__PART_VAE, "quant_conv.weight") != NULL;
    c.use_post_quant_conv = gen__model_find(m, GEN__PART_VAE, "post_quant_conv.weight") != NULL;
    c.mid_block_add_attention =
        gen__model_find(m, GEN__PART_VAE, "encoder.mid_block.attentions.0.to_q.weight") != NULL;
    c.sample_size = m->family == GEN__FAMILY_SD2 && m->prediction == GEN__PRED_V ? 768 : 512;
    st = gen__vae_config_validate(m->path, &c);
    if (st == GEN_OK)
        m->vae = c;
    return st;
}

static gen_status derive_text(gen__model *m)
{
    gen__text_config c;
    gen__text_config_defaults(&c);
    const gen__st_view *t;
    gen_status st = need(m, GEN__PART_TEXT_ENCODER, "text_model.embeddings.token_embedding.weight",
                         2, &t);
    if (st != GEN_OK)
        return st;
    c.vocab_size = (int)t->shape[0];
    c.hidden_size = (int)t->shape[1];
    if ((st = need(m, GEN__PART_TEXT_ENCODER, "text_model.embeddings.position_embedding.weight", 2,
                   &t)) != GEN_OK)
        return st;
    c.max_position_embeddings = (int)t->shape[0];
    int layers = 0;
    while (layers < 1024 &&
           findf(m, GEN__PART_TEXT_ENCODER, "text_model.encoder.layers.", layers, ".layer_norm1.weight"))
        layers++;
    if (layers == 0)
        return gen__error(GEN_EFORMAT, "%s: the text encoder has no layers", m->path);
    c.num_hidden_layers = layers;
    if ((st = need(m, GEN__PART_TEXT_ENCODER, "text_model.encoder.layers.0.mlp.fc1.weight", 2,
                   &t)) != GEN_OK)
        return st;
    c.intermediate_size = (int)t->shape[0];
    /* CLIP ViT-L/14 and OpenCLIP ViT-H/14 both use heads of width 64. */
    c.num_attention_heads = c.hidden_size / 64;
    if (c.num_attention_heads < 1 || c.hidden_size % 64 != 0)
        return gen__error(GEN_EFORMAT,
                          "%s: text hidden size %d is not a multiple of the head width 64",
                          m->path, c.hidden_size);
    bool sd2 = m->family == GEN__FAMILY_SD2;
    c.hidden_act = sd2 ? GEN__ACT_GELU : GEN__ACT_QUICK_GELU;
    c.projection_dim = sd2 ? 512 : 768;
    c.bos_token_id = 0; /* what the reference SD1/SD2 text_encoder configs say */
    c.eos_token_id = 2;
    c.pad_token_id = 1;
    st = gen__text_config_validate(m->path, &c);
    if (st == GEN_OK)
        m->text = c;
    return st;
}

/* ---------------------------------------------------------------- load */

gen_status gen__model_load_single(gen__model *m, const gen__model_open_options *opts)
{
    gen__st_file *f;
    gen_status st = gen__st_open(&f, m->path);
    if (st != GEN_OK)
        return st;
    st = gen__model_keep_file(m, f);
    if (st != GEN_OK)
        return st;

    bool sd1_text = false, openclip = false, sdxl = false, unet = false, vae = false;
    for (size_t i = 0; i < gen__st_count(f); i++) {
        const char *name = gen__st_at(f, i)->name;
        sd1_text |= has_prefix(name, GEN__LDM_CLIP_PREFIX);
        openclip |= has_prefix(name, GEN__LDM_OPENCLIP_PREFIX);
        sdxl |= has_prefix(name, GEN__LDM_SDXL_PREFIX);
        unet |= has_prefix(name, GEN__LDM_UNET_PREFIX);
        vae |= has_prefix(name, GEN__LDM_VAE_PREFIX);
    }
    if (sdxl) {
        m->family = GEN__FAMILY_SDXL;
        m->supported = false;
        m->prediction = GEN__PRED_EPSILON;
        return group_raw(m, f);
    }
    if (!unet)
        return gen__error(GEN_EFORMAT,
                          "%s: no UNet weights (model.diffusion_model.*): not a Stable Diffusion "
                          "single-file checkpoint",
                          m->path);
    if (!vae)
        return gen__error(GEN_EFORMAT, "%s: no VAE weights (first_stage_model.*) in the file",
                          m->path);
    if (!sd1_text && !openclip)
        return gen__error(GEN_EFORMAT,
                          "%s: no text encoder weights (cond_stage_model.transformer.* for SD1, "
                          "cond_stage_model.model.* for SD2)",
                          m->path);
    m->family = openclip ? GEN__FAMILY_SD2 : GEN__FAMILY_SD1;

    int L = find_layers_per_block(f);
    int vae_blocks = find_vae_blocks(f);
    if (L < 1 || vae_blocks < 1)
        return gen__error(GEN_EFORMAT, "%s: cannot find the UNet/VAE block structure", m->path);
    st = rename_all(m, f, L, vae_blocks, openclip ? find_openclip_layers(f) : 0);
    if (st == GEN_OK)
        st = gen__model_finish_parts(m);
    if (st != GEN_OK)
        return st;

    if (opts->config_dir) {
        st = gen__model_read_configs(m, opts->config_dir, false);
        if (st != GEN_OK)
            return gen__error_prefix("config folder for %s: ", m->path);
        if (m->unet.layers_per_block != L || m->vae.n_blocks != vae_blocks)
            return gen__error(GEN_EFORMAT,
                              "%s: the config folder %s describes layers_per_block %d and %d VAE "
                              "blocks, the checkpoint has %d and %d",
                              m->path, opts->config_dir, m->unet.layers_per_block,
                              m->vae.n_blocks, L, vae_blocks);
    }
    if (!opts->config_dir || m->scheduler.num_train_timesteps == 0) {
        st = gen__model_default_scheduler(m);
        if (st != GEN_OK)
            return st;
    }
    if (opts->prediction >= 0) {
        m->scheduler.prediction_type = (gen__prediction)opts->prediction;
        m->scheduler.present |= GEN__SK_PREDICTION_TYPE;
    }
    m->prediction = m->scheduler.prediction_type;
    if (!opts->config_dir) {
        st = derive_unet(m, L);
        if (st == GEN_OK)
            st = derive_vae(m);
        if (st == GEN_OK)
            st = derive_text(m);
        if (st != GEN_OK)
            return gen__error_prefix("deriving the config from tensor shapes (pass a diffusers "
                                     "config folder to override): ");
    }
    return GEN_OK;
}
