/* LoRA applied out of place into job-local overlays (see lora.h). */
#include "pipeline/lora.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/time.h"
#include "model/safetensors.h"

#define KEY_MAX 512

enum role { ROLE_DOWN, ROLE_UP, ROLE_ALPHA };

/* One up/down pair of one LoRA file and the weight it patches. */
typedef struct module {
    int file;                 /* index into the job's LoRAs */
    size_t seq;               /* creation order: the summation order of a weight's deltas */
    gen__part part;
    bool kohya;               /* underscore path, matched through the name lookup */
    char stem[KEY_MAX];       /* the module path as written, without prefix and suffix */
    char key[KEY_MAX];        /* the first key seen, for messages */
    const gen__st_view *down, *up, *alpha;
    char target[KEY_MAX + 32]; /* resolved weight name (stem + root + ".weight") */
    double scale;             /* strength * alpha / rank */
} module;

/* kohya's underscore path -> the diffusers weight name. */
typedef struct under_entry {
    char *under;
    const char *name;         /* borrowed from the device weights */
    bool ambiguous;
} under_entry;

typedef struct lora_ctx {
    const gen__job_lora *loras;
    int count;
    const gen__device_weights *const *parts;
    gen__st_file *files[GEN__JOB_MAX_LORAS];
    module *mods;
    size_t nmods, cap;
    under_entry *under[GEN__PART_COUNT];
    size_t nunder[GEN__PART_COUNT];
} lora_ctx;

static bool ends_with(const char *s, size_t n, const char *suffix, size_t *stem_len)
{
    size_t m = strlen(suffix);
    if (m >= n || memcmp(s + n - m, suffix, m) != 0)
        return false;
    *stem_len = n - m;
    return true;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static gen_status key_error(gen_status st, const lora_ctx *c, int file, const char *key,
                            const char *why)
{
    return gen__error(st, "LoRA %s: key '%s': %s", c->loras[file].path, key, why);
}

/* Keys no LoRA of this kind can be applied as: say what they are. */
static gen_status unknown_key(const lora_ctx *c, int file, const char *key)
{
    size_t n = strlen(key), stem;
    if (strstr(key, ".hada_") || strstr(key, ".lokr_") || ends_with(key, n, ".diff", &stem) ||
        ends_with(key, n, ".diff_b", &stem))
        return key_error(GEN_EUNSUPPORTED, c, file, key,
                         "a LyCORIS (LoHa/LoKr/full-diff) weight; only LoRA up/down pairs "
                         "are supported");
    if (strstr(key, "dora_scale"))
        return key_error(GEN_EUNSUPPORTED, c, file, key, "DoRA is not supported");
    if (strstr(key, "lora_mid"))
        return key_error(GEN_EUNSUPPORTED, c, file, key,
                         "LoCon with a mid (Tucker) weight is not supported");
    if (starts_with(key, "lora_te1_") || starts_with(key, "lora_te2_") ||
        starts_with(key, "text_encoder_2."))
        return key_error(GEN_EUNSUPPORTED, c, file, key,
                         "a second text encoder (an SDXL LoRA?); this model has one");
    return key_error(GEN_EFORMAT, c, file, key,
                     "not a LoRA key (expected lora_unet_/lora_te_ or unet./text_encoder. "
                     "names ending in lora_down/lora_up/alpha, lora_A/lora_B or "
                     "lora.down/lora.up)");
}

/* Split `key` into part, style, stem and role. */
static gen_status parse_key(const lora_ctx *c, int file, const char *key, gen__part *part,
                            bool *kohya, char *stem, enum role *role)
{
    static const struct {
        const char *suffix;
        enum role role;
        bool processor; /* "<...>.processor.to_q_lora.down.weight" */
    } suffixes[] = {
        {".lora_down.weight", ROLE_DOWN, false}, {".lora_up.weight", ROLE_UP, false},
        {".lora_A.weight", ROLE_DOWN, false},    {".lora_B.weight", ROLE_UP, false},
        {".lora.down.weight", ROLE_DOWN, false}, {".lora.up.weight", ROLE_UP, false},
        {"_lora.down.weight", ROLE_DOWN, true},  {"_lora.up.weight", ROLE_UP, true},
        /* legacy diffusers text encoder (PatchedLoraProjection) */
        {".lora_linear_layer.down.weight", ROLE_DOWN, false},
        {".lora_linear_layer.up.weight", ROLE_UP, false},
        {".alpha", ROLE_ALPHA, false},
    };
    static const struct {
        const char *prefix;
        gen__part part;
        bool kohya;
    } prefixes[] = {
        {"lora_unet_", GEN__PART_UNET, true},
        {"lora_te_", GEN__PART_TEXT_ENCODER, true},
        {"unet.", GEN__PART_UNET, false},
        {"text_encoder.", GEN__PART_TEXT_ENCODER, false},
    };
    size_t n = strlen(key);
    if (n >= KEY_MAX)
        return key_error(GEN_EFORMAT, c, file, key, "key too long");
    size_t stem_len = 0;
    int s = -1;
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0] && s < 0; i++)
        if (ends_with(key, n, suffixes[i].suffix, &stem_len))
            s = (int)i;
    int p = -1;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0] && p < 0; i++)
        if (starts_with(key, prefixes[i].prefix))
            p = (int)i;
    if (s < 0 || p < 0)
        return unknown_key(c, file, key);
    size_t plen = strlen(prefixes[p].prefix);
    if (stem_len <= plen)
        return unknown_key(c, file, key);
    *part = prefixes[p].part;
    *kohya = prefixes[p].kohya;
    *role = suffixes[s].role;
    memcpy(stem, key + plen, stem_len - plen);
    stem[stem_len - plen] = '\0';
    char *proc = *kohya ? NULL : strstr(stem, ".processor.");
    size_t slen = strlen(stem);
    if (proc && *role == ROLE_ALPHA && slen > 5 && strcmp(stem + slen - 5, "_lora") == 0)
        stem[slen - 5] = '\0'; /* "<block>.processor.to_q_lora.alpha" */
    if (suffixes[s].processor && !proc)
        return unknown_key(c, file, key);
    if (proc) {
        /* diffusers' attention-processor LoRA: "<block>.processor.to_q" names
         * "<block>.to_q"; to_out is the first module of to_out. */
        const char *proj = proc + strlen(".processor.");
        char tail[KEY_MAX];
        snprintf(tail, sizeof tail, "%s%s", proj, strcmp(proj, "to_out") == 0 ? ".0" : "");
        if ((size_t)(proc - stem) + 1 + strlen(tail) >= KEY_MAX)
            return key_error(GEN_EFORMAT, c, file, key, "key too long");
        snprintf(proc, KEY_MAX - (size_t)(proc - stem), ".%s", tail);
    }
    return GEN_OK;
}

static module *find_module(lora_ctx *c, int file, gen__part part, bool kohya, const char *stem)
{
    for (size_t i = c->nmods; i-- > 0;) {
        module *m = &c->mods[i];
        if (m->file != file)
            break; /* modules of one file are contiguous */
        if (m->part == part && m->kohya == kohya && strcmp(m->stem, stem) == 0)
            return m;
    }
    return NULL;
}

static gen_status add_key(lora_ctx *c, int file, const gen__st_view *v)
{
    gen__part part = GEN__PART_UNET;
    bool kohya = false;
    enum role role = ROLE_DOWN;
    char stem[KEY_MAX];
    gen_status st = parse_key(c, file, v->name, &part, &kohya, stem, &role);
    if (st != GEN_OK)
        return st;
    module *m = find_module(c, file, part, kohya, stem);
    if (!m) {
        if (c->nmods == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 64;
            module *mods = gen__realloc(c->mods, cap * sizeof *mods);
            if (!mods)
                return gen__error(GEN_ENOMEM, "LoRA %s: out of memory", c->loras[file].path);
            c->mods = mods;
            c->cap = cap;
        }
        m = &c->mods[c->nmods];
        memset(m, 0, sizeof *m);
        m->file = file;
        m->seq = c->nmods++;
        m->part = part;
        m->kohya = kohya;
        snprintf(m->stem, sizeof m->stem, "%s", stem);
        snprintf(m->key, sizeof m->key, "%s", v->name);
    }
    const gen__st_view **slot = role == ROLE_DOWN ? &m->down : role == ROLE_UP ? &m->up : &m->alpha;
    if (*slot)
        return gen__error(GEN_EFORMAT, "LoRA %s: keys '%s' and '%s' give the same %s of module '%s'",
                          c->loras[file].path, (*slot)->name, v->name,
                          role == ROLE_DOWN ? "down" : role == ROLE_UP ? "up" : "alpha", stem);
    *slot = v;
    return GEN_OK;
}

/* ---- matching module paths to weights ---------------------------------------------------- */

static int cmp_under(const void *a, const void *b)
{
    return strcmp(((const under_entry *)a)->under, ((const under_entry *)b)->under);
}

/* For each "<path>.weight" of the part: "<path with '_'>" -> name. Two names
 * with the same underscore form are marked ambiguous (used: an error). */
static gen_status build_under(lora_ctx *c, gen__part part)
{
    const gen__device_weights *dw = c->parts[part];
    size_t n = gen__device_weights_count(dw);
    under_entry *u = n ? gen__calloc(n, sizeof *u) : NULL;
    if (n && !u)
        return gen__error(GEN_ENOMEM, "LoRA: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = gen__device_weights_name_at(dw, i);
        size_t len = strlen(name), stem_len;
        if (!ends_with(name, len, ".weight", &stem_len))
            continue;
        char *under = gen__strndup(name, stem_len);
        if (!under) {
            for (size_t j = 0; j < k; j++)
                gen__free(u[j].under);
            gen__free(u);
            return gen__error(GEN_ENOMEM, "LoRA: out of memory");
        }
        for (char *p = under; *p; p++)
            if (*p == '.')
                *p = '_';
        u[k].under = under;
        u[k].name = name;
        u[k].ambiguous = false;
        k++;
    }
    if (k)
        qsort(u, k, sizeof *u, cmp_under);
    for (size_t i = 1; i < k; i++)
        if (strcmp(u[i - 1].under, u[i].under) == 0)
            u[i - 1].ambiguous = u[i].ambiguous = true;
    c->under[part] = u;
    c->nunder[part] = k;
    return GEN_OK;
}

static const under_entry *find_under(const lora_ctx *c, gen__part part, const char *under)
{
    under_entry probe = {(char *)under, NULL, false};
    if (!c->nunder[part])
        return NULL;
    return bsearch(&probe, c->under[part], c->nunder[part], sizeof probe, cmp_under);
}

/* The weight a module patches (m->target), or an error naming the key. */
static gen_status resolve_target(lora_ctx *c, module *m)
{
    const gen__device_weights *dw = c->parts[m->part];
    if (!dw)
        return key_error(GEN_EFORMAT, c, m->file, m->key,
                         "patches a model part this job does not load");
    /* transformers' CLIP names start with "text_model."; a LoRA may omit it. */
    const char *te_root = m->part == GEN__PART_TEXT_ENCODER ? (m->kohya ? "text_model_" : "text_model.")
                                                            : NULL;
    if (m->kohya) {
        if (!c->under[m->part]) {
            gen_status st = build_under(c, m->part);
            if (st != GEN_OK)
                return st;
        }
        const under_entry *e = find_under(c, m->part, m->stem);
        if (!e && te_root && !starts_with(m->stem, te_root)) {
            char longer[KEY_MAX + 16];
            snprintf(longer, sizeof longer, "%s%s", te_root, m->stem);
            e = find_under(c, m->part, longer);
        }
        if (e && e->ambiguous)
            return key_error(GEN_EFORMAT, c, m->file, m->key,
                             "its underscore path matches several weights of the model");
        if (e)
            snprintf(m->target, sizeof m->target, "%s", e->name);
    } else {
        snprintf(m->target, sizeof m->target, "%s.weight", m->stem);
        if (!gen__weights_has(dw, m->target) && te_root && !starts_with(m->stem, te_root))
            snprintf(m->target, sizeof m->target, "%s%s.weight", te_root, m->stem);
        if (!gen__weights_has(dw, m->target))
            m->target[0] = '\0';
    }
    if (!m->target[0]) {
        char why[KEY_MAX + 160];
        snprintf(why, sizeof why, "names no weight of the model's %s (a LoRA for another model "
                                  "family or architecture?)",
                 gen__part_name(m->part));
        return key_error(GEN_EFORMAT, c, m->file, m->key, why);
    }
    return GEN_OK;
}

/* ---- validation -------------------------------------------------------------------------- */

static bool float_dtype(gen__st_dtype d)
{
    return d == GEN__ST_F32 || d == GEN__ST_F16 || d == GEN__ST_BF16;
}

static double view_scalar(const gen__st_view *v)
{
    float f = 0.0f;
    switch (v->dtype) {
    case GEN__ST_F32: memcpy(&f, v->data, sizeof f); break;
    case GEN__ST_F16: {
        uint16_t h;
        memcpy(&h, v->data, sizeof h);
        gen__convert_host(&f, GEN__F32, &h, GEN__F16, 1);
        break;
    }
    case GEN__ST_BF16: {
        uint16_t h;
        memcpy(&h, v->data, sizeof h);
        gen__convert_host(&f, GEN__F32, &h, GEN__BF16, 1);
        break;
    }
    default: break;
    }
    return (double)f;
}

static gen_status shape_error(const lora_ctx *c, const module *m, const gen__tensor *w,
                              const char *why)
{
    char down[GEN__SHAPE_STR_MAX], up[GEN__SHAPE_STR_MAX], tw[GEN__SHAPE_STR_MAX];
    gen__shape_format(m->down, down, sizeof down);
    gen__shape_format(m->up, up, sizeof up);
    gen__tensor_str(w, tw, sizeof tw);
    return gen__error(GEN_EFORMAT,
                      "LoRA %s: module '%s': %s (key '%s' is %s, key '%s' is %s, %s weight '%s' "
                      "is %s)",
                      c->loras[m->file].path, m->stem, why, m->down->name, down, m->up->name, up,
                      gen__part_name(m->part), m->target, tw);
}

/* Pairs complete, dtypes usable, shapes fitting the target weight; sets scale. */
static gen_status check_module(lora_ctx *c, module *m)
{
    const char *path = c->loras[m->file].path;
    if (!m->down || !m->up) {
        const char *have = m->down ? "lora_down" : m->up ? "lora_up" : "only alpha";
        const char *key = m->down ? m->down->name : m->up ? m->up->name : m->key;
        return gen__error(GEN_EFORMAT, "LoRA %s: module '%s' (key '%s') has %s but no %s",
                          path, m->stem, key, have, m->down ? "up weight" : "down weight");
    }
    const gen__st_view *vs[3] = {m->down, m->up, m->alpha};
    for (int i = 0; i < 3; i++)
        if (vs[i] && !float_dtype(vs[i]->dtype))
            return gen__error(GEN_EFORMAT, "LoRA %s: key '%s' is %s (f32, f16 or bf16 expected)",
                              path, vs[i]->name, gen__st_dtype_short_name(vs[i]->dtype));
    gen_status st = resolve_target(c, m);
    if (st != GEN_OK)
        return st;
    gen__tensor w;
    st = gen__weights_view(c->parts[m->part], m->target, &w);
    if (st != GEN_OK)
        return st;
    const gen__st_view *d = m->down, *u = m->up;
    if ((d->ndim != 2 && d->ndim != 4) || (u->ndim != 2 && u->ndim != 4))
        return shape_error(c, m, &w, "down and up must be 2-D (linear) or 4-D (conv)");
    int64_t rank = d->shape[0];
    if (rank <= 0 || u->shape[1] != rank)
        return shape_error(c, m, &w, "the up weight's second dimension is not the rank "
                                     "(the down weight's first)");
    if (u->ndim == 4 && (u->shape[2] != 1 || u->shape[3] != 1))
        return shape_error(c, m, &w, "a conv up weight must be 1x1");
    if (w.ndim != 2 && w.ndim != 4)
        return shape_error(c, m, &w, "the weight is neither linear nor conv");
    if (u->shape[0] != w.shape[0])
        return shape_error(c, m, &w, "the up weight's output size differs from the weight's");
    /* The input side: down [r, in(, kh, kw)] against the weight's [out, in(, kh, kw)];
     * a 1x1 conv and a linear layer are interchangeable (SD2's proj_in). */
    bool fits = d->shape[1] == w.shape[1];
    if (d->ndim == 4 && w.ndim == 4)
        fits = fits && d->shape[2] == w.shape[2] && d->shape[3] == w.shape[3];
    else if (d->ndim == 4)
        fits = fits && d->shape[2] == 1 && d->shape[3] == 1;
    else if (w.ndim == 4)
        fits = fits && w.shape[2] == 1 && w.shape[3] == 1;
    if (!fits)
        return shape_error(c, m, &w, "the down weight does not fit the weight's input side");
    double alpha = (double)rank;
    if (m->alpha) {
        if (m->alpha->numel != 1)
            return gen__error(GEN_EFORMAT, "LoRA %s: key '%s' (alpha) has %" PRIu64
                                           " values, expected 1",
                              path, m->alpha->name, m->alpha->numel);
        alpha = view_scalar(m->alpha);
        if (!isfinite(alpha))
            return gen__error(GEN_EFORMAT, "LoRA %s: key '%s' (alpha) is not finite", path,
                              m->alpha->name);
    }
    m->scale = c->loras[m->file].weight * alpha / (double)rank;
    return GEN_OK;
}

/* ---- computing the patched weights ------------------------------------------------------- */

/* A LoRA tensor as a device matrix [rows, cols] of `dtype` (the file's data may
 * be unaligned and of another float type). */
static gen_status upload_matrix(gen__tensor *out, gen__backend *be, gen__dtype dtype,
                                const gen__st_view *v, int64_t rows, int64_t cols)
{
    gen__dtype src;
    switch (v->dtype) {
    case GEN__ST_F16: src = GEN__F16; break;
    case GEN__ST_BF16: src = GEN__BF16; break;
    default: src = GEN__F32; break;
    }
    size_t n = (size_t)v->numel;
    void *raw = gen__malloc(v->nbytes ? v->nbytes : 1);
    void *conv = gen__malloc(n * gen__dtype_size(dtype) + 1);
    gen_status st = raw && conv ? GEN_OK : gen__error(GEN_ENOMEM, "LoRA: out of memory");
    if (st == GEN_OK) {
        memcpy(raw, v->data, v->nbytes);
        gen__convert_host(conv, dtype, raw, src, n);
        st = gen__tensor_alloc(out, be, dtype, 2, (int64_t[]){rows, cols});
    }
    if (st == GEN_OK)
        st = gen__tensor_upload(out, conv, n * gen__dtype_size(dtype));
    gen__free(raw);
    gen__free(conv);
    return st;
}

static int cmp_target(const void *a, const void *b)
{
    const module *x = *(const module *const *)a, *y = *(const module *const *)b;
    int r = strcmp(x->target, y->target);
    return r ? r : (x->seq > y->seq) - (x->seq < y->seq);
}

/* W' = W + sum scale_i * up_i @ down_i for the modules ms[0..n) of one weight. */
static gen_status patch_weight(const lora_ctx *c, gen__device_weights *ov, module *const *ms,
                               size_t n)
{
    const gen__device_weights *dw = gen__device_weights_base(ov);
    gen__backend *be = gen__device_weights_backend(dw);
    gen__dtype dtype = gen__device_weights_dtype(dw);
    gen__tensor w, nw = GEN__TENSOR_EMPTY;
    gen_status st = gen__weights_view(dw, ms[0]->target, &w);
    if (st == GEN_OK)
        st = gen__tensor_alloc_like(&nw, be, &w);
    if (st == GEN_OK)
        st = gen__tensor_copy(&nw, &w);
    int64_t rows = w.shape[0], cols = gen__tensor_numel(&w) / w.shape[0];
    for (size_t i = 0; st == GEN_OK && i < n; i++) {
        const module *m = ms[i];
        int64_t rank = m->down->shape[0];
        gen__tensor up = GEN__TENSOR_EMPTY, down = GEN__TENSOR_EMPTY, c2;
        st = upload_matrix(&up, be, dtype, m->up, rows, rank);
        if (st == GEN_OK)
            st = upload_matrix(&down, be, dtype, m->down, rank, cols);
        if (st == GEN_OK)
            st = gen__tensor_view2(&c2, &nw, rows, cols, 0);
        if (st == GEN_OK)
            st = gen__gemm(&c2, &up, &down, false, false, (float)m->scale, 1.0f);
        gen__tensor_free(&up);
        gen__tensor_free(&down);
        if (st != GEN_OK)
            gen__error_prefix("LoRA %s: module '%s' -> %s weight '%s': ", c->loras[m->file].path,
                              m->stem, gen__part_name(m->part), m->target);
    }
    if (st == GEN_OK)
        st = gen__device_weights_overlay_put(ov, ms[0]->target, &nw);
    gen__tensor_free(&nw);
    return st;
}

static gen_status build_part(lora_ctx *c, gen__part part, gen__device_weights **out, int *patched)
{
    *out = NULL;
    *patched = 0;
    size_t n = 0;
    for (size_t i = 0; i < c->nmods; i++)
        n += c->mods[i].part == part && c->mods[i].scale != 0.0;
    if (!n)
        return GEN_OK;
    module **ms = gen__malloc(n * sizeof *ms);
    if (!ms)
        return gen__error(GEN_ENOMEM, "LoRA: out of memory");
    n = 0;
    for (size_t i = 0; i < c->nmods; i++)
        if (c->mods[i].part == part && c->mods[i].scale != 0.0)
            ms[n++] = &c->mods[i];
    qsort(ms, n, sizeof *ms, cmp_target);
    gen__device_weights *ov = NULL;
    gen_status st = gen__device_weights_overlay(&ov, c->parts[part]);
    for (size_t i = 0; st == GEN_OK && i < n;) {
        size_t j = i + 1;
        while (j < n && strcmp(ms[j]->target, ms[i]->target) == 0)
            j++;
        st = patch_weight(c, ov, ms + i, j - i);
        i = j;
    }
    if (st == GEN_OK)
        st = gen__backend_synchronize(gen__device_weights_backend(c->parts[part]));
    gen__free(ms);
    if (st != GEN_OK) {
        gen__device_weights_release(ov);
        return st;
    }
    *patched = (int)gen__device_weights_overlay_count(ov);
    *out = ov;
    return GEN_OK;
}

/* ---- entry point ------------------------------------------------------------------------- */

static gen_status open_file(lora_ctx *c, int i)
{
    const char *path = c->loras[i].path;
    gen_status st = gen__model_refuse_pickle(path);
    if (st != GEN_OK)
        return gen__error_prefix("LoRA: ");
    st = gen__st_open(&c->files[i], path);
    if (st != GEN_OK)
        return gen__error_prefix("LoRA: ");
    if (gen__st_count(c->files[i]) == 0)
        return gen__error(GEN_EFORMAT, "LoRA %s: the file holds no tensors", path);
    for (size_t k = 0; st == GEN_OK && k < gen__st_count(c->files[i]); k++)
        st = add_key(c, i, gen__st_at(c->files[i], k));
    return st;
}

gen_status gen__lora_build(const gen__job_lora *loras, int count,
                           const gen__device_weights *const parts[GEN__PART_COUNT],
                           gen__device_weights *overlays[GEN__PART_COUNT], gen__lora_stats *stats)
{
    for (int p = 0; p < GEN__PART_COUNT; p++)
        overlays[p] = NULL;
    gen__lora_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    if (count <= 0)
        return GEN_OK;
    if (count > GEN__JOB_MAX_LORAS)
        return gen__error(GEN_EINVAL, "LoRA: at most %d per job", GEN__JOB_MAX_LORAS);
    int64_t t0 = gen__monotonic_ns();
    lora_ctx c;
    memset(&c, 0, sizeof c);
    c.loras = loras;
    c.count = count;
    c.parts = parts;
    gen_status st = GEN_OK;
    /* Everything is read and checked before anything is computed. */
    for (int i = 0; st == GEN_OK && i < count; i++)
        st = open_file(&c, i);
    for (size_t i = 0; st == GEN_OK && i < c.nmods; i++)
        st = check_module(&c, &c.mods[i]);
    static const gen__part patchable[] = {GEN__PART_TEXT_ENCODER, GEN__PART_UNET};
    for (size_t k = 0; st == GEN_OK && k < sizeof patchable / sizeof patchable[0]; k++) {
        gen__part p = patchable[k];
        st = build_part(&c, p, &overlays[p], &stats->patched[p]);
        if (overlays[p])
            stats->overlay_bytes += gen__device_weights_bytes(overlays[p]);
    }
    for (size_t i = 0; i < c.nmods; i++)
        stats->modules += c.mods[i].scale != 0.0;
    stats->files = count;
    for (int i = 0; i < count; i++)
        gen__st_close(c.files[i]);
    for (int p = 0; p < GEN__PART_COUNT; p++) {
        for (size_t i = 0; i < c.nunder[p]; i++)
            gen__free(c.under[p][i].under);
        gen__free(c.under[p]);
    }
    gen__free(c.mods);
    if (st != GEN_OK) {
        for (int p = 0; p < GEN__PART_COUNT; p++) {
            gen__device_weights_release(overlays[p]);
            overlays[p] = NULL;
        }
        memset(stats, 0, sizeof *stats);
        return st;
    }
    stats->seconds = (double)(gen__monotonic_ns() - t0) / 1e9;
    return GEN_OK;
}
