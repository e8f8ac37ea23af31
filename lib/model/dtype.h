/* Element types of safetensors files, and conversion of the float ones to f32.
 * The names are safetensors' own ("F32", "BF16", ...). */
#ifndef GEN_MODEL_DTYPE_H
#define GEN_MODEL_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum gen__st_dtype {
    GEN__ST_INVALID = 0,
    GEN__ST_BOOL,
    GEN__ST_U8,
    GEN__ST_I8,
    GEN__ST_F8_E5M2,
    GEN__ST_F8_E4M3,
    GEN__ST_I16,
    GEN__ST_U16,
    GEN__ST_F16,
    GEN__ST_BF16,
    GEN__ST_I32,
    GEN__ST_U32,
    GEN__ST_F32,
    GEN__ST_F64,
    GEN__ST_I64,
    GEN__ST_U64,
    GEN__ST_COUNT
} gen__st_dtype;

/* GEN__ST_INVALID for a name safetensors does not define (exact, case-sensitive). */
gen__st_dtype gen__st_dtype_from_name(const char *name);
/* "F32", ...; "?" for an invalid value. */
const char *gen__st_dtype_name(gen__st_dtype dtype);
/* Lower-case short name used in messages and gen info: "f32", "f16", "bf16", "i64", ... */
const char *gen__st_dtype_short_name(gen__st_dtype dtype);
/* Bytes per element; 0 for an invalid value. */
size_t gen__st_dtype_size(gen__st_dtype dtype);
/* F16, BF16, F32, F64: the types model weights may have. */
bool gen__st_dtype_is_float(gen__st_dtype dtype);

/* Widen `count` elements of a float dtype at `src` (any alignment) to f32.
 * Returns false (and writes nothing) when dtype is not a float type. f64 is
 * rounded to nearest. */
bool gen__st_dtype_to_f32(gen__st_dtype dtype, const void *src, float *dst, size_t count);


#endif
