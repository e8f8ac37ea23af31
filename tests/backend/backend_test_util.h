/* Helpers shared by the backend tests: seeded random data, host<->tensor
 * transfer (any dtype widened to f32 on the way back), relative L2 error
 * against a double reference. Also used by the gpu harnesses (tests/gpu). */
#ifndef GEN_TESTS_BACKEND_UTIL_H
#define GEN_TESTS_BACKEND_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "backend/backend.h"
#include "tensor/tensor.h"

static inline uint64_t tu_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 11;
}

/* uniform in [-1, 1) */
static inline float tu_uniform(uint64_t *s)
{
    return (float)((double)(tu_next(s) & ((1ULL << 53) - 1)) / (double)(1ULL << 52) - 1.0);
}

static inline float *tu_random(size_t n, uint64_t seed)
{
    float *p = malloc(n * sizeof(float) + 1);
    uint64_t s = seed * 2654435761ULL + 1;
    for (size_t i = 0; i < n; i++)
        p[i] = tu_uniform(&s);
    return p;
}

/* A tensor on `be` holding `host` (f32). Returns GEN_OK or the failure. */
static inline gen_status tu_tensor(gen__tensor *t, gen__backend *be, int ndim, const int64_t *shape,
                                   const float *host)
{
    gen_status st = gen__tensor_alloc(t, be, GEN__F32, ndim, shape);
    if (st == GEN_OK && host)
        st = gen__tensor_upload(t, host, gen__tensor_nbytes(t));
    return st;
}

static inline float *tu_download(const gen__tensor *t)
{
    float *p = malloc(gen__tensor_nbytes(t) + 1);
    if (gen__tensor_download(t, p, gen__tensor_nbytes(t)) != GEN_OK) {
        free(p);
        return NULL;
    }
    return p;
}

/* A tensor of any dtype downloaded and widened to f32 (NULL on failure, with
 * the backend's message). */
static inline float *tu_download_f32(const gen__tensor *t)
{
    size_t n = (size_t)gen__tensor_numel(t);
    void *raw = malloc(gen__tensor_nbytes(t) + 1);
    float *f = malloc(n * sizeof(float) + 1);
    if (!raw || !f || gen__tensor_download(t, raw, gen__tensor_nbytes(t)) != GEN_OK) {
        free(raw);
        free(f);
        return NULL;
    }
    gen__convert_host(f, GEN__F32, raw, t->dtype, n);
    free(raw);
    return f;
}

static inline double tu_rel_l2(const float *got, const double *ref, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        if (isnan(got[i]) != isnan(ref[i]))
            return INFINITY;
        if (isnan(ref[i]))
            continue;
        num += d * d;
        den += ref[i] * ref[i];
    }
    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

#endif
