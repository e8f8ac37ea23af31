/* Tiled AutoencoderKL decode and encode for images too large for one pass, as
 * diffusers' AutoencoderKL.tiled_decode / tiled_encode do it: the input is cut
 * into square tiles of tile_sample_min_size pixels (tile_latent_min_size =
 * that / f latents) that overlap by tile_overlap_factor = 0.25; each tile goes
 * through the network alone; each output tile is blended into the one above
 * (blend_v) and the one to its left (blend_h, both already blended) with a
 * linear ramp over blend_extent = 0.25 of an output tile, then cropped to
 * row_limit = tile - blend_extent and the crops are concatenated.
 *
 * The network runs on the device one tile at a time (the device holds the
 * whole input and output and one tile's working memory); cutting tiles out and
 * blending happen on the host in f32 (cheap next to the convolutions).
 *
 * Also here: the working-memory estimate of an untiled pass and the choice
 * between tiled and untiled that gen__generate makes from it. */
#ifndef GEN_PIPELINE_VAE_TILED_H
#define GEN_PIPELINE_VAE_TILED_H

#include <stdbool.h>
#include <stdint.h>

#include <gen/common.h>

#include "backend/backend.h"
#include "pipeline/job.h"
#include "pipeline/vae.h"

/* The tile geometry for a requested tile side in pixels. */
typedef struct gen__vae_tiles {
    int sample; /* tile side in pixels (tile_sample_min_size) */
    int latent; /* tile side in latents (tile_latent_min_size) = sample / f */
    int factor; /* f: pixels per latent */
} gen__vae_tiles;

/* tile_px 0 = the VAE config's sample_size (diffusers' default), rounded down
 * to a multiple of 4 * f (at least 4 * f) so that the crops tile the output
 * exactly; an explicit tile_px must be such a multiple (GEN_EINVAL naming it). */
gen_status gen__vae_tiles_for(const gen__vae *vae, int tile_px, gen__vae_tiles *out);

/* gen__vae_decode (same input, output and errors), tiled with `tile_px` (see
 * gen__vae_tiles_for). Like diffusers, latents no larger than one tile in
 * either direction are decoded in one pass. */
gen_status gen__vae_decode_tiled(const gen__vae *vae, gen__tensor *image,
                                 const gen__tensor *latents, int tile_px);

/* gen__vae_encode (same input, outputs and errors), tiled: the moments of the
 * tiles are blended and concatenated, then split into mean and std. An image no
 * larger than one tile in either direction is encoded in one pass. */
gen_status gen__vae_encode_tiled(const gen__vae *vae, gen__tensor *mean, gen__tensor *std,
                                 const gen__tensor *image, int tile_px);

/* Working memory of one VAE pass producing (decode) or reading (encode) an
 * out_h x out_w image, as the reference server estimates it:
 * out_h * out_w * element_size * k, k = 2200 for decode and 1100 for encode,
 * plus 250 MiB when the VAE computes in f32. tile_px > 0 estimates a tiled pass
 * instead: the area is tile_px^2 * 1.25. Saturates instead of overflowing. */
uint64_t gen__vae_working_memory(bool encode, int64_t out_h, int64_t out_w, gen__dtype dtype,
                                 int tile_px);

/* Whether to tile: ON -> true, OFF -> false, AUTO -> estimate > available. */
bool gen__vae_choose_tiled(gen__tiled_mode mode, uint64_t estimate, uint64_t available);

#endif
