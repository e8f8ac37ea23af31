/* Latent preview: a cheap RGB picture of the current latents (a fixed linear
 * map from the 4 latent channels to RGB), one pixel per latent position, for
 * progress callbacks. */
#ifndef GEN_PIPELINE_PREVIEW_H
#define GEN_PIPELINE_PREVIEW_H

#include <stddef.h>
#include <stdint.h>

/* latents: host [channels, h, w] (batch entry 0); rgb: h*w*3 bytes. Channels
 * other than 4 give a grey picture of channel 0. */
void gen__latent_preview(const float *latents, int channels, int h, int w, uint8_t *rgb);

#endif
