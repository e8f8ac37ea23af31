/* Byte-pair merging of one word: repeatedly merge the adjacent pair with the
 * lowest merge rank (leftmost first on ties), O(n log n) with a heap so that
 * a pathological word cannot stall a worker. Short words are cached. */
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "pipeline/tokenizer_internal.h"

typedef struct cand {
    int32_t rank;
    uint32_t pos;           /* left symbol's original position */
    int32_t left, right;    /* ids when pushed: stale entries are skipped */
} cand;

static bool cand_less(const cand *a, const cand *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(cand *h, size_t *n, cand c)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&c, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static cand heap_pop(cand *h, size_t *n)
{
    cand top = h[0];
    cand last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const cand *best = &last;
        if (l < *n && cand_less(&h[l], best)) {
            m = l;
            best = &h[l];
        }
        if (r < *n && cand_less(&h[r], best))
            m = r;
        if (m == i)
            break;
        h[i] = h[m];
        i = m;
    }
    if (*n > 0)
        h[i] = last;
    return top;
}

static uint64_t word_hash(const unsigned char *w, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= w[i];
        h *= 1099511628211ull;
    }
    return h;
}

static bool cache_get(const gen__tokenizer *tok, const unsigned char *w, size_t n, int32_t *ids,
                      size_t *n_ids)
{
    if (n > GEN__BPE_CACHE_WORD_MAX)
        return false;
    gen__tokenizer *t = (gen__tokenizer *)tok;  /* the cache is the one mutable part */
    size_t slot = (size_t)(word_hash(w, n) % GEN__BPE_CACHE_SLOTS);
    bool hit = false;
    pthread_mutex_lock(&t->cache_lock);
    const gen__bpe_cache_entry *e = &t->cache[slot];
    if (e->used && e->word_len == n && memcmp(e->word, w, n) == 0) {
        memcpy(ids, e->ids, e->n_ids * sizeof *ids);
        *n_ids = e->n_ids;
        hit = true;
    }
    pthread_mutex_unlock(&t->cache_lock);
    return hit;
}

static void cache_put(const gen__tokenizer *tok, const unsigned char *w, size_t n, const int32_t *ids,
                      size_t n_ids)
{
    if (n > GEN__BPE_CACHE_WORD_MAX || n_ids > GEN__BPE_CACHE_IDS_MAX)
        return;
    gen__tokenizer *t = (gen__tokenizer *)tok;
    size_t slot = (size_t)(word_hash(w, n) % GEN__BPE_CACHE_SLOTS);
    pthread_mutex_lock(&t->cache_lock);
    gen__bpe_cache_entry *e = &t->cache[slot];
    e->used = 1;
    e->word_len = (uint8_t)n;
    memcpy(e->word, w, n);
    e->n_ids = (uint8_t)n_ids;
    memcpy(e->ids, ids, n_ids * sizeof *ids);
    pthread_mutex_unlock(&t->cache_lock);
}

static void emit(const int32_t *ids, size_t k, int32_t *out, size_t cap, size_t *n, size_t *total)
{
    for (size_t i = 0; i < k; i++) {
        if (*n < cap)
            out[(*n)++] = ids[i];
    }
    *total += k;
}

gen_status gen__tok_bpe_word(const gen__tokenizer *tok, const unsigned char *word, size_t len,
                             int32_t *out, size_t cap, size_t *n, size_t *total)
{
    if (len == 0)
        return GEN_OK;
    int32_t cached[GEN__BPE_CACHE_IDS_MAX];
    size_t n_cached;
    if (cache_get(tok, word, len, cached, &n_cached)) {
        emit(cached, n_cached, out, cap, n, total);
        return GEN_OK;
    }
    if (len > UINT32_MAX / 4)
        return gen__error(GEN_EINVAL, "tokenizer: word too long");
    /* ids / prev / next per symbol, and a heap of at most 2 candidates per merge + initial ones. */
    int32_t *id = gen__malloc(len * sizeof *id);
    int32_t *prev = gen__malloc(len * sizeof *prev);
    int32_t *next = gen__malloc(len * sizeof *next);
    cand *heap = gen__malloc(3 * len * sizeof *heap);
    if (!id || !prev || !next || !heap) {
        gen__free(id);
        gen__free(prev);
        gen__free(next);
        gen__free(heap);
        return gen__error(GEN_ENOMEM, "tokenizer: out of memory for a %zu-byte word", len);
    }
    for (size_t i = 0; i < len; i++) {
        id[i] = i + 1 == len ? tok->byte_eow_id[word[i]] : tok->byte_id[word[i]];
        prev[i] = (int32_t)i - 1;
        next[i] = i + 1 < len ? (int32_t)i + 1 : -1;
    }
    size_t hn = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        int32_t merged, r = gen__tok_merge_rank(tok, id[i], id[i + 1], &merged);
        if (r >= 0)
            heap_push(heap, &hn, (cand){ r, (uint32_t)i, id[i], id[i + 1] });
    }
    while (hn > 0) {
        cand c = heap_pop(heap, &hn);
        int32_t l = (int32_t)c.pos, r = next[l];
        /* Stale: the left symbol was absorbed (its id slot reused as -1) or changed. */
        if (id[l] != c.left || r < 0 || id[r] != c.right)
            continue;
        int32_t merged;
        gen__tok_merge_rank(tok, c.left, c.right, &merged);
        id[l] = merged;
        id[r] = -1;
        next[l] = next[r];
        if (next[r] >= 0)
            prev[next[r]] = l;
        if (prev[l] >= 0) {
            int32_t p = prev[l], m2, rk = gen__tok_merge_rank(tok, id[p], id[l], &m2);
            if (rk >= 0 && hn < 3 * len)
                heap_push(heap, &hn, (cand){ rk, (uint32_t)p, id[p], id[l] });
        }
        if (next[l] >= 0) {
            int32_t q = next[l], m2, rk = gen__tok_merge_rank(tok, id[l], id[q], &m2);
            if (rk >= 0 && hn < 3 * len)
                heap_push(heap, &hn, (cand){ rk, (uint32_t)l, id[l], id[q] });
        }
    }
    /* Collect the surviving symbols in order (reusing prev[] as output). */
    size_t k = 0;
    for (int32_t i = 0; i >= 0; i = next[i])
        prev[k++] = id[i];
    cache_put(tok, word, len, prev, k);
    emit(prev, k, out, cap, n, total);
    gen__free(id);
    gen__free(prev);
    gen__free(next);
    gen__free(heap);
    return GEN_OK;
}
