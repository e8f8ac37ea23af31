/* torch CPU generator: mt19937 + torch's normal sampling (see rng.h). The
 * float math below must not be contracted into FMAs except where fmaf() says
 * so: the fused/unfused pattern is what makes the values bit-identical. */
#include <math.h>
#include <string.h>

#include "pipeline/rng.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define MT_M 397

void gen__rng_seed(gen__rng *rng, uint64_t seed)
{
    /* torch keeps a 64-bit seed but seeds its mt19937 with the low word. */
    rng->mt[0] = (uint32_t)(seed & 0xffffffffu);
    for (uint32_t i = 1; i < GEN__MT_N; i++)
        rng->mt[i] = 1812433253u * (rng->mt[i - 1] ^ (rng->mt[i - 1] >> 30)) + i;
    rng->index = GEN__MT_N;
    rng->has_cached_normal = false;
    rng->cached_normal = 0.0;
}

static void twist(gen__rng *rng)
{
    uint32_t *s = rng->mt;
    for (uint32_t k = 0; k < GEN__MT_N; k++) {
        uint32_t y = (s[k] & 0x80000000u) | (s[(k + 1) % GEN__MT_N] & 0x7fffffffu);
        s[k] = s[(k + MT_M) % GEN__MT_N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    rng->index = 0;
}

uint32_t gen__rng_u32(gen__rng *rng)
{
    if (rng->index >= GEN__MT_N)
        twist(rng);
    uint32_t y = rng->mt[rng->index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint64_t gen__rng_u64(gen__rng *rng)
{
    uint64_t hi = gen__rng_u32(rng);
    uint64_t lo = gen__rng_u32(rng);
    return (hi << 32) | lo;
}

float gen__rng_uniform_f32(gen__rng *rng)
{
    return (float)(gen__rng_u32(rng) & 0xffffffu) * (1.0f / 16777216.0f);
}

double gen__rng_uniform_f64(gen__rng *rng)
{
    return (double)(gen__rng_u64(rng) & ((UINT64_C(1) << 53) - 1)) * (1.0 / 9007199254740992.0);
}

/* Scalar path (numel < 16): normal_distribution<double>, one cached sample. */
static double normal_f64(gen__rng *rng)
{
    if (rng->has_cached_normal) {
        rng->has_cached_normal = false;
        return rng->cached_normal;
    }
    double u1 = gen__rng_uniform_f64(rng);
    double u2 = gen__rng_uniform_f64(rng);
    double r = sqrt(-2.0 * log1p(-u2));
    double theta = 2.0 * M_PI * u1;
    rng->cached_normal = r * sin(theta);
    rng->has_cached_normal = true;
    return r * cos(theta);
}

/* Constants are written as double literals narrowed to float, the way the
 * reference evaluates them. */
#define F(x) ((float)(x))

static float f32_from_bits(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static uint32_t bits_from_f32(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

/* Cephes-style float log (log256_ps of torch's avx_mathfun.h, lane by lane). */
static float cephes_logf(float x)
{
    float min_norm = f32_from_bits(0x00800000u);
    if (!(x > min_norm))
        x = min_norm;
    uint32_t bits = bits_from_f32(x);
    int32_t ei = (int32_t)((bits >> 23) & 0x1ffu) - 0x7f;
    float m = f32_from_bits((bits & ~0x7f800000u) | bits_from_f32(0.5f));
    float e = (float)ei;
    e = e + 1.0f;
    int below = m < F(0.707106781186547524);
    float tmp = below ? m : 0.0f;
    m = m - 1.0f;
    e = e - (below ? 1.0f : 0.0f);
    m = m + tmp;
    float z = m * m;
    static const double coef[8] = {
        -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
        -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
    };
    float y = F(7.0376836292e-2);
    for (int i = 0; i < 8; i++)
        y = fmaf(y, m, F(coef[i]));
    y = y * m;
    float eq1 = e * F(-2.12194440e-4);
    y = fmaf(y, z, eq1);
    y = fmaf(-z, 0.5f, y);
    m = m + y;
    m = fmaf(e, F(0.693359375), m);
    return m;
}

/* Cephes-style float sincos (sincos256_ps of avx_mathfun.h, lane by lane). */
static void cephes_sincosf(float x, float *s_out, float *c_out)
{
    int sign_sin = signbit(x) != 0;
    x = fabsf(x);
    float y = x * F(1.27323954473516);
    int32_t j = (int32_t)y;
    j = (j + 1) & ~1;
    y = (float)j;
    int swap_sin = (j & 4) != 0;
    int poly_sin = (j & 2) == 0;
    x = fmaf(y, F(-0.78515625), x);
    x = fmaf(y, F(-2.4187564849853515625e-4), x);
    x = fmaf(y, F(-3.77489497744594108e-8), x);
    int sign_cos = ((~(j - 2)) & 4) != 0;
    sign_sin ^= swap_sin;
    float z = x * x;
    float yc = fmaf(F(2.443315711809948e-005), z, F(-1.388731625493765e-003));
    yc = fmaf(yc, z, F(4.166664568298827e-002));
    yc = yc * z;
    float zh = z * 0.5f;
    yc = fmaf(yc, z, -zh);
    yc = yc + 1.0f;
    float ys = fmaf(F(-1.9515295891e-4), z, F(8.3321608736e-3));
    ys = fmaf(ys, z, F(-1.6666654611e-1));
    ys = ys * z;
    ys = fmaf(ys, x, x);
    float s = poly_sin ? ys : yc;
    float c = poly_sin ? yc : ys;
    *s_out = sign_sin ? -s : s;
    *c_out = sign_cos ? -c : c;
}

/* Box-Muller over 16 uniforms in place: pairs (d[j], d[j+8]). */
static void box_muller16(float *d)
{
    const float two_pi = F(2.0 * M_PI);
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j];
        float u2 = d[j + 8];
        float lg = cephes_logf(u1);
        float radius = sqrtf(-2.0f * lg);
        float theta = two_pi * u2;
        float s, c;
        cephes_sincosf(theta, &s, &c);
        d[j] = radius * c;
        d[j + 8] = radius * s;
    }
}

void gen__rng_randn(gen__rng *rng, float *out, size_t n)
{
    if (n < 16) {
        for (size_t i = 0; i < n; i++)
            out[i] = (float)normal_f64(rng);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = gen__rng_uniform_f32(rng);
    for (size_t i = 0; i + 16 <= n; i += 16)
        box_muller16(out + i);
    if (n % 16 != 0) {
        /* torch redraws the last 16 values (overlapping the last full block). */
        float *tail = out + n - 16;
        for (int i = 0; i < 16; i++)
            tail[i] = gen__rng_uniform_f32(rng);
        box_muller16(tail);
    }
}
