/* torch's CPU random generator, reproduced exactly: the same seed gives the
 * same torch.randn values as torch.Generator("cpu").manual_seed(seed), so a
 * seed gives the same image as diffusers. Not thread-safe: one per job. */
#ifndef GEN_PIPELINE_RNG_H
#define GEN_PIPELINE_RNG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GEN__MT_N 624

typedef struct gen__rng {
    uint32_t mt[GEN__MT_N];
    uint32_t index;            /* next word of mt[] to temper; GEN__MT_N = twist first */
    bool has_cached_normal;    /* second Box-Muller value of the double (scalar) path */
    double cached_normal;
} gen__rng;

/* manual_seed(seed): mt19937 seeded with the low 32 bits (as torch does) and
 * the cached normal sample cleared. */
void gen__rng_seed(gen__rng *rng, uint64_t seed);

/* Raw engine output (torch's random()) and two draws high word first (random64()). */
uint32_t gen__rng_u32(gen__rng *rng);
uint64_t gen__rng_u64(gen__rng *rng);

/* torch.rand / uniform_(0, 1) element: 24 random bits (float) or 53 (double). */
float gen__rng_uniform_f32(gen__rng *rng);
double gen__rng_uniform_f64(gen__rng *rng);

/* torch.randn(n, generator=g, dtype=float32) into out[0..n): n >= 16 takes
 * torch's vectorised path (uniforms in blocks of 16, Box-Muller pairing i with
 * i+8, float Cephes log/sincos as torch's AVX2 kernel evaluates them, the
 * last 16 values redrawn when n is not a multiple of 16); n < 16 takes the
 * scalar double path with its cached second sample. Successive calls continue
 * the stream exactly as successive torch.randn calls on one generator. */
void gen__rng_randn(gen__rng *rng, float *out, size_t n);

#endif
