/* Element types of safetensors files, and conversion of the float ones to f32.
 * The names are safetensors' own ("F32", "BF16", ...). */
#ifndef GEN_MODEL_DTYPE_H
#define GEN_MODEL_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum gen__dtype {
    GEN__DTYPE_INVALID = 0,
    GEN__DTYPE_BOOL,
    GEN__DTYPE_U8,
    GEN__DTYPE_I8,
    GEN__DTYPE_F8_E5M2,
    GEN__DTYPE_F8_E4M3,
    GEN__DTYPE_I16,
    GEN__DTYPE_U16,
    GEN__DTYPE_F16,
    GEN__DTYPE_BF16,
    GEN__DTYPE_I32,
    GEN__DTYPE_U32,
    GEN__DTYPE_F32,
    GEN__DTYPE_F64,
    GEN__DTYPE_I64,
    GEN__DTYPE_U64,
    GEN__DTYPE_COUNT
} gen__dtype;

/* GEN__DTYPE_INVALID for a name safetensors does not define (exact, case-sensitive). */
gen__dtype gen__dtype_from_name(const char *name);
/* "F32", ...; "?" for an invalid value. */
const char *gen__dtype_name(gen__dtype dtype);
/* Lower-case short name used in messages and gen info: "f32", "f16", "bf16", "i64", ... */
const char *gen__dtype_short_name(gen__dtype dtype);
/* Bytes per element; 0 for an invalid value. */
size_t gen__dtype_size(gen__dtype dtype);
/* F16, BF16, F32, F64: the types model weights may have. */
bool gen__dtype_is_float(gen__dtype dtype);

/* Widen `count` elements of a float dtype at `src` (any alignment) to f32.
 * Returns false (and writes nothing) when dtype is not a float type. f64 is
 * rounded to nearest. */
bool gen__dtype_to_f32(gen__dtype dtype, const void *src, float *dst, size_t count);

float gen__f16_to_f32(uint16_t h);
float gen__bf16_to_f32(uint16_t b);

#endif
