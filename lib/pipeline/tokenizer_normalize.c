/* The CLIP normaliser: NFC, every run of White_Space -> one " ", lowercase
 * (per character, as the `tokenizers` Lowercase normaliser does). */
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/utf8.h"
#include "pipeline/tokenizer_internal.h"
#include "pipeline/unicode_tables.h"

/* Hangul syllable arithmetic (Unicode ch. 3.12). */
#define H_SBASE 0xAC00u
#define H_LBASE 0x1100u
#define H_VBASE 0x1161u
#define H_TBASE 0x11A7u
#define H_LCOUNT 19u
#define H_VCOUNT 21u
#define H_TCOUNT 28u
#define H_NCOUNT (H_VCOUNT * H_TCOUNT)
#define H_SCOUNT (H_LCOUNT * H_NCOUNT)

typedef struct cpbuf {
    uint32_t *v;
    size_t n, cap;
} cpbuf;

static gen_status push(cpbuf *b, uint32_t cp)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        uint32_t *v = gen__realloc(b->v, cap * sizeof *v);
        if (!v)
            return gen__error(GEN_ENOMEM, "tokenizer: out of memory normalising a prompt");
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = cp;
    return GEN_OK;
}

/* Full canonical decomposition of cp appended to b. Decompositions nest at
 * most a few levels deep; a small explicit stack keeps it iterative. */
static gen_status decompose(cpbuf *b, uint32_t cp)
{
    if (cp >= H_SBASE && cp < H_SBASE + H_SCOUNT) {
        uint32_t s = cp - H_SBASE;
        gen_status st = push(b, H_LBASE + s / H_NCOUNT);
        if (st == GEN_OK)
            st = push(b, H_VBASE + (s % H_NCOUNT) / H_TCOUNT);
        if (st == GEN_OK && s % H_TCOUNT)
            st = push(b, H_TBASE + s % H_TCOUNT);
        return st;
    }
    uint32_t stack[16];
    size_t sp = 0;
    stack[sp++] = cp;
    while (sp > 0) {
        uint32_t c = stack[--sp], d[2];
        size_t k = gen__uc_decompose1(c, d);
        if (k == 0 || sp + 2 > 16) {
            gen_status st = push(b, c);
            if (st != GEN_OK)
                return st;
            continue;
        }
        if (k == 2)
            stack[sp++] = d[1];
        stack[sp++] = d[0];
    }
    return GEN_OK;
}

/* Stable sort of each run of non-starters by combining class. */
static void canonical_order(uint32_t *v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        int cc = gen__uc_ccc(v[i]);
        if (cc == 0)
            continue;
        size_t j = i;
        uint32_t x = v[i];
        while (j > 0) {
            int pc = gen__uc_ccc(v[j - 1]);
            if (pc <= cc)
                break;
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

static uint32_t compose2(uint32_t a, uint32_t b)
{
    if (a >= H_LBASE && a < H_LBASE + H_LCOUNT && b >= H_VBASE && b < H_VBASE + H_VCOUNT)
        return H_SBASE + ((a - H_LBASE) * H_VCOUNT + (b - H_VBASE)) * H_TCOUNT;
    if (a >= H_SBASE && a < H_SBASE + H_SCOUNT && (a - H_SBASE) % H_TCOUNT == 0 &&
        b > H_TBASE && b < H_TBASE + H_TCOUNT)
        return a + (b - H_TBASE);
    return gen__uc_compose_pair(a, b);
}

/* Canonical composition in place; returns the new length. `gap_cc` is the
 * class of the last character kept after the current starter (-1: none, the
 * next character is adjacent). A character composes with the starter unless
 * blocked by a kept character of class 0 or >= its own. */
static size_t compose(uint32_t *v, size_t n)
{
    size_t starter = SIZE_MAX, out = 0;
    int gap_cc = -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = v[i];
        int cc = gen__uc_ccc(c);
        if (starter != SIZE_MAX && (gap_cc == -1 || (gap_cc != 0 && gap_cc < cc))) {
            uint32_t comp = compose2(v[starter], c);
            if (comp) {
                v[starter] = comp;
                continue;
            }
        }
        if (cc == 0) {
            starter = out;
            gap_cc = -1;
        } else {
            gap_cc = cc;
        }
        v[out++] = c;
    }
    return out;
}

static bool ascii_only(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return false;
    return true;
}

gen_status gen__tok_normalize(const char *text, size_t len, uint32_t **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    cpbuf b = {0};
    gen_status st = GEN_OK;
    if (ascii_only(text, len)) {
        /* ASCII is already NFC. */
        for (size_t i = 0; i < len && st == GEN_OK; i++)
            st = push(&b, (unsigned char)text[i]);
    } else {
        for (size_t i = 0; i < len && st == GEN_OK;) {
            uint32_t cp;
            size_t k = gen__utf8_decode(text + i, len - i, &cp);
            if (k == 0) {
                gen__free(b.v);
                return gen__error(GEN_EINVAL, "prompt is not valid UTF-8 (byte %zu)", i);
            }
            st = decompose(&b, cp);
            i += k;
        }
        if (st == GEN_OK) {
            canonical_order(b.v, b.n);
            b.n = compose(b.v, b.n);
        }
    }
    if (st != GEN_OK) {
        gen__free(b.v);
        return st;
    }
    /* Whitespace runs -> " ", then lowercase (may lengthen: U+0130 -> i + U+0307). */
    cpbuf r = {0};
    bool in_space = false;
    for (size_t i = 0; i < b.n && st == GEN_OK; i++) {
        uint32_t c = b.v[i];
        if (gen__uc_class(c) == GEN__UC_SPACE) {
            if (!in_space)
                st = push(&r, ' ');
            in_space = true;
            continue;
        }
        in_space = false;
        uint32_t low[3];
        size_t k = gen__uc_lower_of(c, low);
        for (size_t j = 0; j < k && st == GEN_OK; j++)
            st = push(&r, low[j]);
    }
    gen__free(b.v);
    if (st != GEN_OK) {
        gen__free(r.v);
        return st;
    }
    *out = r.v;
    *n_out = r.n;
    return GEN_OK;
}
