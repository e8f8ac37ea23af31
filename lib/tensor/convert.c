/* Exact f16/bf16 <-> f32 conversion in integer arithmetic, so the result does
 * not depend on the FPU rounding mode or on F16C being present. */
#include <string.h>

#include "tensor/tensor.h"

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

float gen__f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) /* inf / NaN: keep the payload in the top mantissa bits */
        return bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0)
            return bits_f32(sign);
        /* subnormal: normalise; value = man * 2^-24 */
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while ((man & 0x400u) == 0);
        man &= 0x3ffu;
        return bits_f32(sign | ((uint32_t)(127 - 15 - e) << 23) | (man << 13));
    }
    return bits_f32(sign | ((exp + 127 - 15) << 23) | (man << 13));
}

uint16_t gen__f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    x &= 0x7fffffffu;
    if (x >= 0x7f800000u) { /* inf or NaN (NaN stays quiet NaN, top payload kept) */
        if (x == 0x7f800000u)
            return sign | 0x7c00u;
        return (uint16_t)(sign | 0x7e00u | ((x >> 13) & 0x3ffu));
    }
    if (x >= 0x477ff000u) /* >= 65520: rounds (ties to even) to inf */
        return sign | 0x7c00u;
    if (x < 0x38800000u) { /* below 2^-14: f16 subnormal or zero */
        uint32_t e = x >> 23;
        if (e < 102) /* < 2^-25: rounds to zero (2^-25 itself ties to even zero) */
            return sign;
        uint32_t m = (x & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t h = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (h & 1u)))
            h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((x >> 23) - 112) << 10 | ((x >> 13) & 0x3ffu);
    uint32_t rem = x & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++; /* a carry into the exponent is the correct result */
    return (uint16_t)(sign | h);
}

float gen__bf16_to_f32(uint16_t b)
{
    return bits_f32((uint32_t)b << 16);
}

uint16_t gen__f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* NaN: quiet it, keep sign and top payload */
        return (uint16_t)((x >> 16) | 0x0040u);
    uint32_t lsb = (x >> 16) & 1u;
    x += 0x7fffu + lsb; /* ties to even; overflow of the largest finite goes to inf */
    return (uint16_t)(x >> 16);
}

void gen__convert_host(void *dst, gen__dtype dst_dtype, const void *src, gen__dtype src_dtype,
                       size_t count)
{
    if (dst_dtype == src_dtype) {
        memcpy(dst, src, count * gen__dtype_size(dst_dtype));
        return;
    }
    if (src_dtype == GEN__F32) {
        const float *s = src;
        uint16_t *d = dst;
        if (dst_dtype == GEN__F16)
            for (size_t i = 0; i < count; i++)
                d[i] = gen__f32_to_f16(s[i]);
        else
            for (size_t i = 0; i < count; i++)
                d[i] = gen__f32_to_bf16(s[i]);
        return;
    }
    const uint16_t *s = src;
    if (dst_dtype == GEN__F32) {
        float *d = dst;
        if (src_dtype == GEN__F16)
            for (size_t i = 0; i < count; i++)
                d[i] = gen__f16_to_f32(s[i]);
        else
            for (size_t i = 0; i < count; i++)
                d[i] = gen__bf16_to_f32(s[i]);
        return;
    }
    uint16_t *d = dst; /* f16 <-> bf16 through f32 (f16 -> f32 is exact) */
    if (src_dtype == GEN__F16)
        for (size_t i = 0; i < count; i++)
            d[i] = gen__f32_to_bf16(gen__f16_to_f32(s[i]));
    else
        for (size_t i = 0; i < count; i++)
            d[i] = gen__f32_to_f16(gen__bf16_to_f32(s[i]));
}
