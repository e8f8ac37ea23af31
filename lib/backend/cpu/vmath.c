/* Vectorised row kernels for softmax (the exp of every attention score is the
 * hot loop of attention on CPU). GCC/Clang vector extensions give SIMD code on
 * any x86-64 (SSE2); on GCC an AVX-512 or AVX2 clone is picked at load time. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"

/* The 64-byte vector helpers are static and always inlined, so the warning
 * about their (never used) calling convention without AVX does not apply. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
#define INLINE static inline __attribute__((always_inline))

/* 16 lanes: one AVX-512 register, two AVX2 or four SSE registers */
#define LANES 16
typedef float vf __attribute__((vector_size(4 * LANES)));
typedef int32_t vi __attribute__((vector_size(4 * LANES)));
typedef uint32_t vu __attribute__((vector_size(4 * LANES)));

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLONES
#endif

INLINE vf splat(float v)
{
    vf r;
    for (int i = 0; i < LANES; i++)
        r[i] = v;
    return r;
}

INLINE vf load(const float *p)
{
    vf v;
    memcpy(&v, p, sizeof(v));
    return v;
}

INLINE void store(float *p, vf v)
{
    memcpy(p, &v, sizeof(v));
}

INLINE vf vsel(vi mask, vf a, vf b) /* mask ? a : b */
{
    return (vf)(((vi)a & mask) | ((vi)b & ~mask));
}

/* exp(x): Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, degree-6 Taylor
 * polynomial (relative error < 2e-7), 2^n from the exponent bits. Below
 * -87.3 the result is exactly 0 (so masked -inf scores vanish); NaN stays NaN. */
INLINE vf vexp(vf x)
{
    vi under = x < splat(-87.33654f);
    x = vsel(x > splat(88.3762626647949f), splat(88.3762626647949f), x);
    x = vsel(under, splat(-87.33654f), x);
    vf t = x * splat(1.44269504088896341f) + splat(12582912.0f); /* round to nearest */
    vf n = t - splat(12582912.0f);
    vf r = x - n * splat(0.693145751953125f);
    r = r - n * splat(1.428606765330187e-06f);
    vf p = splat(1.0f / 720.0f);
    p = p * r + splat(1.0f / 120.0f);
    p = p * r + splat(1.0f / 24.0f);
    p = p * r + splat(1.0f / 6.0f);
    p = p * r + splat(0.5f);
    p = p * r + splat(1.0f);
    p = p * r + splat(1.0f);
    vi ni = __builtin_convertvector(n, vi);
    vu bits = ((vu)ni + 127u) << 23;
    vf y = p * (vf)bits;
    return (vf)((vi)y & ~under);
}

CLONES
float gen__cpu_row_max(const float *x, int64_t n)
{
    vf m = splat(-INFINITY);
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        vf v = load(x + i);
        m = vsel(v > m, v, m);
    }
    float r = -INFINITY;
    for (int k = 0; k < LANES; k++)
        r = m[k] > r ? m[k] : r;
    for (; i < n; i++)
        r = x[i] > r ? x[i] : r;
    return r;
}

CLONES
double gen__cpu_exp_row(const float *x, float *y, int64_t n, float scale, float sub)
{
    vf acc = splat(0.0f);
    double sum = 0.0;
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        vf e = vexp(load(x + i) * splat(scale) - splat(sub));
        store(y + i, e);
        acc += e;
        if ((i & 1023) == 1024 - LANES) { /* flush to double every 1024 values */
            for (int k = 0; k < LANES; k++)
                sum += acc[k];
            acc = splat(0.0f);
        }
    }
    for (int k = 0; k < LANES; k++)
        sum += acc[k];
    if (i < n) {
        float tx[LANES] = {0}, ty[LANES];
        memcpy(tx, x + i, (size_t)(n - i) * sizeof(float));
        vf e = vexp(load(tx) * splat(scale) - splat(sub));
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
    for (; i + LANES <= n; i += LANES)
        store(y + i, load(y + i) * splat(s));
    for (; i < n; i++)
        y[i] *= s;
}

CLONES
void gen__cpu_silu_row(const float *x, float *y, int64_t n, float a, float b)
{
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        vf v = load(x + i) * splat(a) + splat(b);
        store(y + i, v / (splat(1.0f) + vexp(-v)));
    }
    if (i < n) {
        float tx[LANES] = {0}, ty[LANES];
        memcpy(tx, x + i, (size_t)(n - i) * sizeof(float));
        vf v = load(tx) * splat(a) + splat(b);
        store(ty, v / (splat(1.0f) + vexp(-v)));
        memcpy(y + i, ty, (size_t)(n - i) * sizeof(float));
    }
}

CLONES
void gen__cpu_xsigmoid_row(const float *x, float *y, int64_t n, float k)
{
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        vf v = load(x + i);
        store(y + i, v / (splat(1.0f) + vexp(v * splat(-k))));
    }
    for (; i < n; i++)
        y[i] = x[i] / (1.0f + expf(-k * x[i]));
}

/* erfc(z) for z >= 0 by the Chebyshev fit of Numerical Recipes' erfcc
 * (fractional error < 1.2e-7 everywhere) with the SIMD exp. GELU is then
 * x/2 * erfc(-x/sqrt2), accurate relative to the result even in the negative
 * tail, and runs several times faster than libm's erff per element. */
INLINE vf verfc_pos(vf z)
{
    vf t = splat(1.0f) / (splat(1.0f) + splat(0.5f) * z);
    vf p = splat(0.17087277f);
    p = p * t + splat(-0.82215223f);
    p = p * t + splat(1.48851587f);
    p = p * t + splat(-1.13520398f);
    p = p * t + splat(0.27886807f);
    p = p * t + splat(-0.18628806f);
    p = p * t + splat(0.09678418f);
    p = p * t + splat(0.37409196f);
    p = p * t + splat(1.00002368f);
    p = p * t + splat(-1.26551223f);
    return t * vexp(p - z * z);
}

INLINE vf vgelu(vf v)
{
    vf u = v * splat(-0.70710678118654752f); /* gelu = v/2 * erfc(u) */
    vi neg = u < splat(0.0f);
    vf a = (vf)((vi)u & ~(vi)splat(-0.0f));
    vf c = verfc_pos(a); /* erfc(|u|); erfc(-|u|) = 2 - erfc(|u|) */
    return splat(0.5f) * v * vsel(neg, splat(2.0f) - c, c);
}

CLONES
void gen__cpu_gelu_row(const float *x, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        store(y + i, vgelu(load(x + i)));
    for (; i < n; i++)
        y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

CLONES
void gen__cpu_geglu_row(const float *h, const float *g, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        store(y + i, load(h + i) * vgelu(load(g + i)));
    for (; i < n; i++)
        y[i] = h[i] * 0.5f * g[i] * (1.0f + erff(g[i] * 0.70710678118654752f));
}
