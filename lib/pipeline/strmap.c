/* String -> id hash map for the vocabulary (FNV-1a, linear probing). */
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "pipeline/tokenizer_internal.h"

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

gen_status gen__strmap_init(gen__strmap *m, size_t expected)
{
    memset(m, 0, sizeof *m);
    size_t cap = 64;
    while (cap < expected * 2)
        cap *= 2;
    m->slots = gen__calloc(cap, sizeof *m->slots);
    if (!m->slots)
        return gen__error(GEN_ENOMEM, "tokenizer: out of memory for the vocabulary");
    m->cap = cap;
    return GEN_OK;
}

void gen__strmap_free(gen__strmap *m)
{
    gen__free(m->slots);
    gen__free(m->offsets);
    gen__free(m->lengths);
    gen__free(m->values);
    gen__free(m->arena);
    memset(m, 0, sizeof *m);
}

static size_t find_slot(const gen__strmap *m, const char *key, size_t len)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)hash_bytes(key, len) & mask;
    for (;;) {
        uint32_t e = m->slots[i];
        if (e == 0)
            return i;
        e--;
        if (m->lengths[e] == len && memcmp(m->arena + m->offsets[e], key, len) == 0)
            return i;
        i = (i + 1) & mask;
    }
}

static gen_status grow(gen__strmap *m)
{
    size_t cap = m->cap * 2;
    uint32_t *slots = gen__calloc(cap, sizeof *slots);
    if (!slots)
        return gen__error(GEN_ENOMEM, "tokenizer: out of memory for the vocabulary");
    for (size_t e = 0; e < m->count; e++) {
        size_t i = (size_t)hash_bytes(m->arena + m->offsets[e], m->lengths[e]) & (cap - 1);
        while (slots[i])
            i = (i + 1) & (cap - 1);
        slots[i] = (uint32_t)e + 1;
    }
    gen__free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return GEN_OK;
}

gen_status gen__strmap_put(gen__strmap *m, const char *key, size_t len, int32_t value)
{
    if (len > UINT32_MAX / 2 || m->arena_len + len > UINT32_MAX / 2 || m->count >= UINT32_MAX / 4)
        return gen__error(GEN_EFORMAT, "tokenizer: vocabulary too large");
    size_t i = find_slot(m, key, len);
    if (m->slots[i]) {
        m->values[m->slots[i] - 1] = value;
        return GEN_OK;
    }
    if ((m->count + 1) * 2 > m->cap) {
        gen_status st = grow(m);
        if (st != GEN_OK)
            return st;
        i = find_slot(m, key, len);
    }
    if (m->count == m->entries_cap) {
        size_t cap = m->entries_cap ? m->entries_cap * 2 : 1024;
        uint32_t *o = gen__realloc(m->offsets, cap * sizeof *o);
        if (!o)
            return gen__error(GEN_ENOMEM, "tokenizer: out of memory for the vocabulary");
        m->offsets = o;
        uint32_t *l = gen__realloc(m->lengths, cap * sizeof *l);
        if (!l)
            return gen__error(GEN_ENOMEM, "tokenizer: out of memory for the vocabulary");
        m->lengths = l;
        int32_t *v = gen__realloc(m->values, cap * sizeof *v);
        if (!v)
            return gen__error(GEN_ENOMEM, "tokenizer: out of memory for the vocabulary");
        m->values = v;
        m->entries_cap = cap;
    }
    if (m->arena_len + len > m->arena_cap) {
        size_t cap = m->arena_cap ? m->arena_cap : 4096;
        while (cap < m->arena_len + len)
            cap *= 2;
        char *a = gen__realloc(m->arena, cap);
        if (!a)
            return gen__error(GEN_ENOMEM, "tokenizer: out of memory for the vocabulary");
        m->arena = a;
        m->arena_cap = cap;
    }
    if (len)
        memcpy(m->arena + m->arena_len, key, len);
    m->offsets[m->count] = (uint32_t)m->arena_len;
    m->lengths[m->count] = (uint32_t)len;
    m->values[m->count] = value;
    m->arena_len += len;
    m->slots[i] = (uint32_t)++m->count;
    return GEN_OK;
}

int32_t gen__strmap_get(const gen__strmap *m, const char *key, size_t len)
{
    if (!m->slots)
        return -1;
    size_t i = find_slot(m, key, len);
    return m->slots[i] ? m->values[m->slots[i] - 1] : -1;
}
