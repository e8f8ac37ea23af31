/* CLIP text encoder forward (see text_encoder.h). */
#include "pipeline/text_encoder.h"

#include <math.h>
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

typedef struct clip_layer {
    gen__nn_norm ln1, ln2;
    gen__nn_attn attn; /* q_proj/k_proj/v_proj/out_proj bound into diffusers' shape */
    gen__nn_linear fc1, fc2;
} clip_layer;

struct gen__text_encoder {
    gen__text_config cfg;
    gen__tensor tok_emb, pos_emb;
    gen__nn_norm final_ln;
    int n_layers;
    clip_layer *layers;
    gen__unary_op act;
};

static gen_status name2(char *buf, const char *base, const char *a, const char *b)
{
    char mid[GEN__NN_NAME_MAX];
    gen_status st = gen__nn_name(mid, base, a);
    return st == GEN_OK ? gen__nn_name(buf, mid, b) : st;
}

gen_status gen__text_encoder_create(gen__text_encoder **out, const gen__text_config *cfg,
                                    const gen__device_weights *w)
{
    *out = NULL;
    gen_status st = GEN_OK;
    gen__text_encoder *te = gen__calloc(1, sizeof *te);
    if (!te)
        return gen__error(GEN_ENOMEM, "text encoder: out of memory");
    te->cfg = *cfg;
    int64_t d = cfg->hidden_size, inter = cfg->intermediate_size;
    float eps = (float)cfg->layer_norm_eps;
    if (d < 1 || cfg->num_attention_heads < 1 || d % cfg->num_attention_heads ||
        cfg->num_hidden_layers < 1) {
        st = gen__error(GEN_EINVAL, "text encoder: hidden_size %d, %d heads, %d layers is invalid",
                        cfg->hidden_size, cfg->num_attention_heads, cfg->num_hidden_layers);
        goto done;
    }
    te->act = cfg->hidden_act == GEN__ACT_GELU ? GEN__UNARY_GELU : GEN__UNARY_QUICK_GELU;
    /* transformers 4 files say text_model.embeddings..., transformers 5 drops the prefix */
    const char *root = gen__weights_has(w, "text_model.embeddings.token_embedding.weight")
                           ? "text_model"
                           : "";
    char base[GEN__NN_NAME_MAX], name[GEN__NN_NAME_MAX];
    TRY(gen__nn_name(base, root, "embeddings"));
    TRY(gen__nn_name(name, base, "token_embedding.weight"));
    TRY(gen__weights_get(w, name, 2, (int64_t[]){cfg->vocab_size, d}, &te->tok_emb));
    TRY(gen__nn_name(name, base, "position_embedding.weight"));
    TRY(gen__weights_get(w, name, 2, (int64_t[]){cfg->max_position_embeddings, d}, &te->pos_emb));
    TRY(gen__nn_name(name, root, "final_layer_norm"));
    TRY(gen__nn_bind_norm(w, name, d, 0, eps, &te->final_ln));
    te->layers = gen__calloc((size_t)cfg->num_hidden_layers, sizeof *te->layers);
    if (!te->layers) {
        st = gen__error(GEN_ENOMEM, "text encoder: out of memory");
        goto done;
    }
    te->n_layers = cfg->num_hidden_layers;
    for (int i = 0; i < te->n_layers; i++) {
        clip_layer *l = &te->layers[i];
        char layer[GEN__NN_NAME_MAX], lname[32];
        snprintf(lname, sizeof lname, "encoder.layers.%d", i);
        TRY(gen__nn_name(layer, root, lname));
        TRY(gen__nn_name(name, layer, "layer_norm1"));
        TRY(gen__nn_bind_norm(w, name, d, 0, eps, &l->ln1));
        TRY(gen__nn_name(name, layer, "layer_norm2"));
        TRY(gen__nn_bind_norm(w, name, d, 0, eps, &l->ln2));
        l->attn.heads = cfg->num_attention_heads;
        l->attn.dim = d;
        TRY(name2(name, layer, "self_attn", "q_proj"));
        TRY(gen__nn_bind_linear(w, name, d, d, true, &l->attn.q));
        TRY(name2(name, layer, "self_attn", "k_proj"));
        TRY(gen__nn_bind_linear(w, name, d, d, true, &l->attn.k));
        TRY(name2(name, layer, "self_attn", "v_proj"));
        TRY(gen__nn_bind_linear(w, name, d, d, true, &l->attn.v));
        TRY(name2(name, layer, "self_attn", "out_proj"));
        TRY(gen__nn_bind_linear(w, name, d, d, true, &l->attn.out));
        TRY(name2(name, layer, "mlp", "fc1"));
        TRY(gen__nn_bind_linear(w, name, inter, d, true, &l->fc1));
        TRY(name2(name, layer, "mlp", "fc2"));
        TRY(gen__nn_bind_linear(w, name, d, inter, true, &l->fc2));
    }
done:
    if (st != GEN_OK) {
        gen__text_encoder_destroy(te);
        return st;
    }
    *out = te;
    return GEN_OK;
}

void gen__text_encoder_destroy(gen__text_encoder *te)
{
    if (!te)
        return;
    gen__free(te->layers);
    gen__free(te);
}

int gen__text_encoder_hidden_size(const gen__text_encoder *te) { return te->cfg.hidden_size; }

/* x += attn(ln1(x)); x += fc2(act(fc1(ln2(x)))) */
static gen_status layer_forward(const gen__text_encoder *te, const clip_layer *l, gen__tensor *x)
{
    gen__tensor h = GEN__TENSOR_EMPTY, a = GEN__TENSOR_EMPTY, m = GEN__TENSOR_EMPTY;
    gen_status st;
    TRY(gen__nn_layer_norm_forward(&l->ln1, &h, x));
    TRY(gen__nn_attn_forward(&l->attn, &a, &h, NULL, true));
    TRY(gen__add(x, x, &a));
    gen__tensor_free(&a);
    TRY(gen__layer_norm(&h, x, &l->ln2.g, &l->ln2.b, l->ln2.eps));
    TRY(gen__nn_linear_forward(&l->fc1, &m, &h));
    TRY(gen__unary(&m, &m, te->act));
    gen__tensor_free(&h);
    TRY(gen__nn_linear_forward(&l->fc2, &h, &m));
    TRY(gen__add(x, x, &h));
done:
    gen__tensor_free(&h);
    gen__tensor_free(&a);
    gen__tensor_free(&m);
    return st;
}

gen_status gen__text_encoder_forward(const gen__text_encoder *te, gen__tensor *out,
                                     const int32_t *ids, int batch, int seq_len, int clip_skip)
{
    gen__tensor empty = GEN__TENSOR_EMPTY;
    *out = empty;
    if (batch < 1 || seq_len < 1 || seq_len > te->cfg.max_position_embeddings)
        return gen__error(GEN_EINVAL, "text encoder: batch %d x %d tokens (at most %d positions)",
                          batch, seq_len, te->cfg.max_position_embeddings);
    if (clip_skip < 0 || clip_skip >= te->n_layers)
        return gen__error(GEN_EINVAL, "text encoder: clip_skip %d out of range 0..%d", clip_skip,
                          te->n_layers - 1);
    int64_t d = te->cfg.hidden_size;
    gen__tensor x = GEN__TENSOR_EMPTY, pos;
    gen_status st;
    TRY(gen__nn_alloc(&x, &te->tok_emb, 3, (int64_t[]){batch, seq_len, d}));
    TRY(gen__embedding(&x, &te->tok_emb, ids, (size_t)batch * (size_t)seq_len));
    /* position ids are 0..seq_len-1: the table's first rows, broadcast over the batch */
    TRY(gen__tensor_view2(&pos, &te->pos_emb, seq_len, d, 0));
    TRY(gen__add(&x, &x, &pos));
    for (int i = 0; i < te->n_layers - clip_skip; i++)
        TRY(layer_forward(te, &te->layers[i], &x));
    TRY(gen__layer_norm(&x, &x, &te->final_ln.g, &te->final_ln.b, te->final_ln.eps));
    *out = x;
    return GEN_OK;
done:
    gen__tensor_free(&x);
    return gen__error_prefix("text encoder: ");
}
