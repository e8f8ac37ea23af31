/* Key names of original LDM/CompVis ("single-file") checkpoints mapped to the
 * diffusers names libgen uses internally. Each function takes the key without
 * its part prefix ("model.diffusion_model.", "first_stage_model.") and writes
 * the diffusers name; false when the key has no diffusers counterpart (the
 * caller reports it). */
#ifndef GEN_MODEL_LDM_KEYS_H
#define GEN_MODEL_LDM_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#define GEN__LDM_UNET_PREFIX "model.diffusion_model."
#define GEN__LDM_VAE_PREFIX "first_stage_model."
#define GEN__LDM_CLIP_PREFIX "cond_stage_model.transformer."   /* SD1: OpenAI CLIP */
#define GEN__LDM_OPENCLIP_PREFIX "cond_stage_model.model."     /* SD2: OpenCLIP ViT-H */
#define GEN__LDM_SDXL_PREFIX "conditioner.embedders."

#define GEN__NAME_MAX 256

/* `layers_per_block` is needed to turn flat input/output block numbers into
 * (block, layer); gen__ldm_unet_layers_per_block finds it from the keys. */
bool gen__ldm_unet_name(const char *key, int layers_per_block, char *out, size_t out_size);

/* VAE keys; decoder blocks are numbered in reverse in LDM, hence n_blocks.
 * *squeeze is set when the LDM tensor is a 1x1 conv [C, C, 1, 1] that
 * diffusers stores as a linear [C, C] (mid-block attention q/k/v/proj_out). */
bool gen__ldm_vae_name(const char *key, int n_blocks, char *out, size_t out_size, bool *squeeze);

/* SD1 text encoder under cond_stage_model.transformer.: the transformers
 * CLIPTextModel names, with "text_model." added when the file lacks it.
 * *skip for buffers that are not weights (position_ids). */
bool gen__clip_text_name(const char *key, char *out, size_t out_size, bool *skip);

/* SD2 OpenCLIP under cond_stage_model.model.. *split is set for the fused
 * attention in-projection: out receives the prefix
 * "text_model.encoder.layers.N.self_attn." and *split_suffix "weight"/"bias";
 * the caller makes q_proj/k_proj/v_proj views of the three row blocks.
 * *layer is the resblock number (-1 when not in a resblock) so the caller can
 * drop the last one (SD2 uses the penultimate layer, as diffusers does).
 * *skip for tensors diffusers does not load (text_projection, logit_scale, attn_mask). */
bool gen__openclip_text_name(const char *key, char *out, size_t out_size, bool *split,
                             const char **split_suffix, int *layer, bool *skip);

/* diffusers-folder names that older diffusers versions wrote differently
 * (VAE mid-block attention query/key/value/proj_attn): rewritten in place. */
void gen__diffusers_legacy_vae_name(char *name, size_t size);

#endif
