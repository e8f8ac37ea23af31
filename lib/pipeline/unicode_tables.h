/* Unicode data for the tokenizer (generated into unicode_tables.c by
 * tools/gen_unicode_tables.py), with lookups. */
#ifndef GEN_PIPELINE_UNICODE_TABLES_H
#define GEN_PIPELINE_UNICODE_TABLES_H

#include <stddef.h>
#include <stdint.h>

typedef struct gen__uc_range { uint32_t first, last; uint32_t value; } gen__uc_range;
typedef struct gen__uc_pair { uint32_t cp, mapped; } gen__uc_pair;
typedef struct gen__uc_multi { uint32_t cp; uint32_t len; uint32_t mapped[3]; } gen__uc_multi;
typedef struct gen__uc_triple { uint32_t a, b, c; } gen__uc_triple;

/* Pre-tokenisation classes: letters (\p{L}), numbers (\p{N}), White_Space (\s). */
enum { GEN__UC_OTHER = 0, GEN__UC_LETTER = 1, GEN__UC_NUMBER = 2, GEN__UC_SPACE = 3 };

extern const gen__uc_range gen__uc_class_ranges[];
extern const size_t gen__uc_class_count;
extern const gen__uc_range gen__uc_ccc_ranges[];
extern const size_t gen__uc_ccc_count;
extern const gen__uc_pair gen__uc_lower[];
extern const size_t gen__uc_lower_count;
extern const gen__uc_multi gen__uc_lower_multi[];
extern const size_t gen__uc_lower_multi_count;
extern const gen__uc_triple gen__uc_decomp[];   /* cp -> a [, b] (b = 0: singleton) */
extern const size_t gen__uc_decomp_count;
extern const gen__uc_triple gen__uc_compose[];  /* (a, b) -> c, sorted by (a, b) */
extern const size_t gen__uc_compose_count;

int gen__uc_class(uint32_t cp);
int gen__uc_ccc(uint32_t cp);

/* Lowercase of cp into out[0..3); returns the number of code points (1..3). */
size_t gen__uc_lower_of(uint32_t cp, uint32_t out[3]);

/* Canonical decomposition step: 0 if none, else 1 or 2 code points in out. */
size_t gen__uc_decompose1(uint32_t cp, uint32_t out[2]);

/* Primary composite of (a, b), or 0. */
uint32_t gen__uc_compose_pair(uint32_t a, uint32_t b);

#endif
