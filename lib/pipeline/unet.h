/* UNet2DConditionModel (diffusers) for SD1.x / SD2.x configs: positional time
 * embedding, conv_in, CrossAttnDown/Down blocks, UNetMidBlock2DCrossAttn,
 * Up/CrossAttnUp blocks with skip concatenation, conv_norm_out + SiLU, conv_out.
 * Transformer blocks: GroupNorm, proj_in (1x1 conv or linear), self-attention,
 * cross-attention over the text embeddings, GEGLU feed-forward, proj_out. */
#ifndef GEN_PIPELINE_UNET_H
#define GEN_PIPELINE_UNET_H

#include <gen/common.h>

#include "backend/backend.h"
#include "model/config.h"
#include "pipeline/weights.h"

typedef struct gen__unet gen__unet;

/* Bind (and shape-check) every weight the config needs. The weights must outlive
 * the UNet. GEN_EUNSUPPORTED for configs this UNet cannot run (SDXL additions). */
gen_status gen__unet_create(gen__unet **out, const gen__unet_config *cfg,
                            const gen__device_weights *weights);
void gen__unet_destroy(gen__unet *unet);

/* One forward pass.
 * sample  [N, in_channels, h, w] (h and w divisible by 2^(blocks-1)),
 * timesteps: N host floats (the same t for every item of a CFG batch),
 * context [N, tokens, cross_attention_dim] (encoder_hidden_states),
 * out: allocated here, [N, out_channels, h, w]. Every temporary is freed. */
gen_status gen__unet_forward(const gen__unet *unet, gen__tensor *out, const gen__tensor *sample,
                             const float *timesteps, const gen__tensor *context);

const gen__unet_config *gen__unet_config_of(const gen__unet *unet);

#endif
