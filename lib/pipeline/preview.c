#include "pipeline/preview.h"

#include <math.h>

/* Least-squares factors from SD1.x/SD2.x latent channels to RGB, as commonly
 * used for previews (they approximate the VAE decoder's colour response). */
static const float latent_rgb[4][3] = {
    {0.3512f, 0.2297f, 0.3227f},
    {0.3250f, 0.4974f, 0.2350f},
    {-0.2829f, 0.1762f, 0.2721f},
    {-0.2120f, -0.2616f, -0.7177f},
};

static uint8_t to_byte(float v)
{
    /* factors map to roughly [-1, 1] */
    float x = (v + 1.0f) * 127.5f;
    if (!(x > 0.0f))
        return 0;
    if (x > 255.0f)
        return 255;
    return (uint8_t)lrintf(x);
}

void gen__latent_preview(const float *latents, int channels, int h, int w, uint8_t *rgb)
{
    size_t plane = (size_t)h * (size_t)w;
    for (size_t p = 0; p < plane; p++) {
        float c[3] = {0, 0, 0};
        if (channels == 4) {
            for (int k = 0; k < 4; k++)
                for (int j = 0; j < 3; j++)
                    c[j] += latents[(size_t)k * plane + p] * latent_rgb[k][j];
        } else {
            c[0] = c[1] = c[2] = latents[p] * 0.5f;
        }
        rgb[3 * p + 0] = to_byte(c[0]);
        rgb[3 * p + 1] = to_byte(c[1]);
        rgb[3 * p + 2] = to_byte(c[2]);
    }
}
