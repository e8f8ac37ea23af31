/* AutoencoderKL (diffusers) of Stable Diffusion: the decoder (post_quant_conv,
 * conv_in, mid block with single-head spatial attention, up blocks, conv_norm_out
 * + SiLU, conv_out) and the encoder (conv_in, down blocks with (0,1,0,1)-padded
 * stride-2 downsampling, mid block, conv_out -> moments, quant_conv).
 *
 * Threading: the object is immutable after create; forward passes follow the
 * backend's rule (one thread at a time per backend), so one object per device. */
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
 * one), as the pipelines do. latents may have another dtype than the VAE's
 * weights (a f16 UNet with an f32 VAE): they are converted. image: allocated here, [N,
 * out_channels, f*h, f*w] with f = 2^(blocks-1), values roughly in [-1, 1] (not clamped). */
gen_status gen__vae_decode(const gen__vae *vae, gen__tensor *image, const gen__tensor *latents);

/* image [N, in_channels, H, W] in [-1, 1] (H, W divisible by f) -> the latent
 * distribution (unscaled): mean and std = exp(0.5 * clamp(logvar, -30, 20)),
 * both allocated here, [N, latent_channels, H/f, W/f]. A sample is
 * (mean + std * eps) * scaling_factor with eps from the torch-exact RNG.
 * GEN_ESTATE if the VAE was created without its encoder. */
gen_status gen__vae_encode(const gen__vae *vae, gen__tensor *mean, gen__tensor *std,
                           const gen__tensor *image);

/* The stages the two calls above are made of, for the tiled paths (vae_tiled.c),
 * which run them per tile:
 * - unscale: z (allocated) = latents / scaling_factor (+ shift_factor), the
 *   pipelines' step before decoding (element-wise, so tiling commutes with it);
 * - decoder_forward: z [N, latent_channels, h, w] -> post_quant_conv + Decoder;
 * - encoder_forward: image -> moments [N, 2 * latent_channels, H/f, W/f]
 *   (Encoder + quant_conv), same checks and GEN_ESTATE as gen__vae_encode;
 * - moments_split: moments -> mean and std (both allocated) as gen__vae_encode. */
gen_status gen__vae_unscale(const gen__vae *vae, gen__tensor *z, const gen__tensor *latents);
gen_status gen__vae_decoder_forward(const gen__vae *vae, gen__tensor *image, const gen__tensor *z);
gen_status gen__vae_encoder_forward(const gen__vae *vae, gen__tensor *moments,
                                    const gen__tensor *image);
gen_status gen__vae_moments_split(const gen__vae *vae, gen__tensor *mean, gen__tensor *std,
                                  const gen__tensor *moments);

const gen__vae_config *gen__vae_get_config(const gen__vae *vae);
/* The dtype the VAE computes in (its weights'; f32 for an upcast VAE). */
gen__dtype gen__vae_dtype(const gen__vae *vae);

/* Spatial factor between image and latents (8 for SD). */
int gen__vae_scale_factor(const gen__vae *vae);
double gen__vae_scaling_factor(const gen__vae *vae);

#endif
