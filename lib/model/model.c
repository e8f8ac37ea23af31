#include "model/model.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "model/model_internal.h"

const char *gen__part_name(gen__part part)
{
    switch (part) {
    case GEN__PART_UNET:
        return "unet";
    case GEN__PART_VAE:
        return "vae";
    case GEN__PART_TEXT_ENCODER:
        return "text_encoder";
    default:
        return "?";
    }
}

bool gen__path_is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

bool gen__path_is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* ---------------------------------------------------------------- pickle */

static bool has_suffix_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    if (m > n)
        return false;
    for (size_t i = 0; i < m; i++)
        if (tolower((unsigned char)s[n - m + i]) != tolower((unsigned char)suffix[i]))
            return false;
    return true;
}

static gen_status pickle_error(const char *path, const char *why)
{
    return gen__error(GEN_EUNSUPPORTED,
                      "%s: refusing a pickle checkpoint (%s): loading pickle can execute "
                      "arbitrary code. Convert it to .safetensors (e.g. with diffusers' "
                      "conversion scripts in a sandbox) or download the .safetensors release, "
                      "and load that",
                      path, why);
}

gen_status gen__model_refuse_pickle(const char *path)
{
    static const char *const exts[] = {".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle"};
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
        if (has_suffix_ci(path, exts[i])) {
            char why[64];
            snprintf(why, sizeof(why), "%s file", exts[i]);
            return pickle_error(path, why);
        }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return GEN_OK; /* the real open reports it */
    unsigned char magic[9] = {0};
    ssize_t n = read(fd, magic, sizeof(magic));
    close(fd);
    /* A safetensors header length can begin with the same bytes (640 = 0x80 0x02):
     * its JSON always starts at byte 8 with '{', which neither format has there. */
    if (n >= 9 && magic[8] == '{')
        return GEN_OK;
    /* torch.save writes a zip archive (PK\3\4) or a raw pickle (PROTO opcode 0x80 + version). */
    if (n >= 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4)
        return pickle_error(path, "a torch zip archive, whatever its name");
    if (n >= 2 && magic[0] == 0x80 && magic[1] >= 2 && magic[1] <= 5)
        return pickle_error(path, "pickle data, whatever its name");
    return GEN_OK;
}

/* ---------------------------------------------------------------- parts */

gen_status gen__model_keep_file(gen__model *m, gen__st_file *f)
{
    if (m->n_files == m->cap_files) {
        size_t cap = m->cap_files ? 2 * m->cap_files : 8;
        gen__st_file **nf = gen__realloc(m->files, cap * sizeof(*nf));
        if (!nf) {
            gen__st_close(f);
            return gen__error(GEN_ENOMEM, "%s: out of memory", m->path);
        }
        m->files = nf;
        m->cap_files = cap;
    }
    m->files[m->n_files++] = f;
    return GEN_OK;
}

gen_status gen__model_add(gen__model *m, gen__part part, const gen__st_view *view,
                          const char *name)
{
    gen__model_part *p = &m->parts[part];
    if (p->count == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 256;
        gen__st_view *nt = gen__realloc(p->tensors, cap * sizeof(*nt));
        if (!nt)
            return gen__error(GEN_ENOMEM, "%s: out of memory", m->path);
        p->tensors = nt;
        p->cap = cap;
    }
    char *copy = gen__strdup(name);
    if (!copy)
        return gen__error(GEN_ENOMEM, "%s: out of memory", m->path);
    gen__st_view *t = &p->tensors[p->count++];
    *t = *view;
    t->name = copy;
    p->present = true;
    return GEN_OK;
}

static int cmp_view(const void *a, const void *b)
{
    return strcmp(((const gen__st_view *)a)->name, ((const gen__st_view *)b)->name);
}

gen_status gen__model_finish_parts(gen__model *m)
{
    for (int p = 0; p < GEN__PART_COUNT; p++) {
        gen__model_part *part = &m->parts[p];
        if (part->count)
            qsort(part->tensors, part->count, sizeof(*part->tensors), cmp_view);
        for (size_t i = 1; i < part->count; i++)
            if (strcmp(part->tensors[i - 1].name, part->tensors[i].name) == 0)
                return gen__error(GEN_EFORMAT, "%s: %s tensor '%s' appears twice", m->path,
                                  gen__part_name((gen__part)p), part->tensors[i].name);
    }
    return GEN_OK;
}

/* ---------------------------------------------------------------- open/close */

void gen__model_close(gen__model *m)
{
    if (!m)
        return;
    for (int p = 0; p < GEN__PART_COUNT; p++) {
        for (size_t i = 0; i < m->parts[p].count; i++)
            gen__free((void *)m->parts[p].tensors[i].name);
        gen__free(m->parts[p].tensors);
    }
    for (size_t i = 0; i < m->n_files; i++)
        gen__st_close(m->files[i]);
    gen__free(m->files);
    gen__scheduler_config_free(&m->scheduler);
    gen__free(m->tokenizer_dir);
    gen__free(m->path);
    gen__free(m);
}

gen_status gen__model_open(gen__model **out, const char *path, const gen__model_open_options *opts)
{
    gen__model_open_options defaults = GEN__MODEL_OPEN_OPTIONS_INIT;
    *out = NULL;
    if (!path || !path[0])
        return gen__error(GEN_EINVAL, "model path is empty");
    if (!opts)
        opts = &defaults;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return gen__error(errno == ENOENT ? GEN_ENOTFOUND : GEN_EIO, "%s: %s", path,
                          strerror(errno));
    bool dir = S_ISDIR(sb.st_mode);
    if (!dir && !S_ISREG(sb.st_mode))
        return gen__error(GEN_EINVAL, "%s: neither a folder nor a file", path);
    if (!dir) {
        gen_status st = gen__model_refuse_pickle(path);
        if (st != GEN_OK)
            return st;
    }
    gen__model *m = gen__calloc(1, sizeof(*m));
    if (!m)
        return gen__error(GEN_ENOMEM, "%s: out of memory", path);
    m->path = gen__strdup(path);
    if (!m->path) {
        gen__free(m);
        return gen__error(GEN_ENOMEM, "%s: out of memory", path);
    }
    m->layout = dir ? GEN__LAYOUT_DIFFUSERS : GEN__LAYOUT_SINGLE_FILE;
    m->supported = true;
    gen_status st = dir ? gen__model_load_folder(m, opts) : gen__model_load_single(m, opts);
    if (st == GEN_OK)
        st = gen__model_finish_parts(m);
    if (st == GEN_OK && !m->supported && !opts->allow_unsupported)
        st = gen__error(GEN_EUNSUPPORTED,
                        "%s: %s models are recognised but not supported yet (SD1.x and SD2.x are)",
                        path, m->family == GEN__FAMILY_SDXL ? "SDXL" : "these");
    if (st != GEN_OK) {
        gen__model_close(m);
        return st;
    }
    *out = m;
    return GEN_OK;
}

/* ---------------------------------------------------------------- accessors */

const char *gen__model_path(const gen__model *m)
{
    return m->path;
}

const char *gen__model_tokenizer_dir(const gen__model *m)
{
    return m->tokenizer_dir;
}

gen_status gen__model_find_tokenizer(gen__model *m, const char *dir)
{
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/tokenizer/vocab.json", dir);
    if (n < 0 || (size_t)n >= sizeof(path) || !gen__path_is_file(path))
        return GEN_OK;
    path[n - strlen("/vocab.json")] = '\0';
    gen__free(m->tokenizer_dir);
    m->tokenizer_dir = gen__strdup(path);
    return m->tokenizer_dir ? GEN_OK : gen__error(GEN_ENOMEM, "%s: out of memory", m->path);
}

gen__family gen__model_family(const gen__model *m)
{
    return m->family;
}

gen__layout gen__model_layout(const gen__model *m)
{
    return m->layout;
}

gen__prediction gen__model_prediction(const gen__model *m)
{
    return m->prediction;
}

bool gen__model_supported(const gen__model *m)
{
    return m->supported;
}

bool gen__model_configs_from_files(const gen__model *m)
{
    return m->configs_from_files;
}

const gen__unet_config *gen__model_unet_config(const gen__model *m)
{
    return &m->unet;
}

const gen__vae_config *gen__model_vae_config(const gen__model *m)
{
    return &m->vae;
}

const gen__text_config *gen__model_text_config(const gen__model *m)
{
    return &m->text;
}

const gen__scheduler_config *gen__model_scheduler_config(const gen__model *m)
{
    return &m->scheduler;
}

static bool valid_part(gen__part part)
{
    return (int)part >= 0 && part < GEN__PART_COUNT;
}

size_t gen__model_tensor_count(const gen__model *m, gen__part part)
{
    return valid_part(part) ? m->parts[part].count : 0;
}

const gen__st_view *gen__model_tensor_at(const gen__model *m, gen__part part, size_t i)
{
    if (!valid_part(part) || i >= m->parts[part].count)
        return NULL;
    return &m->parts[part].tensors[i];
}

const gen__st_view *gen__model_find(const gen__model *m, gen__part part, const char *name)
{
    if (!valid_part(part) || !name)
        return NULL;
    gen__st_view key = {.name = name};
    return bsearch(&key, m->parts[part].tensors, m->parts[part].count, sizeof(key), cmp_view);
}

gen_status gen__model_expect(const gen__model *m, gen__part part, const char *name, int ndim,
                             const int64_t *dims, const gen__st_view **out)
{
    *out = NULL;
    const gen__st_view *t = gen__model_find(m, part, name);
    if (!t)
        return gen__error(GEN_ENOTFOUND, "%s: %s has no tensor '%s'", m->path,
                          gen__part_name(part), name);
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = dims[i] < 0 || dims[i] == t->shape[i];
    if (!ok) {
        gen__st_view want = {.ndim = ndim};
        for (int i = 0; i < ndim && i < GEN__ST_MAX_DIMS; i++)
            want.shape[i] = dims[i];
        char a[160], b[160];
        gen__shape_format(&want, a, sizeof(a));
        gen__shape_format(t, b, sizeof(b));
        return gen__error(GEN_EFORMAT, "%s: %s tensor '%s' has shape %s, expected %s", m->path,
                          gen__part_name(part), name, b, a);
    }
    *out = t;
    return GEN_OK;
}

uint64_t gen__model_part_parameters(const gen__model *m, gen__part part)
{
    uint64_t n = 0;
    for (size_t i = 0; i < gen__model_tensor_count(m, part); i++)
        if (gen__st_dtype_is_float(m->parts[part].tensors[i].dtype))
            n += m->parts[part].tensors[i].numel;
    return n;
}

uint64_t gen__model_part_bytes(const gen__model *m, gen__part part)
{
    uint64_t n = 0;
    for (size_t i = 0; i < gen__model_tensor_count(m, part); i++)
        n += m->parts[part].tensors[i].nbytes;
    return n;
}

gen__st_dtype gen__model_part_dtype(const gen__model *m, gen__part part)
{
    gen__st_dtype d = GEN__ST_INVALID;
    for (size_t i = 0; i < gen__model_tensor_count(m, part); i++) {
        gen__st_dtype t = m->parts[part].tensors[i].dtype;
        if (!gen__st_dtype_is_float(t))
            continue;
        if (d == GEN__ST_INVALID)
            d = t;
        else if (d != t)
            return GEN__ST_INVALID;
    }
    return d;
}
