#include "model/config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/error.h"
#include "model/json_get.h"

#define TRY(expr)                  \
    do {                           \
        gen_status st_ = (expr);   \
        if (st_ != GEN_OK) {       \
            json_decref(root);     \
            return st_;            \
        }                          \
    } while (0)

#define MAX_CHANNELS 65536

/* A key that changes the architecture in a way libgen does not implement:
 * accepted only when absent, null, or equal to the one value we run. */
static gen_status require_string(const char *label, json_t *obj, const char *key,
                                 const char *expected)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return GEN_OK;
    if (expected && json_is_string(v) && strcmp(json_string_value(v), expected) == 0)
        return GEN_OK;
    if (json_is_string(v))
        return gen__error(GEN_EUNSUPPORTED, "%s: \"%s\" = \"%.64s\" is not supported (only %s%s%s)",
                          label, key, json_string_value(v), expected ? "\"" : "null",
                          expected ? expected : "", expected ? "\"" : "");
    return gen__error(expected ? GEN_EFORMAT : GEN_EUNSUPPORTED, "%s: \"%s\" %s", label, key,
                      expected ? "must be a string" : "is not supported (only null)");
}

static gen_status require_false(const char *label, json_t *obj, const char *key)
{
    bool b = false;
    gen_status st = gen__json_get_bool(label, obj, key, &b, NULL);
    if (st == GEN_OK && b)
        return gen__error(GEN_EUNSUPPORTED, "%s: \"%s\" = true is not supported", label, key);
    return st;
}

static gen_status require_int(const char *label, json_t *obj, const char *key, int expected)
{
    int v = expected;
    gen_status st = gen__json_get_int(label, obj, key, -1000000, 1000000, &v, NULL);
    if (st == GEN_OK && v != expected)
        return gen__error(GEN_EUNSUPPORTED, "%s: \"%s\" = %d is not supported (only %d)", label,
                          key, v, expected);
    return st;
}

static gen_status require_null(const char *label, json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (v && !json_is_null(v))
        return gen__error(GEN_EUNSUPPORTED, "%s: \"%s\" is set; only null is supported", label, key);
    return GEN_OK;
}

/* ---------------------------------------------------------------- UNet */

static const char *const down_names[] = {"DownBlock2D", "CrossAttnDownBlock2D", NULL};
static const char *const up_names[] = {"UpBlock2D", "CrossAttnUpBlock2D", NULL};

void gen__unet_config_defaults(gen__unet_config *c)
{
    static const int ch[4] = {320, 640, 1280, 1280};
    memset(c, 0, sizeof(*c));
    c->sample_size = 64; /* diffusers: None; every SD1/SD2-base config says 64 */
    c->in_channels = 4;
    c->out_channels = 4;
    c->n_blocks = 4;
    for (int i = 0; i < 4; i++) {
        c->block_out_channels[i] = ch[i];
        c->down_blocks[i] = i < 3 ? GEN__BLOCK_CROSS_ATTN : GEN__BLOCK_PLAIN;
        c->up_blocks[i] = i == 0 ? GEN__BLOCK_PLAIN : GEN__BLOCK_CROSS_ATTN;
        c->attention_heads[i] = 8;
        c->transformer_layers[i] = 1;
    }
    c->layers_per_block = 2;
    c->cross_attention_dim = 1280;
    c->flip_sin_to_cos = true;
    c->norm_num_groups = 32;
    c->norm_eps = 1e-5;
    c->downsample_padding = 1;
    c->mid_block_scale_factor = 1.0;
    c->mid_block_cross_attn = true;
}

gen_status gen__unet_config_parse(const char *label, const char *text, size_t len,
                                  gen__unet_config *out)
{
    json_t *root;
    gen_status st = gen__json_parse_object(label, text, len, &root);
    if (st != GEN_OK)
        return st;
    gen__unet_config c;
    gen__unet_config_defaults(&c);
    int n_down = c.n_blocks, n_up = c.n_blocks, n_ch = c.n_blocks;
    int tmp[GEN__MAX_BLOCKS];
    bool present;

    TRY(gen__json_get_int(label, root, "sample_size", 1, 4096, &c.sample_size, NULL));
    TRY(gen__json_get_int(label, root, "in_channels", 1, 1024, &c.in_channels, NULL));
    TRY(gen__json_get_int(label, root, "out_channels", 1, 1024, &c.out_channels, NULL));
    TRY(gen__json_get_int_list(label, root, "block_out_channels", GEN__MAX_BLOCKS, 1, MAX_CHANNELS,
                               c.block_out_channels, &n_ch, NULL));
    TRY(gen__json_get_enum_list(label, root, "down_block_types", GEN__MAX_BLOCKS, down_names, tmp,
                                &n_down, &present));
    if (present)
        for (int i = 0; i < n_down; i++)
            c.down_blocks[i] = (gen__unet_block)tmp[i];
    TRY(gen__json_get_enum_list(label, root, "up_block_types", GEN__MAX_BLOCKS, up_names, tmp,
                                &n_up, &present));
    if (present)
        for (int i = 0; i < n_up; i++)
            c.up_blocks[i] = (gen__unet_block)tmp[i];
    if (n_down != n_ch || n_up != n_ch) {
        json_decref(root);
        return gen__error(GEN_EFORMAT,
                          "%s: block_out_channels has %d entries but down_block_types %d and "
                          "up_block_types %d",
                          label, n_ch, n_down, n_up);
    }
    c.n_blocks = n_ch;

    int layers[GEN__MAX_BLOCKS];
    layers[0] = c.layers_per_block;
    TRY(gen__json_get_int_or_list(label, root, "layers_per_block", c.n_blocks, 1, 64, layers,
                                  &present));
    if (present) {
        for (int i = 1; i < c.n_blocks; i++)
            if (layers[i] != layers[0]) {
                json_decref(root);
                return gen__error(GEN_EUNSUPPORTED,
                                  "%s: \"layers_per_block\" differs between blocks; not supported",
                                  label);
            }
        c.layers_per_block = layers[0];
    }
    /* diffusers' naming quirk: for SD1/SD2 "attention_head_dim" holds the
     * number of heads; "num_attention_heads", when set, wins. */
    TRY(gen__json_get_int_or_list(label, root, "attention_head_dim", c.n_blocks, 1, 4096,
                                  c.attention_heads, NULL));
    TRY(gen__json_get_int_or_list(label, root, "num_attention_heads", c.n_blocks, 1, 4096,
                                  c.attention_heads, NULL));
    for (int i = 0; i < c.n_blocks; i++)
        c.transformer_layers[i] = 1;
    TRY(gen__json_get_int_or_list(label, root, "transformer_layers_per_block", c.n_blocks, 1, 64,
                                  c.transformer_layers, NULL));
    TRY(gen__json_get_bool_or_list(label, root, "only_cross_attention", c.n_blocks,
                                   c.only_cross_attention, NULL));
    TRY(gen__json_get_int(label, root, "cross_attention_dim", 1, MAX_CHANNELS,
                          &c.cross_attention_dim, NULL));
    TRY(gen__json_get_bool(label, root, "use_linear_projection", &c.use_linear_projection, NULL));
    TRY(gen__json_get_bool(label, root, "upcast_attention", &c.upcast_attention, NULL));
    TRY(gen__json_get_bool(label, root, "flip_sin_to_cos", &c.flip_sin_to_cos, NULL));
    TRY(gen__json_get_int(label, root, "freq_shift", -100000, 100000, &c.freq_shift, NULL));
    TRY(gen__json_get_bool(label, root, "center_input_sample", &c.center_input_sample, NULL));
    TRY(gen__json_get_int(label, root, "norm_num_groups", 1, MAX_CHANNELS, &c.norm_num_groups,
                          NULL));
    TRY(gen__json_get_double(label, root, "norm_eps", 0.0, 1.0, &c.norm_eps, NULL));
    TRY(gen__json_get_int(label, root, "downsample_padding", 0, 16, &c.downsample_padding, NULL));
    TRY(gen__json_get_double(label, root, "mid_block_scale_factor", -1e6, 1e6,
                             &c.mid_block_scale_factor, NULL));
    TRY(require_string(label, root, "mid_block_type", "UNetMidBlock2DCrossAttn"));

    /* Architecture variants libgen does not implement. */
    TRY(require_string(label, root, "act_fn", "silu"));
    TRY(require_string(label, root, "time_embedding_type", "positional"));
    TRY(require_string(label, root, "resnet_time_scale_shift", "default"));
    TRY(require_string(label, root, "attention_type", "default"));
    TRY(require_null(label, root, "class_embed_type"));
    TRY(require_null(label, root, "num_class_embeds"));
    TRY(require_null(label, root, "encoder_hid_dim"));
    TRY(require_null(label, root, "encoder_hid_dim_type"));
    TRY(require_null(label, root, "time_cond_proj_dim"));
    TRY(require_null(label, root, "time_embedding_dim"));
    TRY(require_null(label, root, "time_embedding_act_fn"));
    TRY(require_null(label, root, "timestep_post_act"));
    TRY(require_null(label, root, "cross_attention_norm"));
    TRY(require_null(label, root, "reverse_transformer_layers_per_block"));
    TRY(require_false(label, root, "dual_cross_attention"));
    TRY(require_false(label, root, "resnet_skip_time_act"));
    TRY(require_false(label, root, "class_embeddings_concat"));
    TRY(require_false(label, root, "mid_block_only_cross_attention"));
    TRY(require_int(label, root, "conv_in_kernel", 3));
    TRY(require_int(label, root, "conv_out_kernel", 3));
    double scale = 1.0;
    TRY(gen__json_get_double(label, root, "resnet_out_scale_factor", -1e6, 1e6, &scale, NULL));
    if (scale != 1.0) {
        json_decref(root);
        return gen__error(GEN_EUNSUPPORTED, "%s: \"resnet_out_scale_factor\" = %g is not supported",
                          label, scale);
    }
    /* SDXL: recognised so the family can be reported; run later. */
    static const char *const addition_names[] = {"text_time", NULL};
    int addition = -1;
    TRY(gen__json_get_enum(label, root, "addition_embed_type", addition_names, &addition, NULL));
    c.addition_text_time = addition == 0;
    TRY(gen__json_get_int(label, root, "addition_time_embed_dim", 1, MAX_CHANNELS,
                          &c.addition_time_embed_dim, NULL));
    TRY(gen__json_get_int(label, root, "projection_class_embeddings_input_dim", 1, 1 << 20,
                          &c.projection_class_embeddings_input_dim, NULL));
    json_decref(root);

    st = gen__unet_config_validate(label, &c);
    if (st == GEN_OK)
        *out = c;
    return st;
}

gen_status gen__unet_config_validate(const char *label, const gen__unet_config *c)
{
    if (c->n_blocks < 1 || c->n_blocks > GEN__MAX_BLOCKS)
        return gen__error(GEN_EFORMAT, "%s: %d blocks (1 to %d supported)", label, c->n_blocks,
                          GEN__MAX_BLOCKS);
    if (c->layers_per_block < 1)
        return gen__error(GEN_EFORMAT, "%s: layers_per_block must be >= 1", label);
    for (int i = 0; i < c->n_blocks; i++) {
        int ch = c->block_out_channels[i];
        if (ch < 1 || ch % c->norm_num_groups != 0)
            return gen__error(GEN_EFORMAT,
                              "%s: block_out_channels[%d] = %d is not a multiple of norm_num_groups %d",
                              label, i, ch, c->norm_num_groups);
        bool attn = c->down_blocks[i] == GEN__BLOCK_CROSS_ATTN ||
                    c->up_blocks[c->n_blocks - 1 - i] == GEN__BLOCK_CROSS_ATTN ||
                    (i == c->n_blocks - 1 && c->mid_block_cross_attn);
        if (attn && (c->attention_heads[i] < 1 || ch % c->attention_heads[i] != 0))
            return gen__error(GEN_EFORMAT,
                              "%s: block_out_channels[%d] = %d is not divisible by its %d attention "
                              "heads",
                              label, i, ch, c->attention_heads[i]);
        if (c->transformer_layers[i] < 1)
            return gen__error(GEN_EFORMAT, "%s: transformer_layers_per_block[%d] must be >= 1",
                              label, i);
    }
    if (c->in_channels < 1 || c->out_channels < 1 || c->cross_attention_dim < 1)
        return gen__error(GEN_EFORMAT, "%s: channel counts must be positive", label);
    return GEN_OK;
}

/* ---------------------------------------------------------------- VAE */

static const char *const vae_down_names[] = {"DownEncoderBlock2D", NULL};
static const char *const vae_up_names[] = {"UpDecoderBlock2D", NULL};

void gen__vae_config_defaults(gen__vae_config *c)
{
    memset(c, 0, sizeof(*c));
    c->in_channels = 3;
    c->out_channels = 3;
    c->latent_channels = 4;
    c->n_blocks = 1;
    c->block_out_channels[0] = 64;
    c->layers_per_block = 1;
    c->norm_num_groups = 32;
    c->sample_size = 32;
    c->scaling_factor = 0.18215;
    c->force_upcast = true;
    c->use_quant_conv = true;
    c->use_post_quant_conv = true;
    c->mid_block_add_attention = true;
}

gen_status gen__vae_config_parse(const char *label, const char *text, size_t len,
                                 gen__vae_config *out)
{
    json_t *root;
    gen_status st = gen__json_parse_object(label, text, len, &root);
    if (st != GEN_OK)
        return st;
    gen__vae_config c;
    gen__vae_config_defaults(&c);
    int n_ch = c.n_blocks, n_down = 1, n_up = 1, tmp[GEN__MAX_BLOCKS];
    bool down_present, up_present;
    TRY(gen__json_get_int(label, root, "in_channels", 1, 1024, &c.in_channels, NULL));
    TRY(gen__json_get_int(label, root, "out_channels", 1, 1024, &c.out_channels, NULL));
    TRY(gen__json_get_int(label, root, "latent_channels", 1, 1024, &c.latent_channels, NULL));
    TRY(gen__json_get_int_list(label, root, "block_out_channels", GEN__MAX_BLOCKS, 1, MAX_CHANNELS,
                               c.block_out_channels, &n_ch, NULL));
    TRY(gen__json_get_enum_list(label, root, "down_block_types", GEN__MAX_BLOCKS, vae_down_names,
                                tmp, &n_down, &down_present));
    TRY(gen__json_get_enum_list(label, root, "up_block_types", GEN__MAX_BLOCKS, vae_up_names, tmp,
                                &n_up, &up_present));
    if (!down_present || !up_present || n_down != n_ch || n_up != n_ch) {
        json_decref(root);
        return gen__error(GEN_EFORMAT,
                          "%s: down_block_types and up_block_types must list one block per entry "
                          "of block_out_channels (%d)",
                          label, n_ch);
    }
    c.n_blocks = n_ch;
    TRY(gen__json_get_int(label, root, "layers_per_block", 1, 64, &c.layers_per_block, NULL));
    TRY(gen__json_get_int(label, root, "norm_num_groups", 1, MAX_CHANNELS, &c.norm_num_groups,
                          NULL));
    TRY(gen__json_get_int(label, root, "sample_size", 1, 1 << 16, &c.sample_size, NULL));
    TRY(gen__json_get_double(label, root, "scaling_factor", 1e-6, 1e6, &c.scaling_factor, NULL));
    TRY(gen__json_get_double(label, root, "shift_factor", -1e6, 1e6, &c.shift_factor,
                             &c.has_shift_factor));
    TRY(gen__json_get_bool(label, root, "force_upcast", &c.force_upcast, NULL));
    TRY(gen__json_get_bool(label, root, "use_quant_conv", &c.use_quant_conv, NULL));
    TRY(gen__json_get_bool(label, root, "use_post_quant_conv", &c.use_post_quant_conv, NULL));
    TRY(gen__json_get_bool(label, root, "mid_block_add_attention", &c.mid_block_add_attention,
                           NULL));
    TRY(require_string(label, root, "act_fn", "silu"));
    TRY(require_null(label, root, "latents_mean"));
    TRY(require_null(label, root, "latents_std"));
    json_decref(root);
    st = gen__vae_config_validate(label, &c);
    if (st == GEN_OK)
        *out = c;
    return st;
}

gen_status gen__vae_config_validate(const char *label, const gen__vae_config *c)
{
    if (c->n_blocks < 1 || c->n_blocks > GEN__MAX_BLOCKS)
        return gen__error(GEN_EFORMAT, "%s: %d blocks (1 to %d supported)", label, c->n_blocks,
                          GEN__MAX_BLOCKS);
    for (int i = 0; i < c->n_blocks; i++)
        if (c->block_out_channels[i] < 1 || c->block_out_channels[i] % c->norm_num_groups != 0)
            return gen__error(GEN_EFORMAT,
                              "%s: block_out_channels[%d] = %d is not a multiple of norm_num_groups %d",
                              label, i, c->block_out_channels[i], c->norm_num_groups);
    if (c->layers_per_block < 1 || c->latent_channels < 1)
        return gen__error(GEN_EFORMAT, "%s: layers_per_block and latent_channels must be >= 1",
                          label);
    return GEN_OK;
}

/* ---------------------------------------------------------------- CLIP text */

void gen__text_config_defaults(gen__text_config *c)
{
    /* transformers CLIPTextConfig defaults */
    memset(c, 0, sizeof(*c));
    c->vocab_size = 49408;
    c->hidden_size = 512;
    c->intermediate_size = 2048;
    c->projection_dim = 512;
    c->num_hidden_layers = 12;
    c->num_attention_heads = 8;
    c->max_position_embeddings = 77;
    c->hidden_act = GEN__ACT_QUICK_GELU;
    c->layer_norm_eps = 1e-5;
    c->pad_token_id = 1;
    c->bos_token_id = 49406;
    c->eos_token_id = 49407;
}

gen_status gen__text_config_parse(const char *label, const char *text, size_t len,
                                  gen__text_config *out)
{
    static const char *const acts[] = {"quick_gelu", "gelu", NULL};
    json_t *root;
    gen_status st = gen__json_parse_object(label, text, len, &root);
    if (st != GEN_OK)
        return st;
    gen__text_config c;
    gen__text_config_defaults(&c);
    /* A CLIPConfig (text + vision) nests the text part. */
    json_t *obj = root;
    json_t *nested = json_object_get(root, "text_config");
    if (nested && json_is_object(nested))
        obj = nested;
    int act = (int)c.hidden_act;
    TRY(gen__json_get_int(label, obj, "vocab_size", 1, 1 << 24, &c.vocab_size, NULL));
    TRY(gen__json_get_int(label, obj, "hidden_size", 1, MAX_CHANNELS, &c.hidden_size, NULL));
    TRY(gen__json_get_int(label, obj, "intermediate_size", 1, 1 << 20, &c.intermediate_size, NULL));
    TRY(gen__json_get_int(label, obj, "projection_dim", 1, MAX_CHANNELS, &c.projection_dim, NULL));
    TRY(gen__json_get_int(label, obj, "num_hidden_layers", 1, 1024, &c.num_hidden_layers, NULL));
    TRY(gen__json_get_int(label, obj, "num_attention_heads", 1, 4096, &c.num_attention_heads,
                          NULL));
    TRY(gen__json_get_int(label, obj, "max_position_embeddings", 1, 1 << 16,
                          &c.max_position_embeddings, NULL));
    TRY(gen__json_get_enum(label, obj, "hidden_act", acts, &act, NULL));
    c.hidden_act = (gen__text_act)act;
    TRY(gen__json_get_double(label, obj, "layer_norm_eps", 0.0, 1.0, &c.layer_norm_eps, NULL));
    TRY(gen__json_get_int(label, obj, "pad_token_id", 0, 1 << 24, &c.pad_token_id, NULL));
    TRY(gen__json_get_int(label, obj, "bos_token_id", 0, 1 << 24, &c.bos_token_id, NULL));
    TRY(gen__json_get_int(label, obj, "eos_token_id", 0, 1 << 24, &c.eos_token_id, NULL));
    json_decref(root);
    st = gen__text_config_validate(label, &c);
    if (st == GEN_OK)
        *out = c;
    return st;
}

gen_status gen__text_config_validate(const char *label, const gen__text_config *c)
{
    if (c->hidden_size % c->num_attention_heads != 0)
        return gen__error(GEN_EFORMAT, "%s: hidden_size %d is not divisible by num_attention_heads %d",
                          label, c->hidden_size, c->num_attention_heads);
    return GEN_OK;
}

/* ---------------------------------------------------------------- model_index.json */

static gen_status component(const char *label, json_t *root, const char *key, char *buf,
                            size_t size)
{
    buf[0] = '\0';
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return GEN_OK;
    if (!json_is_array(v) || json_array_size(v) != 2)
        return gen__error(GEN_EFORMAT, "%s: \"%s\" must be [library, class]", label, key);
    json_t *cls = json_array_get(v, 1);
    if (json_is_null(cls))
        return GEN_OK;
    if (!json_is_string(cls) || (!json_is_null(json_array_get(v, 0)) &&
                                 !json_is_string(json_array_get(v, 0))))
        return gen__error(GEN_EFORMAT, "%s: \"%s\" must be [library, class] strings", label, key);
    if (json_string_length(cls) >= size)
        return gen__error(GEN_EFORMAT, "%s: \"%s\" class name is too long", label, key);
    memcpy(buf, json_string_value(cls), json_string_length(cls) + 1);
    return GEN_OK;
}

gen_status gen__model_index_parse(const char *label, const char *text, size_t len,
                                  gen__model_index *out)
{
    json_t *root;
    gen_status st = gen__json_parse_object(label, text, len, &root);
    if (st != GEN_OK)
        return st;
    gen__model_index m;
    memset(&m, 0, sizeof(m));
    bool present;
    TRY(gen__json_get_string(label, root, "_class_name", m.class_name, sizeof(m.class_name),
                             &present));
    if (!present) {
        json_decref(root);
        return gen__error(GEN_EFORMAT, "%s: no \"_class_name\": not a diffusers model_index.json",
                          label);
    }
    TRY(component(label, root, "unet", m.unet, sizeof(m.unet)));
    TRY(component(label, root, "vae", m.vae, sizeof(m.vae)));
    TRY(component(label, root, "text_encoder", m.text_encoder, sizeof(m.text_encoder)));
    TRY(component(label, root, "text_encoder_2", m.text_encoder_2, sizeof(m.text_encoder_2)));
    TRY(component(label, root, "tokenizer", m.tokenizer, sizeof(m.tokenizer)));
    TRY(component(label, root, "scheduler", m.scheduler, sizeof(m.scheduler)));
    json_decref(root);
    *out = m;
    return GEN_OK;
}

/* ---------------------------------------------------------------- files */

gen_status gen__read_small_file(const char *path, size_t max_size, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return gen__error(errno == ENOENT ? GEN_ENOTFOUND : GEN_EIO, "%s: cannot open: %s", path,
                          strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(fp);
        return gen__error(GEN_EIO, "%s: not a readable regular file", path);
    }
    if ((uint64_t)sb.st_size > max_size) {
        fclose(fp);
        return gen__error(GEN_EFORMAT, "%s: %lld bytes, more than the %zu allowed for this file",
                          path, (long long)sb.st_size, max_size);
    }
    char *buf = gen__malloc((size_t)sb.st_size + 1);
    if (!buf) {
        fclose(fp);
        return gen__error(GEN_ENOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, (size_t)sb.st_size, fp);
    int err = ferror(fp);
    fclose(fp);
    if (err || n != (size_t)sb.st_size) {
        gen__free(buf);
        return gen__error(GEN_EIO, "%s: read failed", path);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return GEN_OK;
}
