/* Private layout of the tokenizer shared by its source files. */
#ifndef GEN_PIPELINE_TOKENIZER_INTERNAL_H
#define GEN_PIPELINE_TOKENIZER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gen/common.h>

#include "pipeline/tokenizer.h"

/* Open-addressing map from byte strings (kept in one arena) to ids. */
typedef struct gen__strmap {
    uint32_t *slots;        /* entry index + 1; 0 = empty */
    size_t cap;             /* power of two */
    size_t count;
    uint32_t *offsets;      /* per entry: offset into arena */
    uint32_t *lengths;
    int32_t *values;
    char *arena;
    size_t arena_len, arena_cap, entries_cap;
} gen__strmap;

/* Merge table: (left id, right id) -> rank and merged id. */
typedef struct gen__merge_slot {
    uint64_t key;           /* (left << 32 | right) + 1; 0 = empty */
    int32_t rank;
    int32_t merged;
} gen__merge_slot;

#define GEN__TOK_MAX_SPECIALS 4

typedef struct gen__special {
    char *text;
    size_t len;
    int32_t id;
    bool normalized;        /* matched after normalisation instead of on raw text */
} gen__special;

/* Cache of BPE results for short words. */
#define GEN__BPE_CACHE_SLOTS 8192
#define GEN__BPE_CACHE_WORD_MAX 48
#define GEN__BPE_CACHE_IDS_MAX 24
typedef struct gen__bpe_cache_entry {
    uint8_t used, word_len, n_ids;
    char word[GEN__BPE_CACHE_WORD_MAX];
    int32_t ids[GEN__BPE_CACHE_IDS_MAX];
} gen__bpe_cache_entry;

struct gen__tokenizer {
    gen__strmap vocab;
    size_t vocab_size;       /* number of entries in vocab.json */
    gen__merge_slot *merges;
    size_t merges_cap;       /* power of two */
    size_t n_merges;
    int32_t byte_id[256];    /* byte-level symbol of each byte */
    int32_t byte_eow_id[256];/* the same with "</w>" (last symbol of a word) */
    gen__special specials[GEN__TOK_MAX_SPECIALS];
    size_t n_specials;
    int32_t bos, eos, pad, unk;
    size_t max_length;
    pthread_mutex_t cache_lock;
    gen__bpe_cache_entry *cache;
};

gen_status gen__strmap_init(gen__strmap *m, size_t expected);
void gen__strmap_free(gen__strmap *m);
/* Insert (replacing an existing value); GEN_ENOMEM on failure. */
gen_status gen__strmap_put(gen__strmap *m, const char *key, size_t len, int32_t value);
/* Value of key, or -1. */
int32_t gen__strmap_get(const gen__strmap *m, const char *key, size_t len);

/* Merge lookup: rank (or -1) and merged id. */
int32_t gen__tok_merge_rank(const gen__tokenizer *tok, int32_t left, int32_t right, int32_t *merged);

/* BPE of one pre-tokenised word (its UTF-8 bytes); appends ids at out[*n]
 * while *n < cap, counting every id in *total. */
gen_status gen__tok_bpe_word(const gen__tokenizer *tok, const unsigned char *word, size_t len,
                             int32_t *out, size_t cap, size_t *n, size_t *total);

/* Normalise (NFC, \s+ -> " ", lowercase) a UTF-8 string into code points.
 * *out is gen__malloc'ed; GEN_EINVAL for invalid UTF-8. */
gen_status gen__tok_normalize(const char *text, size_t len, uint32_t **out, size_t *n_out);

#endif
