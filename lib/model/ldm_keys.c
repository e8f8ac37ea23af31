#include "model/ldm_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* If s starts with `prefix` followed by a decimal number and '.', store the
 * number, point *rest after the dot and return true. */
static bool take_index(const char *s, const char *prefix, int *n, const char **rest)
{
    size_t pl = strlen(prefix);
    if (strncmp(s, prefix, pl) != 0)
        return false;
    s += pl;
    if (*s < '0' || *s > '9')
        return false;
    long v = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s - '0');
        if (v > 100000)
            return false;
        s++;
    }
    if (*s != '.')
        return false;
    *n = (int)v;
    *rest = s + 1;
    return true;
}

static bool starts(const char *s, const char *prefix, const char **rest)
{
    size_t pl = strlen(prefix);
    if (strncmp(s, prefix, pl) != 0)
        return false;
    *rest = s + pl;
    return true;
}

static bool emit_str(char *out, size_t size, const char *head, const char *tail)
{
    int n = snprintf(out, size, "%s%s", head, tail);
    return n > 0 && (size_t)n < size;
}

/* Inside a UNet resnet: LDM in_layers/emb_layers/out_layers/skip_connection. */
static const char *resnet_part(const char *rest, const char **tail)
{
    static const struct {
        const char *ldm, *diffusers;
    } map[] = {
        {"in_layers.0.", "norm1."},        {"in_layers.2.", "conv1."},
        {"emb_layers.1.", "time_emb_proj."}, {"out_layers.0.", "norm2."},
        {"out_layers.3.", "conv2."},       {"skip_connection.", "conv_shortcut."},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (starts(rest, map[i].ldm, tail))
            return map[i].diffusers;
    return NULL;
}

/* head: "down_blocks.1.resnets.0." etc. */
static bool unet_resnet(char *out, size_t size, const char *head, const char *rest)
{
    const char *tail;
    const char *part = resnet_part(rest, &tail);
    if (!part)
        return false;
    int n = snprintf(out, size, "%s%s%s", head, part, tail);
    return n > 0 && (size_t)n < size;
}

#define FMT_OK(n, size) ((n) > 0 && (size_t)(n) < (size))

bool gen__ldm_unet_name(const char *key, int L, char *out, size_t size)
{
    static const struct {
        const char *ldm, *diffusers;
    } fixed[] = {
        {"time_embed.0.", "time_embedding.linear_1."},
        {"time_embed.2.", "time_embedding.linear_2."},
        {"input_blocks.0.0.", "conv_in."},
        {"out.0.", "conv_norm_out."},
        {"out.2.", "conv_out."},
    };
    const char *rest;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (starts(key, fixed[i].ldm, &rest))
            return emit_str(out, size, fixed[i].diffusers, rest);
    if (L < 1)
        return false;
    int n, k, w;
    const char *r2;
    char head[64];
    if (take_index(key, "input_blocks.", &n, &rest) && n >= 1 && take_index(rest, "", &k, &r2)) {
        int i = (n - 1) / (L + 1), j = (n - 1) % (L + 1);
        if (j < L && k == 0) {
            snprintf(head, sizeof(head), "down_blocks.%d.resnets.%d.", i, j);
            return unet_resnet(out, size, head, r2);
        }
        if (j < L && k == 1) {
            w = snprintf(out, size, "down_blocks.%d.attentions.%d.%s", i, j, r2);
            return FMT_OK(w, size);
        }
        if (j == L && k == 0 && starts(r2, "op.", &rest)) {
            w = snprintf(out, size, "down_blocks.%d.downsamplers.0.conv.%s", i, rest);
            return FMT_OK(w, size);
        }
        return false;
    }
    if (take_index(key, "middle_block.", &n, &rest)) {
        if (n == 0 || n == 2) {
            snprintf(head, sizeof(head), "mid_block.resnets.%d.", n / 2);
            return unet_resnet(out, size, head, rest);
        }
        if (n == 1)
            return emit_str(out, size, "mid_block.attentions.0.", rest);
        return false;
    }
    if (take_index(key, "output_blocks.", &n, &rest) && take_index(rest, "", &k, &r2)) {
        int i = n / (L + 1), j = n % (L + 1);
        if (k == 0) {
            snprintf(head, sizeof(head), "up_blocks.%d.resnets.%d.", i, j);
            return unet_resnet(out, size, head, r2);
        }
        /* The upsampler follows the resnet, or the attention when the block has one;
         * attention blocks never contain a direct "conv." child. */
        if ((k == 1 || k == 2) && j == L && starts(r2, "conv.", &rest)) {
            w = snprintf(out, size, "up_blocks.%d.upsamplers.0.conv.%s", i, rest);
            return FMT_OK(w, size);
        }
        if (k == 1 && !starts(r2, "conv.", &rest)) {
            w = snprintf(out, size, "up_blocks.%d.attentions.%d.%s", i, j, r2);
            return FMT_OK(w, size);
        }
        return false;
    }
    return false;
}

static const char *vae_resnet_tail(const char *rest, char *buf, size_t size)
{
    const char *tail;
    if (starts(rest, "nin_shortcut.", &tail)) {
        snprintf(buf, size, "conv_shortcut.%s", tail);
        return buf;
    }
    return rest;
}

bool gen__ldm_vae_name(const char *key, int N, char *out, size_t size, bool *squeeze)
{
    *squeeze = false;
    const char *coder;
    const char *rest;
    if (starts(key, "encoder.", &rest))
        coder = "encoder";
    else if (starts(key, "decoder.", &rest))
        coder = "decoder";
    else if (starts(key, "quant_conv.", &rest) || starts(key, "post_quant_conv.", &rest))
        return emit_str(out, size, "", key);
    else
        return false;

    char buf[GEN__NAME_MAX];
    const char *r2;
    int i, j;
    int n;
    if (starts(rest, "conv_in.", &r2) || starts(rest, "conv_out.", &r2)) {
        n = snprintf(out, size, "%s.%s", coder, rest);
    } else if (starts(rest, "norm_out.", &r2)) {
        n = snprintf(out, size, "%s.conv_norm_out.%s", coder, r2);
    } else if (starts(rest, "mid.block_1.", &r2) || starts(rest, "mid.block_2.", &r2)) {
        n = snprintf(out, size, "%s.mid_block.resnets.%d.%s", coder, rest[10] == '1' ? 0 : 1,
                     vae_resnet_tail(r2, buf, sizeof(buf)));
    } else if (starts(rest, "mid.attn_1.", &r2)) {
        static const struct {
            const char *ldm, *diffusers;
        } attn[] = {{"norm.", "group_norm."}, {"q.", "to_q."}, {"k.", "to_k."},
                    {"v.", "to_v."}, {"proj_out.", "to_out.0."}};
        const char *param;
        for (size_t a = 0; a < sizeof(attn) / sizeof(attn[0]); a++) {
            if (starts(r2, attn[a].ldm, &param)) {
                *squeeze = a > 0 && strcmp(param, "weight") == 0;
                n = snprintf(out, size, "%s.mid_block.attentions.0.%s%s", coder, attn[a].diffusers,
                             param);
                return n > 0 && (size_t)n < size;
            }
        }
        return false;
    } else if (coder[0] == 'e' && take_index(rest, "down.", &i, &r2)) {
        const char *r3;
        if (take_index(r2, "block.", &j, &r3))
            n = snprintf(out, size, "encoder.down_blocks.%d.resnets.%d.%s", i, j,
                         vae_resnet_tail(r3, buf, sizeof(buf)));
        else if (starts(r2, "downsample.conv.", &r3))
            n = snprintf(out, size, "encoder.down_blocks.%d.downsamplers.0.conv.%s", i, r3);
        else
            return false;
    } else if (coder[0] == 'd' && take_index(rest, "up.", &i, &r2)) {
        const char *r3;
        if (i >= N)
            return false;
        int b = N - 1 - i; /* LDM numbers decoder blocks from the lowest resolution */
        if (take_index(r2, "block.", &j, &r3))
            n = snprintf(out, size, "decoder.up_blocks.%d.resnets.%d.%s", b, j,
                         vae_resnet_tail(r3, buf, sizeof(buf)));
        else if (starts(r2, "upsample.conv.", &r3))
            n = snprintf(out, size, "decoder.up_blocks.%d.upsamplers.0.conv.%s", b, r3);
        else
            return false;
    } else {
        return false;
    }
    return n > 0 && (size_t)n < size;
}

bool gen__clip_text_name(const char *key, char *out, size_t size, bool *skip)
{
    const char *rest;
    *skip = false;
    if (strcmp(key, "text_model.embeddings.position_ids") == 0 ||
        strcmp(key, "embeddings.position_ids") == 0) {
        *skip = true;
        return true;
    }
    if (starts(key, "text_model.", &rest))
        return emit_str(out, size, "", key);
    return emit_str(out, size, "text_model.", key);
}

bool gen__openclip_text_name(const char *key, char *out, size_t size, bool *split,
                             const char **split_suffix, int *layer, bool *skip)
{
    *split = false;
    *skip = false;
    *layer = -1;
    *split_suffix = NULL;
    const char *rest;
    if (strcmp(key, "text_projection") == 0 || strcmp(key, "logit_scale") == 0 ||
        strcmp(key, "attn_mask") == 0) {
        *skip = true;
        return true;
    }
    if (strcmp(key, "token_embedding.weight") == 0)
        return emit_str(out, size, "text_model.embeddings.token_embedding.weight", "");
    if (strcmp(key, "positional_embedding") == 0)
        return emit_str(out, size, "text_model.embeddings.position_embedding.weight", "");
    if (starts(key, "ln_final.", &rest))
        return emit_str(out, size, "text_model.final_layer_norm.", rest);
    int n;
    if (!take_index(key, "transformer.resblocks.", &n, &rest))
        return false;
    *layer = n;
    static const struct {
        const char *ldm, *diffusers;
    } map[] = {
        {"ln_1.", "layer_norm1."},
        {"ln_2.", "layer_norm2."},
        {"attn.out_proj.", "self_attn.out_proj."},
        {"mlp.c_fc.", "mlp.fc1."},
        {"mlp.c_proj.", "mlp.fc2."},
    };
    const char *tail;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (starts(rest, map[i].ldm, &tail)) {
            int w = snprintf(out, size, "text_model.encoder.layers.%d.%s%s", n, map[i].diffusers,
                             tail);
            return w > 0 && (size_t)w < size;
        }
    if (strcmp(rest, "attn.in_proj_weight") == 0 || strcmp(rest, "attn.in_proj_bias") == 0) {
        *split = true;
        *split_suffix = rest[13] == 'w' ? "weight" : "bias";
        int w = snprintf(out, size, "text_model.encoder.layers.%d.self_attn.", n);
        return w > 0 && (size_t)w < size;
    }
    return false;
}

void gen__diffusers_legacy_vae_name(char *name, size_t size)
{
    static const struct {
        const char *old, *new_;
    } map[] = {{".query.", ".to_q."}, {".key.", ".to_k."}, {".value.", ".to_v."},
               {".proj_attn.", ".to_out.0."}};
    char *at = strstr(name, "mid_block.attentions.0.");
    if (!at)
        return;
    char *p = at + strlen("mid_block.attentions.0") ;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        size_t ol = strlen(map[i].old);
        if (strncmp(p, map[i].old, ol) == 0) {
            char tail[GEN__NAME_MAX];
            snprintf(tail, sizeof(tail), "%s", p + ol);
            size_t head = (size_t)(p - name);
            snprintf(name + head, size - head, "%s%s", map[i].new_, tail);
            return;
        }
    }
}
