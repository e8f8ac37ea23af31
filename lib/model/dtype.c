#include "model/dtype.h"

#include "tensor/tensor.h"

#include <string.h>

static const struct {
    const char *name;
    const char *short_name;
    size_t size;
} dtype_table[GEN__ST_COUNT] = {
    [GEN__ST_INVALID] = {"?", "?", 0},
    [GEN__ST_BOOL] = {"BOOL", "bool", 1},
    [GEN__ST_U8] = {"U8", "u8", 1},
    [GEN__ST_I8] = {"I8", "i8", 1},
    [GEN__ST_F8_E5M2] = {"F8_E5M2", "f8_e5m2", 1},
    [GEN__ST_F8_E4M3] = {"F8_E4M3", "f8_e4m3", 1},
    [GEN__ST_I16] = {"I16", "i16", 2},
    [GEN__ST_U16] = {"U16", "u16", 2},
    [GEN__ST_F16] = {"F16", "f16", 2},
    [GEN__ST_BF16] = {"BF16", "bf16", 2},
    [GEN__ST_I32] = {"I32", "i32", 4},
    [GEN__ST_U32] = {"U32", "u32", 4},
    [GEN__ST_F32] = {"F32", "f32", 4},
    [GEN__ST_F64] = {"F64", "f64", 8},
    [GEN__ST_I64] = {"I64", "i64", 8},
    [GEN__ST_U64] = {"U64", "u64", 8},
};

gen__st_dtype gen__st_dtype_from_name(const char *name)
{
    for (int i = 1; i < GEN__ST_COUNT; i++)
        if (strcmp(dtype_table[i].name, name) == 0)
            return (gen__st_dtype)i;
    return GEN__ST_INVALID;
}

static int valid(gen__st_dtype dtype)
{
    return dtype > GEN__ST_INVALID && dtype < GEN__ST_COUNT;
}

const char *gen__st_dtype_name(gen__st_dtype dtype)
{
    return valid(dtype) ? dtype_table[dtype].name : "?";
}

const char *gen__st_dtype_short_name(gen__st_dtype dtype)
{
    return valid(dtype) ? dtype_table[dtype].short_name : "?";
}

size_t gen__st_dtype_size(gen__st_dtype dtype)
{
    return valid(dtype) ? dtype_table[dtype].size : 0;
}

bool gen__st_dtype_is_float(gen__st_dtype dtype)
{
    return dtype == GEN__ST_F16 || dtype == GEN__ST_BF16 || dtype == GEN__ST_F32 ||
           dtype == GEN__ST_F64;
}

bool gen__st_dtype_to_f32(gen__st_dtype dtype, const void *src, float *dst, size_t count)
{
    const unsigned char *p = src;
    switch (dtype) {
    case GEN__ST_F32:
        memcpy(dst, src, count * sizeof(float));
        return true;
    case GEN__ST_F16:
    case GEN__ST_BF16:
        for (size_t i = 0; i < count; i++) {
            uint16_t v;
            memcpy(&v, p + 2 * i, 2);
            dst[i] = dtype == GEN__ST_F16 ? gen__f16_to_f32(v) : gen__bf16_to_f32(v);
        }
        return true;
    case GEN__ST_F64:
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
