/* Diffusers folders: model_index.json, <part>/config.json and the weights
 * <part>/<base>[.<variant>].safetensors (or sharded with an .index.json). */
#include <jansson.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "model/json_get.h"
#include "model/ldm_keys.h"
#include "model/model_internal.h"

#define CONFIG_MAX_BYTES ((size_t)4 << 20)
#define INDEX_MAX_BYTES ((size_t)64 << 20)

static const char *const part_dirs[GEN__PART_COUNT] = {"unet", "vae", "text_encoder"};
static const char *const part_bases[GEN__PART_COUNT] = {"diffusion_pytorch_model",
                                                        "diffusion_pytorch_model", "model"};

static gen_status join(char *buf, size_t size, const char *a, const char *b, const char *c)
{
    int n = snprintf(buf, size, "%s/%s%s%s", a, b, c ? "/" : "", c ? c : "");
    if (n < 0 || (size_t)n >= size)
        return gen__error(GEN_EINVAL, "%s/%s: path too long", a, b);
    return GEN_OK;
}

typedef gen_status (*parse_fn)(const char *label, const char *text, size_t len, void *out);

static gen_status read_config(const char *dir, const char *sub, const char *file, parse_fn fn,
                              void *out)
{
    char path[PATH_MAX];
    gen_status st = join(path, sizeof(path), dir, sub, file);
    if (st != GEN_OK)
        return st;
    char *text;
    size_t len;
    st = gen__read_small_file(path, CONFIG_MAX_BYTES, &text, &len);
    if (st != GEN_OK)
        return st;
    st = fn(path, text, len, out);
    gen__free(text);
    return st;
}

static gen_status parse_unet(const char *l, const char *t, size_t n, void *o)
{
    return gen__unet_config_parse(l, t, n, o);
}
static gen_status parse_vae(const char *l, const char *t, size_t n, void *o)
{
    return gen__vae_config_parse(l, t, n, o);
}
static gen_status parse_text(const char *l, const char *t, size_t n, void *o)
{
    return gen__text_config_parse(l, t, n, o);
}
static gen_status parse_sched(const char *l, const char *t, size_t n, void *o)
{
    return gen__scheduler_config_parse(l, t, n, o);
}
static gen_status parse_index(const char *l, const char *t, size_t n, void *o)
{
    return gen__model_index_parse(l, t, n, o);
}

gen_status gen__model_read_configs(gen__model *m, const char *dir, bool need_scheduler)
{
    gen_status st = read_config(dir, "unet", "config.json", parse_unet, &m->unet);
    if (st == GEN_OK)
        st = read_config(dir, "vae", "config.json", parse_vae, &m->vae);
    if (st == GEN_OK)
        st = read_config(dir, "text_encoder", "config.json", parse_text, &m->text);
    if (st != GEN_OK)
        return st;
    gen__scheduler_config_free(&m->scheduler);
    st = read_config(dir, "scheduler", "scheduler_config.json", parse_sched, &m->scheduler);
    if (st == GEN_ENOTFOUND && !need_scheduler) {
        gen_clear_last_error();
        st = GEN_OK;
        m->scheduler.num_train_timesteps = 0; /* caller fills the family default */
    }
    if (st != GEN_OK)
        return st;
    m->configs_from_files = true;
    st = gen__model_find_tokenizer(m, dir);
    if (st != GEN_OK)
        return st;
    st = read_config(dir, "model_index.json", NULL, parse_index, &m->index);
    if (st == GEN_ENOTFOUND) { /* optional: a bare folder of parts still loads */
        gen_clear_last_error();
        return GEN_OK;
    }
    m->has_index = st == GEN_OK;
    return st;
}

/* ---------------------------------------------------------------- weights */

static gen_status add_file_tensors(gen__model *m, gen__part part, const gen__st_file *f)
{
    for (size_t i = 0; i < gen__st_count(f); i++) {
        const gen__st_view *t = gen__st_at(f, i);
        char name[GEN__NAME_MAX];
        if (strlen(t->name) >= sizeof(name))
            return gen__error(GEN_EFORMAT, "%s: tensor name '%.80s...' is too long",
                              gen__st_path(f), t->name);
        memcpy(name, t->name, strlen(t->name) + 1);
        if (m->supported && part == GEN__PART_TEXT_ENCODER) {
            /* transformers 5 drops the "text_model." prefix; older files carry
             * the position_ids buffer. One set of names either way. */
            bool skip;
            if (!gen__clip_text_name(t->name, name, sizeof(name), &skip))
                return gen__error(GEN_EFORMAT, "%s: tensor name '%.80s' is too long",
                                  gen__st_path(f), t->name);
            if (skip)
                continue;
        } else if (part == GEN__PART_VAE) {
            gen__diffusers_legacy_vae_name(name, sizeof(name));
        }
        gen_status st = gen__model_add(m, part, t, name);
        if (st != GEN_OK)
            return st;
    }
    return GEN_OK;
}

static gen_status open_into(gen__model *m, gen__part part, const char *path, gen__st_file **out)
{
    gen__st_file *f;
    gen_status st = gen__st_open(&f, path);
    if (st != GEN_OK)
        return st;
    st = gen__model_keep_file(m, f);
    if (st != GEN_OK)
        return st;
    if (out)
        *out = f;
    return add_file_tensors(m, part, f);
}

/* <base>.safetensors.index.json: {"weight_map": {tensor: shard file}}. */
static gen_status open_sharded(gen__model *m, gen__part part, const char *dir, const char *index)
{
    char *text;
    size_t len;
    gen_status st = gen__read_small_file(index, INDEX_MAX_BYTES, &text, &len);
    if (st != GEN_OK)
        return st;
    json_t *root;
    st = gen__json_parse_object(index, text, len, &root);
    gen__free(text);
    if (st != GEN_OK)
        return st;
    json_t *map = json_object_get(root, "weight_map");
    if (!json_is_object(map) || json_object_size(map) == 0) {
        json_decref(root);
        return gen__error(GEN_EFORMAT, "%s: no \"weight_map\" object", index);
    }
    size_t first_file = m->n_files;
    const char *key;
    json_t *v;
    json_object_foreach(map, key, v) {
        if (!json_is_string(v)) {
            st = gen__error(GEN_EFORMAT, "%s: weight_map[\"%.80s\"] is not a file name", index, key);
            break;
        }
        const char *shard = json_string_value(v);
        if (!shard[0] || strchr(shard, '/') || strcmp(shard, "..") == 0 || strcmp(shard, ".") == 0) {
            st = gen__error(GEN_EFORMAT, "%s: shard name \"%.80s\" must be a file in the same folder",
                            index, shard);
            break;
        }
        char path[PATH_MAX];
        st = join(path, sizeof(path), dir, shard, NULL);
        if (st != GEN_OK)
            break;
        gen__st_file *f = NULL;
        for (size_t i = first_file; i < m->n_files && !f; i++)
            if (strcmp(gen__st_path(m->files[i]), path) == 0)
                f = m->files[i];
        if (!f) {
            st = open_into(m, part, path, &f);
            if (st != GEN_OK)
                break;
        }
        if (!gen__st_find(f, key)) {
            st = gen__error(GEN_EFORMAT, "%s: tensor '%.80s' is listed in %s but not in that file",
                            index, key, shard);
            break;
        }
    }
    json_decref(root);
    return st;
}

/* Returns GEN_ENOTFOUND without an error message when neither form exists. */
static gen_status try_weights(gen__model *m, gen__part part, const char *dir, const char *base,
                              const char *variant, bool *found)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s%s%s.safetensors", dir, base, variant ? "." : "",
                     variant ? variant : "");
    if (n < 0 || (size_t)n + 12 >= sizeof(path))
        return gen__error(GEN_EINVAL, "%s: path too long", dir);
    *found = true;
    if (gen__path_is_file(path))
        return open_into(m, part, path, NULL);
    strcat(path, ".index.json");
    if (gen__path_is_file(path))
        return open_sharded(m, part, dir, path);
    *found = false;
    return GEN_OK;
}

static gen_status load_part(gen__model *m, gen__part part, const char *variant)
{
    char dir[PATH_MAX];
    gen_status st = join(dir, sizeof(dir), m->path, part_dirs[part], NULL);
    if (st != GEN_OK)
        return st;
    if (!gen__path_is_dir(dir))
        return gen__error(GEN_ENOTFOUND, "%s: no %s/ folder: not a Stable Diffusion diffusers folder",
                          m->path, part_dirs[part]);
    const char *base = part_bases[part];
    bool found;
    st = try_weights(m, part, dir, base, variant, &found);
    if (st != GEN_OK || found)
        return st;
    if (!variant) {
        /* Repositories that ship only half-precision weights. */
        st = try_weights(m, part, dir, base, "fp16", &found);
        if (st != GEN_OK || found)
            return st;
    }
    char bin[PATH_MAX];
    int n = snprintf(bin, sizeof(bin), "%s/%s%s%s.bin", dir, base, variant ? "." : "",
                     variant ? variant : "");
    if (n > 0 && (size_t)n < sizeof(bin) && gen__path_is_file(bin))
        return gen__model_refuse_pickle(bin);
    return gen__error(GEN_ENOTFOUND, "%s: no %s%s%s.safetensors weights in %s/", m->path, base,
                      variant ? "." : "", variant ? variant : "", part_dirs[part]);
}

static gen_status check_components(gen__model *m)
{
    static const struct {
        size_t offset;
        const char *key, *expected;
    } comps[] = {
        {offsetof(gen__model_index, unet), "unet", "UNet2DConditionModel"},
        {offsetof(gen__model_index, vae), "vae", "AutoencoderKL"},
        {offsetof(gen__model_index, text_encoder), "text_encoder", "CLIPTextModel"},
    };
    if (!m->has_index)
        return GEN_OK;
    for (size_t i = 0; i < sizeof(comps) / sizeof(comps[0]); i++) {
        const char *cls = (const char *)&m->index + comps[i].offset;
        if (cls[0] && strcmp(cls, comps[i].expected) != 0)
            return gen__error(GEN_EUNSUPPORTED,
                              "%s/model_index.json: %s is a %s; only %s is supported", m->path,
                              comps[i].key, cls, comps[i].expected);
    }
    return GEN_OK;
}

gen_status gen__model_load_folder(gen__model *m, const gen__model_open_options *opts)
{
    char idx[PATH_MAX], ucfg[PATH_MAX];
    gen_status st = join(idx, sizeof(idx), m->path, "model_index.json", NULL);
    if (st == GEN_OK)
        st = join(ucfg, sizeof(ucfg), m->path, "unet", "config.json");
    if (st != GEN_OK)
        return st;
    if (!gen__path_is_file(idx) && !gen__path_is_file(ucfg))
        return gen__error(GEN_ENOTFOUND,
                          "%s: no model_index.json or unet/config.json: not a diffusers folder",
                          m->path);
    st = gen__model_read_configs(m, m->path, false);
    if (st != GEN_OK)
        return st;
    bool xl = m->unet.addition_text_time ||
              (m->has_index && (strstr(m->index.class_name, "XL") || m->index.text_encoder_2[0]));
    if (xl) {
        m->family = GEN__FAMILY_SDXL;
        m->supported = false;
    } else {
        st = check_components(m);
        if (st != GEN_OK)
            return st;
        bool sd2 = m->text.hidden_act == GEN__ACT_GELU || m->unet.cross_attention_dim == 1024 ||
                   m->unet.use_linear_projection;
        m->family = sd2 ? GEN__FAMILY_SD2 : GEN__FAMILY_SD1;
    }
    if (m->scheduler.num_train_timesteps == 0) {
        st = gen__model_default_scheduler(m);
        if (st != GEN_OK)
            return st;
    }
    if (opts->prediction >= 0) {
        m->scheduler.prediction_type = (gen__prediction)opts->prediction;
        m->scheduler.present |= GEN__SK_PREDICTION_TYPE;
    }
    m->prediction = m->scheduler.prediction_type;
    for (int p = 0; p < GEN__PART_COUNT; p++) {
        st = load_part(m, (gen__part)p, opts->variant);
        if (st != GEN_OK)
            return st;
    }
    return GEN_OK;
}
