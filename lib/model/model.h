/* A Stable Diffusion model on disk, opened for the pipeline: a diffusers
 * folder or a single-file (LDM/CompVis) checkpoint, presented the same way:
 * typed configs, and per part (unet, vae, text_encoder) a lookup from the
 * diffusers tensor name to a zero-copy view into the mapped files.
 *
 * Names are diffusers' (UNet2DConditionModel, AutoencoderKL) and
 * transformers' CLIPTextModel with the "text_model." prefix, whatever the
 * layout on disk. Pickle checkpoints (.ckpt .pt .pth .bin) are refused: they
 * can run code when loaded.
 *
 * A gen__model is immutable after open: any number of threads may read it. */
#ifndef GEN_MODEL_MODEL_H
#define GEN_MODEL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gen/common.h>

#include "model/config.h"
#include "model/safetensors.h"

typedef enum gen__family {
    GEN__FAMILY_UNKNOWN = 0,
    GEN__FAMILY_SD1 = 1,
    GEN__FAMILY_SD2 = 2,
    GEN__FAMILY_SDXL = 3 /* recognised, not supported yet */
} gen__family;

typedef enum gen__layout {
    GEN__LAYOUT_DIFFUSERS = 1,
    GEN__LAYOUT_SINGLE_FILE = 2
} gen__layout;

typedef enum gen__part {
    GEN__PART_UNET = 0,
    GEN__PART_VAE = 1,
    GEN__PART_TEXT_ENCODER = 2,
    GEN__PART_COUNT = 3
} gen__part;

typedef struct gen__model_open_options {
    /* NULL: the plain weight files, or the ".fp16" variant when only that
     * exists; "fp16" (or another variant name): require that variant. */
    const char *variant;
    /* Single file only: a diffusers folder whose config.json files describe
     * the checkpoint (else configs are derived from shapes + family defaults). */
    const char *config_dir;
    /* -1: from the scheduler config (diffusers folder) or the family default
     * (single file: SD2 = v-prediction, as diffusers assumes); else a
     * gen__prediction that overrides it. */
    int prediction;
    /* Open recognised-but-unsupported families (SDXL) for inspection: parts
     * then hold the file's own names, configs are not guaranteed. */
    bool allow_unsupported;
} gen__model_open_options;

#define GEN__MODEL_OPEN_OPTIONS_INIT {NULL, NULL, -1, false}

typedef struct gen__model gen__model;

/* Open a model from a diffusers folder or a .safetensors single file. opts may
 * be NULL. *out is NULL on failure. Errors: GEN_ENOTFOUND (no such path, or a
 * folder without the expected files), GEN_EFORMAT (malformed file or config),
 * GEN_EUNSUPPORTED (pickle checkpoint, SDXL, architecture variant), GEN_EIO. */
gen_status gen__model_open(gen__model **out, const char *path, const gen__model_open_options *opts);
void gen__model_close(gen__model *model);

const char *gen__model_path(const gen__model *m);
gen__family gen__model_family(const gen__model *m);
gen__layout gen__model_layout(const gen__model *m);
gen__prediction gen__model_prediction(const gen__model *m);
bool gen__model_supported(const gen__model *m);
/* Whether the configs came from config.json files (false: derived from shapes). */
bool gen__model_configs_from_files(const gen__model *m);

/* The tokenizer/ folder (vocab.json, merges.txt) of the diffusers folder or of
 * the config folder given for a single file; NULL when there is none (a bare
 * single file: the caller supplies a CLIP tokenizer). */
const char *gen__model_tokenizer_dir(const gen__model *m);

const gen__unet_config *gen__model_unet_config(const gen__model *m);
const gen__vae_config *gen__model_vae_config(const gen__model *m);
const gen__text_config *gen__model_text_config(const gen__model *m);
const gen__scheduler_config *gen__model_scheduler_config(const gen__model *m);

const char *gen__part_name(gen__part part); /* "unet", "vae", "text_encoder" */

/* Tensors of a part, sorted by name. */
size_t gen__model_tensor_count(const gen__model *m, gen__part part);
const gen__st_view *gen__model_tensor_at(const gen__model *m, gen__part part, size_t index);
/* NULL when absent (no error recorded). */
const gen__st_view *gen__model_find(const gen__model *m, gen__part part, const char *name);
/* Look a tensor up and check its shape (ndim dims; a dim < 0 matches any
 * size). GEN_ENOTFOUND / GEN_EFORMAT with a message naming the model, part,
 * tensor, expected and actual shape. */
gen_status gen__model_expect(const gen__model *m, gen__part part, const char *name, int ndim,
                             const int64_t *dims, const gen__st_view **out);

/* Totals over a part's float tensors. dtype is GEN__ST_INVALID when they mix types. */
uint64_t gen__model_part_parameters(const gen__model *m, gen__part part);
uint64_t gen__model_part_bytes(const gen__model *m, gen__part part);
gen__st_dtype gen__model_part_dtype(const gen__model *m, gen__part part);

/* Refuse pickle checkpoints by name (.ckpt .pt .pth .bin .pkl) or content
 * (pickle protocol 2+ or zip magic): GEN_EUNSUPPORTED with the reason and the
 * way out. GEN_OK for anything else. */
gen_status gen__model_refuse_pickle(const char *path);

#endif
