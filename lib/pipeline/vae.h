/* AutoencoderKL (diffusers) of Stable Diffusion: the decoder (post_quant_conv,
 * conv_in, mid block with single-head spatial attention, up blocks, conv_norm_out
 * + SiLU, conv_out) and the encoder (conv_in, down blocks with (0,1,0,1)-padded
 * stride-2 downsampling, mid block, conv_out -> moments, quant_conv). */
#ifndef GEN_PIPELINE_VAE_H
#define GEN_PIPELINE_VAE_H

#include <stdbool.h>

#include <gen/common.h>

#include "backend/backend.h"
#include "model/config.h"
#include "pipeline/weights.h"

typedef struct gen__vae gen__vae;

/* Bind the weights. with_encoder = false binds the decoder only (txt2img needs
 * nothing else; a decoder-only file is accepted then). The weights must outlive
 * the VAE. */
gen_status gen__vae_create(gen__vae **out, const gen__vae_config *cfg,
                           const gen__device_weights *weights, bool with_encoder);
void gen__vae_destroy(gen__vae *vae);

/* latents in diffusion space [N, latent_channels, h, w] (what the denoising loop
 * produces); decodes latents / scaling_factor (+ shift_factor when the config has
 * one), as the pipelines do. image: allocated here, [N, out_channels, f*h, f*w]
 * with f = 2^(blocks-1), values roughly in [-1, 1] (not clamped). */
gen_status gen__vae_decode(const gen__vae *vae, gen__tensor *image, const gen__tensor *latents);

/* image [N, in_channels, H, W] in [-1, 1] (H, W divisible by f) -> the latent
 * distribution (unscaled): mean and std = exp(0.5 * clamp(logvar, -30, 20)),
 * both allocated here, [N, latent_channels, H/f, W/f]. A sample is
 * (mean + std * eps) * scaling_factor with eps from the torch-exact RNG.
 * GEN_ESTATE if the VAE was created without its encoder. */
gen_status gen__vae_encode(const gen__vae *vae, gen__tensor *mean, gen__tensor *std,
                           const gen__tensor *image);

/* Spatial factor between image and latents (8 for SD). */
int gen__vae_scale_factor(const gen__vae *vae);
double gen__vae_scaling_factor(const gen__vae *vae);

#endif
