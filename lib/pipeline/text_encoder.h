/* CLIP text encoder (transformers CLIPTextModel) as Stable Diffusion pipelines
 * use it: token + position embeddings, pre-LayerNorm transformer layers with
 * causal self-attention, MLP (quick_gelu or gelu per config), final LayerNorm.
 * The output is last_hidden_state (or, with clip_skip, diffusers'
 * final_layer_norm(hidden_states[-(clip_skip + 1)])). */
#ifndef GEN_PIPELINE_TEXT_ENCODER_H
#define GEN_PIPELINE_TEXT_ENCODER_H

#include <stdint.h>

#include <gen/common.h>

#include "backend/backend.h"
#include "model/config.h"
#include "pipeline/weights.h"

typedef struct gen__text_encoder gen__text_encoder;

/* Bind the weights of `cfg->num_hidden_layers` layers (names with or without the
 * "text_model." prefix: transformers 4 and 5 layouts). The weights must outlive
 * the encoder. GEN_ENOTFOUND / GEN_EINVAL naming the missing or mis-shaped tensor. */
gen_status gen__text_encoder_create(gen__text_encoder **out, const gen__text_config *cfg,
                                    const gen__device_weights *weights);
void gen__text_encoder_destroy(gen__text_encoder *te);

/* ids: host int32 [batch * seq_len] (seq_len <= max_position_embeddings).
 * out: allocated here, [batch, seq_len, hidden_size] on the weights' device in
 * their dtype. clip_skip: 0 = all layers; k >= 1 = skip the last k layers (then
 * the final layer norm), as diffusers' clip_skip; k must be < layer count. */
gen_status gen__text_encoder_forward(const gen__text_encoder *te, gen__tensor *out,
                                     const int32_t *ids, int batch, int seq_len, int clip_skip);

int gen__text_encoder_hidden_size(const gen__text_encoder *te);

#endif
