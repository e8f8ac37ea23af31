/* libgen — model files: what a model on disk is, before any job uses it.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef GEN_MODEL_H
#define GEN_MODEL_H

#include <gen/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Model families. Values are part of the ABI. */
typedef enum gen_model_family {
    GEN_MODEL_FAMILY_UNKNOWN = 0,
    GEN_MODEL_FAMILY_SD1 = 1, /* Stable Diffusion 1.x (CLIP ViT-L text encoder) */
    GEN_MODEL_FAMILY_SD2 = 2, /* Stable Diffusion 2.x (OpenCLIP ViT-H text encoder) */
    GEN_MODEL_FAMILY_SDXL = 3 /* recognised; not supported yet */
} gen_model_family;

/* How the model is stored. */
typedef enum gen_model_layout {
    GEN_MODEL_LAYOUT_DIFFUSERS = 1,  /* a diffusers folder (model_index.json, unet/, vae/, ...) */
    GEN_MODEL_LAYOUT_SINGLE_FILE = 2 /* one .safetensors in the original LDM key naming */
} gen_model_layout;

/* What the UNet predicts. */
typedef enum gen_model_prediction {
    GEN_MODEL_PREDICTION_EPSILON = 0,
    GEN_MODEL_PREDICTION_V = 1,
    GEN_MODEL_PREDICTION_SAMPLE = 2
} gen_model_prediction;

/* A description of a model on disk: family, layout, parts, dtypes, sizes.
 * Immutable; may be read from several threads at once. */
typedef struct gen_model_info gen_model_info;

/* Inspect the model at `path`: a diffusers folder or a .safetensors
 * single-file checkpoint. Every weight file is validated (headers only: the
 * weights are memory-mapped, not read). Pickle checkpoints (.ckpt .pt .pth
 * .bin) are refused with GEN_EUNSUPPORTED: loading them can execute code;
 * convert them to .safetensors. A recognised family libgen cannot run yet
 * (SDXL) is described with gen_model_info_supported() = 0, not refused.
 * Errors: GEN_ENOTFOUND, GEN_EFORMAT (names the file, tensor and rule),
 * GEN_EUNSUPPORTED, GEN_EIO, GEN_ENOMEM. *out is NULL on failure. */
GEN_API gen_status gen_model_inspect(gen_model_info **out, const char *path);

/* Free an info. NULL is accepted. */
GEN_API void gen_model_info_destroy(gen_model_info *info);

/* The path given to gen_model_inspect (owned by the info). */
GEN_API const char *gen_model_info_path(const gen_model_info *info);
GEN_API gen_model_family gen_model_info_family(const gen_model_info *info);
GEN_API gen_model_layout gen_model_info_layout(const gen_model_info *info);
GEN_API gen_model_prediction gen_model_info_prediction(const gen_model_info *info);
/* 1 when this build of libgen can generate with the model, else 0. */
GEN_API int gen_model_info_supported(const gen_model_info *info);

/* Parts: "unet", "vae", "text_encoder". Index from 0 to count - 1; out of
 * range gives NULL / 0. */
GEN_API size_t gen_model_info_part_count(const gen_model_info *info);
GEN_API const char *gen_model_info_part_name(const gen_model_info *info, size_t part);
/* Element type of the part's weights: "f32", "f16", "bf16", "mixed". */
GEN_API const char *gen_model_info_part_dtype(const gen_model_info *info, size_t part);
GEN_API uint64_t gen_model_info_part_parameters(const gen_model_info *info, size_t part);
GEN_API uint64_t gen_model_info_part_tensors(const gen_model_info *info, size_t part);
GEN_API uint64_t gen_model_info_part_bytes(const gen_model_info *info, size_t part);

/* Static names: "sd1", "sd2", "sdxl", "unknown"; "diffusers", "single-file";
 * "epsilon", "v_prediction", "sample". "?" for values out of range. */
GEN_API const char *gen_model_family_name(gen_model_family family);
GEN_API const char *gen_model_layout_name(gen_model_layout layout);
GEN_API const char *gen_model_prediction_name(gen_model_prediction prediction);

#ifdef __cplusplus
}
#endif

#endif /* GEN_MODEL_H */
