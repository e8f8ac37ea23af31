#include "sd_ldm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const sd_ldm_shape sd_ldm_sd15 = {{320, 640, 1280, 1280}, 4, 2, 768, {128, 256, 512, 512}, 4, 2,
                                  768, 12, 3072, 49408, 77, 0, 0};
const sd_ldm_shape sd_ldm_sd21 = {{320, 640, 1280, 1280}, 4, 2, 1024, {128, 256, 512, 512}, 4, 2,
                                  1024, 24, 4096, 49408, 77, 1, 1};

typedef struct hb {
    char *buf;
    size_t len, cap;
    uint64_t offset, esize;
    int n;
} hb;

static void add(hb *h, const int64_t *shape, int nd, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void add(hb *h, const int64_t *shape, int nd, const char *fmt, ...)
{
    if (h->cap - h->len < 1024) {
        h->cap = h->cap * 2 + 65536;
        h->buf = realloc(h->buf, h->cap);
    }
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof(name), fmt, ap);
    va_end(ap);
    uint64_t bytes = h->esize;
    for (int i = 0; i < nd; i++)
        bytes *= (uint64_t)shape[i];
    h->len += (size_t)snprintf(h->buf + h->len, h->cap - h->len, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                               h->n++ ? "," : "{", name, h->esize == 2 ? "F16" : "F32");
    for (int i = 0; i < nd; i++)
        h->len += (size_t)snprintf(h->buf + h->len, h->cap - h->len, "%s%lld", i ? "," : "",
                                   (long long)shape[i]);
    h->len += (size_t)snprintf(h->buf + h->len, h->cap - h->len, "],\"data_offsets\":[%llu,%llu]}",
                               (unsigned long long)h->offset,
                               (unsigned long long)(h->offset + bytes));
    h->offset += bytes;
}

#define S(...) ((const int64_t[]){__VA_ARGS__}), (int)(sizeof((const int64_t[]){__VA_ARGS__}) / 8)

static void norm(hb *h, const char *p, const char *n, int c)
{
    add(h, S(c), "%s%s.weight", p, n);
    add(h, S(c), "%s%s.bias", p, n);
}

static void unet_resnet(hb *h, const char *p, int in, int out, int temb)
{
    norm(h, p, "in_layers.0", in);
    add(h, S(out, in, 3, 3), "%sin_layers.2.weight", p);
    add(h, S(out), "%sin_layers.2.bias", p);
    add(h, S(out, temb), "%semb_layers.1.weight", p);
    add(h, S(out), "%semb_layers.1.bias", p);
    norm(h, p, "out_layers.0", out);
    add(h, S(out, out, 3, 3), "%sout_layers.3.weight", p);
    add(h, S(out), "%sout_layers.3.bias", p);
    if (in != out) {
        add(h, S(out, in, 1, 1), "%sskip_connection.weight", p);
        add(h, S(out), "%sskip_connection.bias", p);
    }
}

static void transformer(hb *h, const char *p, int c, int ctx, int linear)
{
    norm(h, p, "norm", c);
    if (linear)
        add(h, S(c, c), "%sproj_in.weight", p);
    else
        add(h, S(c, c, 1, 1), "%sproj_in.weight", p);
    add(h, S(c), "%sproj_in.bias", p);
    const char *t = "transformer_blocks.0.";
    norm(h, p, "transformer_blocks.0.norm1", c);
    add(h, S(c, c), "%s%sattn1.to_q.weight", p, t);
    add(h, S(c, c), "%s%sattn1.to_k.weight", p, t);
    add(h, S(c, c), "%s%sattn1.to_v.weight", p, t);
    add(h, S(c, c), "%s%sattn1.to_out.0.weight", p, t);
    add(h, S(c), "%s%sattn1.to_out.0.bias", p, t);
    norm(h, p, "transformer_blocks.0.norm2", c);
    add(h, S(c, c), "%s%sattn2.to_q.weight", p, t);
    add(h, S(c, ctx), "%s%sattn2.to_k.weight", p, t);
    add(h, S(c, ctx), "%s%sattn2.to_v.weight", p, t);
    add(h, S(c, c), "%s%sattn2.to_out.0.weight", p, t);
    add(h, S(c), "%s%sattn2.to_out.0.bias", p, t);
    norm(h, p, "transformer_blocks.0.norm3", c);
    add(h, S(8 * c, c), "%s%sff.net.0.proj.weight", p, t);
    add(h, S(8 * c), "%s%sff.net.0.proj.bias", p, t);
    add(h, S(c, 4 * c), "%s%sff.net.2.weight", p, t);
    add(h, S(c), "%s%sff.net.2.bias", p, t);
    if (linear)
        add(h, S(c, c), "%sproj_out.weight", p);
    else
        add(h, S(c, c, 1, 1), "%sproj_out.weight", p);
    add(h, S(c), "%sproj_out.bias", p);
}

static void unet(hb *h, const sd_ldm_shape *s)
{
    const char *P = "model.diffusion_model.";
    const int *ch = s->unet_channels, nb = s->n_unet_blocks, L = s->layers_per_block;
    int temb = 4 * ch[0];
    char p[256];
    add(h, S(temb, ch[0]), "%stime_embed.0.weight", P);
    add(h, S(temb), "%stime_embed.0.bias", P);
    add(h, S(temb, temb), "%stime_embed.2.weight", P);
    add(h, S(temb), "%stime_embed.2.bias", P);
    add(h, S(ch[0], 4, 3, 3), "%sinput_blocks.0.0.weight", P);
    add(h, S(ch[0]), "%sinput_blocks.0.0.bias", P);
    for (int i = 0; i < nb; i++) {
        int attn = i < nb - 1;
        for (int j = 0; j < L; j++) {
            int n = 1 + i * (L + 1) + j;
            int in = j == 0 ? (i == 0 ? ch[0] : ch[i - 1]) : ch[i];
            snprintf(p, sizeof(p), "%sinput_blocks.%d.0.", P, n);
            unet_resnet(h, p, in, ch[i], temb);
            if (attn) {
                snprintf(p, sizeof(p), "%sinput_blocks.%d.1.", P, n);
                transformer(h, p, ch[i], s->context_dim, s->linear_proj);
            }
        }
        if (i < nb - 1) {
            add(h, S(ch[i], ch[i], 3, 3), "%sinput_blocks.%d.0.op.weight", P, (i + 1) * (L + 1));
            add(h, S(ch[i]), "%sinput_blocks.%d.0.op.bias", P, (i + 1) * (L + 1));
        }
    }
    int top = ch[nb - 1];
    snprintf(p, sizeof(p), "%smiddle_block.0.", P);
    unet_resnet(h, p, top, top, temb);
    snprintf(p, sizeof(p), "%smiddle_block.1.", P);
    transformer(h, p, top, s->context_dim, s->linear_proj);
    snprintf(p, sizeof(p), "%smiddle_block.2.", P);
    unet_resnet(h, p, top, top, temb);
    int prev = top;
    for (int i = 0; i < nb; i++) {
        int out = ch[nb - 1 - i], input = ch[nb - 1 - (i + 1 < nb ? i + 1 : nb - 1)];
        int attn = i > 0;
        for (int j = 0; j <= L; j++) {
            int n = i * (L + 1) + j;
            int skip = j == L ? input : out;
            int rin = j == 0 ? prev : out;
            snprintf(p, sizeof(p), "%soutput_blocks.%d.0.", P, n);
            unet_resnet(h, p, rin + skip, out, temb);
            if (attn) {
                snprintf(p, sizeof(p), "%soutput_blocks.%d.1.", P, n);
                transformer(h, p, out, s->context_dim, s->linear_proj);
            }
            if (i < nb - 1 && j == L) {
                add(h, S(out, out, 3, 3), "%soutput_blocks.%d.%d.conv.weight", P, n, attn ? 2 : 1);
                add(h, S(out), "%soutput_blocks.%d.%d.conv.bias", P, n, attn ? 2 : 1);
            }
        }
        prev = out;
    }
    norm(h, P, "out.0", ch[0]);
    add(h, S(4, ch[0], 3, 3), "%sout.2.weight", P);
    add(h, S(4), "%sout.2.bias", P);
}

static void vae_resnet(hb *h, const char *p, int in, int out)
{
    norm(h, p, "norm1", in);
    add(h, S(out, in, 3, 3), "%sconv1.weight", p);
    add(h, S(out), "%sconv1.bias", p);
    norm(h, p, "norm2", out);
    add(h, S(out, out, 3, 3), "%sconv2.weight", p);
    add(h, S(out), "%sconv2.bias", p);
    if (in != out) {
        add(h, S(out, in, 1, 1), "%snin_shortcut.weight", p);
        add(h, S(out), "%snin_shortcut.bias", p);
    }
}

static void vae_mid(hb *h, const char *coder, int c)
{
    char p[256];
    snprintf(p, sizeof(p), "first_stage_model.%s.mid.block_1.", coder);
    vae_resnet(h, p, c, c);
    snprintf(p, sizeof(p), "first_stage_model.%s.mid.attn_1.", coder);
    norm(h, p, "norm", c);
    static const char *const qkv[] = {"q", "k", "v", "proj_out"};
    for (int i = 0; i < 4; i++) {
        add(h, S(c, c, 1, 1), "%s%s.weight", p, qkv[i]);
        add(h, S(c), "%s%s.bias", p, qkv[i]);
    }
    snprintf(p, sizeof(p), "first_stage_model.%s.mid.block_2.", coder);
    vae_resnet(h, p, c, c);
}

static void vae(hb *h, const sd_ldm_shape *s)
{
    const int *ch = s->vae_channels, nb = s->n_vae_blocks;
    char p[256];
    add(h, S(ch[0], 3, 3, 3), "first_stage_model.encoder.conv_in.weight");
    add(h, S(ch[0]), "first_stage_model.encoder.conv_in.bias");
    for (int i = 0; i < nb; i++) {
        for (int j = 0; j < s->vae_layers; j++) {
            int in = j == 0 ? (i == 0 ? ch[0] : ch[i - 1]) : ch[i];
            snprintf(p, sizeof(p), "first_stage_model.encoder.down.%d.block.%d.", i, j);
            vae_resnet(h, p, in, ch[i]);
        }
        if (i < nb - 1) {
            add(h, S(ch[i], ch[i], 3, 3), "first_stage_model.encoder.down.%d.downsample.conv.weight", i);
            add(h, S(ch[i]), "first_stage_model.encoder.down.%d.downsample.conv.bias", i);
        }
    }
    int top = ch[nb - 1];
    vae_mid(h, "encoder", top);
    norm(h, "first_stage_model.encoder.", "norm_out", top);
    add(h, S(8, top, 3, 3), "first_stage_model.encoder.conv_out.weight");
    add(h, S(8), "first_stage_model.encoder.conv_out.bias");
    add(h, S(8, 8, 1, 1), "first_stage_model.quant_conv.weight");
    add(h, S(8), "first_stage_model.quant_conv.bias");
    add(h, S(4, 4, 1, 1), "first_stage_model.post_quant_conv.weight");
    add(h, S(4), "first_stage_model.post_quant_conv.bias");
    add(h, S(top, 4, 3, 3), "first_stage_model.decoder.conv_in.weight");
    add(h, S(top), "first_stage_model.decoder.conv_in.bias");
    vae_mid(h, "decoder", top);
    int prev = top;
    for (int i = 0; i < nb; i++) { /* diffusers order; LDM index is nb-1-i */
        int out = ch[nb - 1 - i], k = nb - 1 - i;
        for (int j = 0; j <= s->vae_layers; j++) {
            snprintf(p, sizeof(p), "first_stage_model.decoder.up.%d.block.%d.", k, j);
            vae_resnet(h, p, j == 0 ? prev : out, out);
        }
        if (i < nb - 1) {
            add(h, S(out, out, 3, 3), "first_stage_model.decoder.up.%d.upsample.conv.weight", k);
            add(h, S(out), "first_stage_model.decoder.up.%d.upsample.conv.bias", k);
        }
        prev = out;
    }
    norm(h, "first_stage_model.decoder.", "norm_out", ch[0]);
    add(h, S(3, ch[0], 3, 3), "first_stage_model.decoder.conv_out.weight");
    add(h, S(3), "first_stage_model.decoder.conv_out.bias");
}

static void text(hb *h, const sd_ldm_shape *s)
{
    int d = s->text_hidden, f = s->text_ffn;
    char p[256];
    if (!s->openclip) {
        const char *P = "cond_stage_model.transformer.text_model.";
        add(h, S(s->vocab, d), "%sembeddings.token_embedding.weight", P);
        add(h, S(s->positions, d), "%sembeddings.position_embedding.weight", P);
        add(h, S(1, s->positions), "%sembeddings.position_ids", P); /* buffer real files carry */
        for (int l = 0; l < s->text_layers; l++) {
            snprintf(p, sizeof(p), "%sencoder.layers.%d.", P, l);
            static const char *const pr[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
            for (int i = 0; i < 4; i++) {
                add(h, S(d, d), "%sself_attn.%s.weight", p, pr[i]);
                add(h, S(d), "%sself_attn.%s.bias", p, pr[i]);
            }
            norm(h, p, "layer_norm1", d);
            norm(h, p, "layer_norm2", d);
            add(h, S(f, d), "%smlp.fc1.weight", p);
            add(h, S(f), "%smlp.fc1.bias", p);
            add(h, S(d, f), "%smlp.fc2.weight", p);
            add(h, S(d), "%smlp.fc2.bias", p);
        }
        norm(h, P, "final_layer_norm", d);
        return;
    }
    const char *P = "cond_stage_model.model.";
    add(h, S(s->vocab, d), "%stoken_embedding.weight", P);
    add(h, S(s->positions, d), "%spositional_embedding", P);
    for (int l = 0; l < s->text_layers; l++) {
        snprintf(p, sizeof(p), "%stransformer.resblocks.%d.", P, l);
        add(h, S(3 * d, d), "%sattn.in_proj_weight", p);
        add(h, S(3 * d), "%sattn.in_proj_bias", p);
        add(h, S(d, d), "%sattn.out_proj.weight", p);
        add(h, S(d), "%sattn.out_proj.bias", p);
        norm(h, p, "ln_1", d);
        norm(h, p, "ln_2", d);
        add(h, S(f, d), "%smlp.c_fc.weight", p);
        add(h, S(f), "%smlp.c_fc.bias", p);
        add(h, S(d, f), "%smlp.c_proj.weight", p);
        add(h, S(d), "%smlp.c_proj.bias", p);
    }
    norm(h, P, "ln_final", d);
    add(h, S(d, d), "%stext_projection", P);
    add(h, S(1), "%slogit_scale", P);
}

uint64_t sd_ldm_write_sparse(const char *path, const sd_ldm_shape *s, const char *dtype)
{
    hb h = {0};
    h.esize = strcmp(dtype, "F16") == 0 ? 2 : 4;
    unet(&h, s);
    vae(&h, s);
    text(&h, s);
    h.buf[h.len++] = '}';
    while (h.len % 8)
        h.buf[h.len++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(h.buf);
        return 0;
    }
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    int ok = fwrite(le, 1, 8, f) == 8 && fwrite(h.buf, 1, h.len, f) == h.len;
    ok = fflush(f) == 0 && ok;
    uint64_t total = 8 + h.len + h.offset;
    ok = ok && ftruncate(fileno(f), (off_t)total) == 0; /* the data: one hole */
    ok = (fclose(f) == 0) && ok;
    free(h.buf);
    return ok ? total : 0;
}
