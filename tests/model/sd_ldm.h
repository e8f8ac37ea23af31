/* Test/bench helper: the tensor list (names and shapes) of a Stable Diffusion
 * single-file checkpoint in the original LDM key naming, for any block
 * channels, so tests can make full-size SD1.5-shaped files without Python. */
#ifndef GEN_TESTS_MODEL_SD_LDM_H
#define GEN_TESTS_MODEL_SD_LDM_H

#include <stddef.h>
#include <stdint.h>

typedef struct sd_ldm_shape {
    int unet_channels[4], n_unet_blocks, layers_per_block, context_dim;
    int vae_channels[4], n_vae_blocks, vae_layers;
    int text_hidden, text_layers, text_ffn, vocab, positions;
    int openclip; /* SD2 text encoder: cond_stage_model.model.* with fused q/k/v */
    int linear_proj; /* SD2: proj_in/proj_out are linear */
} sd_ldm_shape;

/* SD1.5 and SD2.1 (768-v) reference shapes. */
extern const sd_ldm_shape sd_ldm_sd15;
extern const sd_ldm_shape sd_ldm_sd21;

/* Write a sparse .safetensors (header written, data left as a hole: zeros)
 * of `dtype` ("F16"/"F32"). Returns the file size, 0 on failure. */
uint64_t sd_ldm_write_sparse(const char *path, const sd_ldm_shape *s, const char *dtype);

#endif
