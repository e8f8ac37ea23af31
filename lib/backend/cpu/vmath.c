/* Vectorised row kernels for softmax (the exp of every attention score is the
 * hot loop of attention on CPU). GCC/Clang vector extensions give SIMD code on
 * any x86-64 (SSE2); on GCC an AVX2+FMA clone is picked at load time. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"

/* The 32-byte vector helpers are static and always inlined, so the warning
 * about their (never used) calling convention without AVX does not apply. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
#define INLINE static inline __attribute__((always_inline))

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef uint32_t v8u __attribute__((vector_size(32)));

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
#define CLONES __attribute__((target_clones("avx2,fma", "default")))
#else
#define CLONES
#endif

INLINE v8f splat(float v)
{
    v8f r = {v, v, v, v, v, v, v, v};
    return r;
}

INLINE v8f load(const float *p)
{
    v8f v;
    memcpy(&v, p, sizeof(v));
    return v;
}

INLINE void store(float *p, v8f v)
{
    memcpy(p, &v, sizeof(v));
}

INLINE v8f vsel(v8i mask, v8f a, v8f b) /* mask ? a : b */
{
    return (v8f)(((v8i)a & mask) | ((v8i)b & ~mask));
}

/* exp(x): Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, degree-6 Taylor
 * polynomial (relative error < 2e-7), 2^n from the exponent bits. Below
 * -87.3 the result is exactly 0 (so masked -inf scores vanish); NaN stays NaN. */
INLINE v8f vexp(v8f x)
{
    v8i under = x < splat(-87.33654f);
    x = vsel(x > splat(88.3762626647949f), splat(88.3762626647949f), x);
    x = vsel(under, splat(-87.33654f), x);
    v8f t = x * splat(1.44269504088896341f) + splat(12582912.0f); /* round to nearest */
    v8f n = t - splat(12582912.0f);
    v8f r = x - n * splat(0.693145751953125f);
    r = r - n * splat(1.428606765330187e-06f);
    v8f p = splat(1.0f / 720.0f);
    p = p * r + splat(1.0f / 120.0f);
    p = p * r + splat(1.0f / 24.0f);
    p = p * r + splat(1.0f / 6.0f);
    p = p * r + splat(0.5f);
    p = p * r + splat(1.0f);
    p = p * r + splat(1.0f);
    v8i ni = __builtin_convertvector(n, v8i);
    v8u bits = ((v8u)ni + 127u) << 23;
    v8f y = p * (v8f)bits;
    return (v8f)((v8i)y & ~under);
}

CLONES
float gen__cpu_row_max(const float *x, int64_t n)
{
    v8f m = splat(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f v = load(x + i);
        m = vsel(v > m, v, m);
    }
    float r = -INFINITY;
    for (int k = 0; k < 8; k++)
        r = m[k] > r ? m[k] : r;
    for (; i < n; i++)
        r = x[i] > r ? x[i] : r;
    return r;
}

CLONES
double gen__cpu_exp_row(const float *x, float *y, int64_t n, float scale, float sub)
{
    v8f acc = splat(0.0f);
    double sum = 0.0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f e = vexp(load(x + i) * splat(scale) - splat(sub));
        store(y + i, e);
        acc += e;
        if ((i & 1023) == 1016) { /* flush to double every 128 vectors */
            for (int k = 0; k < 8; k++)
                sum += acc[k];
            acc = splat(0.0f);
        }
    }
    for (int k = 0; k < 8; k++)
        sum += acc[k];
    if (i < n) {
        float tx[8] = {0}, ty[8];
        memcpy(tx, x + i, (size_t)(n - i) * sizeof(float));
        v8f e = vexp(load(tx) * splat(scale) - splat(sub));
        store(ty, e);
        for (int64_t k = 0; k < n - i; k++) {
            y[i + k] = ty[k];
            sum += ty[k];
        }
    }
    return sum;
}

CLONES
void gen__cpu_scale_row(float *y, int64_t n, float s)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        store(y + i, load(y + i) * splat(s));
    for (; i < n; i++)
        y[i] *= s;
}
