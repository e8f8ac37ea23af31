/* gen_model_inspect: the public, read-only description of a model on disk. */
#include <gen/model.h>

#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "model/model.h"

typedef struct info_part {
    const char *name;
    const char *dtype;
    uint64_t parameters, tensors, bytes;
} info_part;

struct gen_model_info {
    char *path;
    gen_model_family family;
    gen_model_layout layout;
    gen_model_prediction prediction;
    int supported;
    size_t n_parts;
    info_part parts[GEN__PART_COUNT];
};

GEN_API gen_status gen_model_inspect(gen_model_info **out, const char *path)
{
    if (!out)
        return gen__error(GEN_EINVAL, "gen_model_inspect: out is NULL");
    *out = NULL;
    if (!path)
        return gen__error(GEN_EINVAL, "gen_model_inspect: path is NULL");
    gen__model_open_options opts = GEN__MODEL_OPEN_OPTIONS_INIT;
    opts.allow_unsupported = true;
    gen__model *m;
    gen_status st = gen__model_open(&m, path, &opts);
    if (st != GEN_OK)
        return st;
    gen_model_info *info = gen__calloc(1, sizeof(*info));
    char *p = gen__strdup(path);
    if (!info || !p) {
        gen__free(info);
        gen__free(p);
        gen__model_close(m);
        return gen__error(GEN_ENOMEM, "%s: out of memory", path);
    }
    info->path = p;
    info->family = (gen_model_family)gen__model_family(m);
    info->layout = (gen_model_layout)gen__model_layout(m);
    info->prediction = (gen_model_prediction)gen__model_prediction(m);
    info->supported = gen__model_supported(m) ? 1 : 0;
    for (int i = 0; i < GEN__PART_COUNT; i++) {
        gen__part part = (gen__part)i;
        if (gen__model_tensor_count(m, part) == 0)
            continue;
        info_part *ip = &info->parts[info->n_parts++];
        ip->name = gen__part_name(part);
        gen__st_dtype d = gen__model_part_dtype(m, part);
        ip->dtype = d == GEN__ST_INVALID ? "mixed" : gen__st_dtype_short_name(d);
        ip->parameters = gen__model_part_parameters(m, part);
        ip->tensors = gen__model_tensor_count(m, part);
        ip->bytes = gen__model_part_bytes(m, part);
    }
    gen__model_close(m);
    *out = info;
    return GEN_OK;
}

GEN_API void gen_model_info_destroy(gen_model_info *info)
{
    if (!info)
        return;
    gen__free(info->path);
    gen__free(info);
}

GEN_API const char *gen_model_info_path(const gen_model_info *info)
{
    return info ? info->path : NULL;
}

GEN_API gen_model_family gen_model_info_family(const gen_model_info *info)
{
    return info ? info->family : GEN_MODEL_FAMILY_UNKNOWN;
}

GEN_API gen_model_layout gen_model_info_layout(const gen_model_info *info)
{
    return info ? info->layout : (gen_model_layout)0;
}

GEN_API gen_model_prediction gen_model_info_prediction(const gen_model_info *info)
{
    return info ? info->prediction : GEN_MODEL_PREDICTION_EPSILON;
}

GEN_API int gen_model_info_supported(const gen_model_info *info)
{
    return info ? info->supported : 0;
}

GEN_API size_t gen_model_info_part_count(const gen_model_info *info)
{
    return info ? info->n_parts : 0;
}

static const info_part *part_at(const gen_model_info *info, size_t i)
{
    return info && i < info->n_parts ? &info->parts[i] : NULL;
}

GEN_API const char *gen_model_info_part_name(const gen_model_info *info, size_t part)
{
    const info_part *p = part_at(info, part);
    return p ? p->name : NULL;
}

GEN_API const char *gen_model_info_part_dtype(const gen_model_info *info, size_t part)
{
    const info_part *p = part_at(info, part);
    return p ? p->dtype : NULL;
}

GEN_API uint64_t gen_model_info_part_parameters(const gen_model_info *info, size_t part)
{
    const info_part *p = part_at(info, part);
    return p ? p->parameters : 0;
}

GEN_API uint64_t gen_model_info_part_tensors(const gen_model_info *info, size_t part)
{
    const info_part *p = part_at(info, part);
    return p ? p->tensors : 0;
}

GEN_API uint64_t gen_model_info_part_bytes(const gen_model_info *info, size_t part)
{
    const info_part *p = part_at(info, part);
    return p ? p->bytes : 0;
}

GEN_API const char *gen_model_family_name(gen_model_family family)
{
    switch (family) {
    case GEN_MODEL_FAMILY_UNKNOWN:
        return "unknown";
    case GEN_MODEL_FAMILY_SD1:
        return "sd1";
    case GEN_MODEL_FAMILY_SD2:
        return "sd2";
    case GEN_MODEL_FAMILY_SDXL:
        return "sdxl";
    }
    return "?";
}

GEN_API const char *gen_model_layout_name(gen_model_layout layout)
{
    switch (layout) {
    case GEN_MODEL_LAYOUT_DIFFUSERS:
        return "diffusers";
    case GEN_MODEL_LAYOUT_SINGLE_FILE:
        return "single-file";
    }
    return "?";
}

GEN_API const char *gen_model_prediction_name(gen_model_prediction prediction)
{
    switch (prediction) {
    case GEN_MODEL_PREDICTION_EPSILON:
        return "epsilon";
    case GEN_MODEL_PREDICTION_V:
        return "v_prediction";
    case GEN_MODEL_PREDICTION_SAMPLE:
        return "sample";
    }
    return "?";
}
