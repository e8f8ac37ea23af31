/* CLIP BPE tokenizer: the same ids as transformers' CLIPTokenizer (the
 * `tokenizers`-backed one of transformers >= 5: NFC, whitespace runs -> " ",
 * lowercase, the CLIP split pattern, byte-level BPE with "</w>" word ends,
 * special tokens matched before normalisation unless marked "normalized").
 * A loaded tokenizer is immutable except for its word cache, which is locked:
 * one tokenizer may encode from many threads at once. */
#ifndef GEN_PIPELINE_TOKENIZER_H
#define GEN_PIPELINE_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gen/common.h>

typedef struct gen__tokenizer gen__tokenizer;

/* Load from a model's tokenizer/ folder: vocab.json and merges.txt (required),
 * tokenizer_config.json and special_tokens_map.json (optional: special token
 * strings, their "normalized" flag, model_max_length). Errors name the file
 * and line: GEN_ENOTFOUND (missing file), GEN_EFORMAT (malformed), GEN_EIO. */
gen_status gen__tokenizer_load(gen__tokenizer **out, const char *dir);

/* Load from in-memory file contents (fuzzing, tests). `config_json` may be
 * NULL (defaults: <|startoftext|>, <|endoftext|> for eos/pad/unk, 77).
 * The names are used in error messages only. */
gen_status gen__tokenizer_load_buffers(gen__tokenizer **out,
                                       const char *vocab_json, size_t vocab_len,
                                       const char *merges_txt, size_t merges_len,
                                       const char *config_json, size_t config_len,
                                       const char *vocab_name, const char *merges_name);

void gen__tokenizer_destroy(gen__tokenizer *tok);

int32_t gen__tokenizer_bos(const gen__tokenizer *tok);
int32_t gen__tokenizer_eos(const gen__tokenizer *tok);
int32_t gen__tokenizer_pad(const gen__tokenizer *tok);
/* model_max_length (77 for CLIP): length of a padded sequence. */
size_t gen__tokenizer_max_length(const gen__tokenizer *tok);
size_t gen__tokenizer_vocab_size(const gen__tokenizer *tok);

/* Token ids of `text` (UTF-8, `len` bytes) without BOS/EOS, at most
 * `max_ids` of them; *n_out gets the number written and *more is set when the
 * text has more tokens than that (it may be NULL). GEN_EINVAL for invalid UTF-8. */
gen_status gen__tokenizer_encode(const gen__tokenizer *tok, const char *text, size_t len,
                                 int32_t *ids, size_t max_ids, size_t *n_out, bool *more);

/* The sequence the text encoder gets (padding="max_length", truncation=True):
 * BOS, up to length-2 tokens, EOS, then the pad id up to `length` ids
 * (length >= 2, usually gen__tokenizer_max_length). *truncated (may be NULL)
 * tells whether tokens were dropped. */
gen_status gen__tokenizer_encode_padded(const gen__tokenizer *tok, const char *text, size_t len,
                                        int32_t *ids, size_t length, bool *truncated);

#endif
