#include "model/dtype.h"

#include <string.h>

static const struct {
    const char *name;
    const char *short_name;
    size_t size;
} dtype_table[GEN__DTYPE_COUNT] = {
    [GEN__DTYPE_INVALID] = {"?", "?", 0},
    [GEN__DTYPE_BOOL] = {"BOOL", "bool", 1},
    [GEN__DTYPE_U8] = {"U8", "u8", 1},
    [GEN__DTYPE_I8] = {"I8", "i8", 1},
    [GEN__DTYPE_F8_E5M2] = {"F8_E5M2", "f8_e5m2", 1},
    [GEN__DTYPE_F8_E4M3] = {"F8_E4M3", "f8_e4m3", 1},
    [GEN__DTYPE_I16] = {"I16", "i16", 2},
    [GEN__DTYPE_U16] = {"U16", "u16", 2},
    [GEN__DTYPE_F16] = {"F16", "f16", 2},
    [GEN__DTYPE_BF16] = {"BF16", "bf16", 2},
    [GEN__DTYPE_I32] = {"I32", "i32", 4},
    [GEN__DTYPE_U32] = {"U32", "u32", 4},
    [GEN__DTYPE_F32] = {"F32", "f32", 4},
    [GEN__DTYPE_F64] = {"F64", "f64", 8},
    [GEN__DTYPE_I64] = {"I64", "i64", 8},
    [GEN__DTYPE_U64] = {"U64", "u64", 8},
};

gen__dtype gen__dtype_from_name(const char *name)
{
    for (int i = 1; i < GEN__DTYPE_COUNT; i++)
        if (strcmp(dtype_table[i].name, name) == 0)
            return (gen__dtype)i;
    return GEN__DTYPE_INVALID;
}

static int valid(gen__dtype dtype)
{
    return dtype > GEN__DTYPE_INVALID && dtype < GEN__DTYPE_COUNT;
}

const char *gen__dtype_name(gen__dtype dtype)
{
    return valid(dtype) ? dtype_table[dtype].name : "?";
}

const char *gen__dtype_short_name(gen__dtype dtype)
{
    return valid(dtype) ? dtype_table[dtype].short_name : "?";
}

size_t gen__dtype_size(gen__dtype dtype)
{
    return valid(dtype) ? dtype_table[dtype].size : 0;
}

bool gen__dtype_is_float(gen__dtype dtype)
{
    return dtype == GEN__DTYPE_F16 || dtype == GEN__DTYPE_BF16 || dtype == GEN__DTYPE_F32 ||
           dtype == GEN__DTYPE_F64;
}

static float bits_to_f32(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

float gen__f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) /* inf / nan, payload kept */
        return bits_to_f32(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        if (mant == 0)
            return bits_to_f32(sign);
        /* subnormal: normalise the mantissa */
        int e = -1;
        do {
            e++;
            mant <<= 1;
        } while ((mant & 0x400u) == 0);
        mant &= 0x3ffu;
        return bits_to_f32(sign | ((uint32_t)(127 - 15 - e) << 23) | (mant << 13));
    }
    return bits_to_f32(sign | ((exp + 127 - 15) << 23) | (mant << 13));
}

float gen__bf16_to_f32(uint16_t b)
{
    return bits_to_f32((uint32_t)b << 16);
}

bool gen__dtype_to_f32(gen__dtype dtype, const void *src, float *dst, size_t count)
{
    const unsigned char *p = src;
    switch (dtype) {
    case GEN__DTYPE_F32:
        memcpy(dst, src, count * sizeof(float));
        return true;
    case GEN__DTYPE_F16:
    case GEN__DTYPE_BF16:
        for (size_t i = 0; i < count; i++) {
            uint16_t v;
            memcpy(&v, p + 2 * i, 2);
            dst[i] = dtype == GEN__DTYPE_F16 ? gen__f16_to_f32(v) : gen__bf16_to_f32(v);
        }
        return true;
    case GEN__DTYPE_F64:
        for (size_t i = 0; i < count; i++) {
            double v;
            memcpy(&v, p + 8 * i, 8);
            dst[i] = (float)v;
        }
        return true;
    default:
        return false;
    }
}
