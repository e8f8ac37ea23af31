/* Small UTF-8 helpers shared by messages, the tokenizer and metadata. */
#ifndef GEN_CORE_UTF8_H
#define GEN_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest n' <= n such that s[0..n') does not end inside a multi-byte sequence. */
size_t gen__utf8_floor(const char *s, size_t n);

/* Whether s[0..n) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool gen__utf8_valid(const char *s, size_t n);

/* Decode one code point at s[0..n); returns its length in bytes (1..4) and
 * stores it in *cp, or returns 0 for malformed input. */
size_t gen__utf8_decode(const char *s, size_t n, uint32_t *cp);

/* Encode cp into out (4 bytes of room); returns the length, 0 if cp is invalid. */
size_t gen__utf8_encode(uint32_t cp, char out[4]);

#endif
