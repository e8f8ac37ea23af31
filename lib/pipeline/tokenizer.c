/* Encoding: special tokens, normalisation, the CLIP split pattern, BPE,
 * then BOS/EOS, truncation and padding. */
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/utf8.h"
#include "pipeline/tokenizer_internal.h"
#include "pipeline/unicode_tables.h"

typedef struct sink {
    int32_t *ids;
    size_t cap, n, total;
} sink;

static void put_id(sink *s, int32_t id)
{
    if (s->n < s->cap)
        s->ids[s->n++] = id;
    s->total++;
}

/* Enough tokens collected: no need to look at the rest of the text. */
static bool sink_full(const sink *s)
{
    return s->total > s->cap;
}

/* Leftmost-longest match of a special token (of the given kind) in s[0..n),
 * with its start in *at; returns its index or -1. */
static int find_special(const gen__tokenizer *tok, bool normalized, const char *s, size_t n,
                        size_t *at)
{
    for (size_t i = 0; i < n; i++) {
        int best = -1;
        for (size_t k = 0; k < tok->n_specials; k++) {
            const gen__special *sp = &tok->specials[k];
            if (sp->normalized != normalized || sp->len > n - i || memcmp(s + i, sp->text, sp->len) != 0)
                continue;
            if (best < 0 || sp->len > tok->specials[best].len)
                best = (int)k;
        }
        if (best >= 0) {
            *at = i;
            return best;
        }
    }
    return -1;
}

/* Byte-level BPE of each piece of the CLIP pattern over normalised UTF-8:
 * contractions ('s 't 're 've 'm 'll 'd), runs of letters, single numbers,
 * runs of anything else, and the literal special-token strings; whitespace
 * separates and is dropped. */
static gen_status encode_normalized(const gen__tokenizer *tok, const char *s, size_t n, sink *out)
{
    size_t i = 0;
    while (i < n && !sink_full(out)) {
        uint32_t cp;
        size_t k = gen__utf8_decode(s + i, n - i, &cp);
        if (k == 0)
            return gen__error(GEN_EINTERNAL, "tokenizer: normalised text is not UTF-8");
        int cls = gen__uc_class(cp);
        if (cls == GEN__UC_SPACE) {
            i += k;
            continue;
        }
        /* The pattern's literal <|startoftext|> / <|endoftext|> alternatives end
         * the piece there; byte-level splitting then cuts it into "<|", the
         * letters and "|>". */
        static const char *const lit[2] = { "<|startoftext|>", "<|endoftext|>" };
        bool literal = false;
        for (int li = 0; li < 2 && cp == '<'; li++) {
            size_t ll = strlen(lit[li]);
            if (n - i >= ll && memcmp(s + i, lit[li], ll) == 0) {
                gen_status st = gen__tok_bpe_word(tok, (const unsigned char *)s + i, 2, out->ids,
                                                  out->cap, &out->n, &out->total);
                if (st == GEN_OK)
                    st = gen__tok_bpe_word(tok, (const unsigned char *)s + i + 2, ll - 4, out->ids,
                                           out->cap, &out->n, &out->total);
                if (st == GEN_OK)
                    st = gen__tok_bpe_word(tok, (const unsigned char *)s + i + ll - 2, 2, out->ids,
                                           out->cap, &out->n, &out->total);
                if (st != GEN_OK)
                    return st;
                i += ll;
                literal = true;
                break;
            }
        }
        if (literal)
            continue;
        size_t end = i + k;
        if (cp == '\'' && i + 1 < n) {
            const char *r = s + i + 1;
            size_t left = n - i - 1;
            if (r[0] != '\0' && strchr("stmd", r[0]))
                end = i + 2;
            else if (left >= 2 && (memcmp(r, "re", 2) == 0 || memcmp(r, "ve", 2) == 0 ||
                                   memcmp(r, "ll", 2) == 0))
                end = i + 3;
        }
        if (end == i + k && cls != GEN__UC_NUMBER) {
            /* A run of letters, or of characters that are neither letters, numbers nor space. */
            while (end < n) {
                uint32_t c2;
                size_t k2 = gen__utf8_decode(s + end, n - end, &c2);
                if (k2 == 0 || gen__uc_class(c2) != cls)
                    break;
                end += k2;
            }
        }
        gen_status st = gen__tok_bpe_word(tok, (const unsigned char *)s + i, end - i, out->ids,
                                          out->cap, &out->n, &out->total);
        if (st != GEN_OK)
            return st;
        i = end;
    }
    return GEN_OK;
}

/* Normalise one segment that holds no raw special token, then split it on
 * the normalized special tokens. */
static gen_status encode_segment(const gen__tokenizer *tok, const char *s, size_t n, sink *out)
{
    uint32_t *cps;
    size_t ncp;
    gen_status st = gen__tok_normalize(s, n, &cps, &ncp);
    if (st != GEN_OK)
        return st;
    char *utf8 = gen__malloc(ncp * 4 + 1);
    if (!utf8) {
        gen__free(cps);
        return gen__error(GEN_ENOMEM, "tokenizer: out of memory");
    }
    size_t len = 0;
    for (size_t i = 0; i < ncp; i++)
        len += gen__utf8_encode(cps[i], utf8 + len);
    gen__free(cps);
    size_t pos = 0;
    while (st == GEN_OK && pos < len && !sink_full(out)) {
        size_t at;
        int sp = find_special(tok, true, utf8 + pos, len - pos, &at);
        size_t seg = sp >= 0 ? at : len - pos;
        st = encode_normalized(tok, utf8 + pos, seg, out);
        if (sp < 0)
            break;
        put_id(out, tok->specials[sp].id);
        pos += at + tok->specials[sp].len;
    }
    gen__free(utf8);
    return st;
}

static gen_status encode_all(const gen__tokenizer *tok, const char *text, size_t len, sink *out)
{
    if (!gen__utf8_valid(text, len))
        return gen__error(GEN_EINVAL, "prompt is not valid UTF-8");
    size_t pos = 0;
    gen_status st = GEN_OK;
    while (st == GEN_OK && pos < len && !sink_full(out)) {
        size_t at;
        int sp = find_special(tok, false, text + pos, len - pos, &at);
        size_t seg = sp >= 0 ? at : len - pos;
        if (seg > 0)
            st = encode_segment(tok, text + pos, seg, out);
        if (sp < 0 || st != GEN_OK)
            break;
        put_id(out, tok->specials[sp].id);
        pos += at + tok->specials[sp].len;
    }
    return st;
}

gen_status gen__tokenizer_encode(const gen__tokenizer *tok, const char *text, size_t len,
                                 int32_t *ids, size_t max_ids, size_t *n_out, bool *more)
{
    *n_out = 0;
    if (more)
        *more = false;
    if (!tok || (!text && len > 0) || (!ids && max_ids > 0))
        return gen__error(GEN_EINVAL, "tokenizer_encode: NULL argument");
    sink s = { ids, max_ids, 0, 0 };
    gen_status st = encode_all(tok, text ? text : "", len, &s);
    if (st != GEN_OK)
        return st;
    *n_out = s.n;
    if (more)
        *more = s.total > s.n;
    return GEN_OK;
}

gen_status gen__tokenizer_encode_padded(const gen__tokenizer *tok, const char *text, size_t len,
                                        int32_t *ids, size_t length, bool *truncated)
{
    if (truncated)
        *truncated = false;
    if (!tok || (!text && len > 0) || !ids || length < 2)
        return gen__error(GEN_EINVAL, "tokenizer_encode_padded: NULL argument or length < 2");
    size_t n;
    bool more;
    gen_status st = gen__tokenizer_encode(tok, text, len, ids + 1, length - 2, &n, &more);
    if (st != GEN_OK)
        return st;
    ids[0] = tok->bos;
    ids[n + 1] = tok->eos;
    for (size_t i = n + 2; i < length; i++)
        ids[i] = tok->pad;
    if (truncated)
        *truncated = more;
    return GEN_OK;
}
