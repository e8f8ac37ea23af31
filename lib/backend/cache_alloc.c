/* Size-class caching allocator over a raw (device) allocator; see cache_alloc.h. */
#include "backend/cache_alloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

struct gen__cache_block {
    void *ptr;
    size_t size;      /* class bytes (what the raw allocator gave) */
    size_t requested; /* bytes asked for by the live owner */
    int cls;
    gen__cache_block *next;
};

static size_t bucket_of(const gen__cache_alloc *a, const void *ptr)
{
    uint64_t h = (uint64_t)(uintptr_t)ptr;
    h ^= h >> 29;
    h *= 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 20) & (a->bucket_count - 1);
}

gen_status gen__cache_init(gen__cache_alloc *a, const char *name, gen__cache_raw raw, uint64_t limit)
{
    memset(a, 0, sizeof(*a));
    snprintf(a->name, sizeof(a->name), "%s", name);
    a->raw = raw;
    a->limit = limit;
    a->bucket_count = 1024;
    a->buckets = gen__calloc(a->bucket_count, sizeof(*a->buckets));
    if (!a->buckets)
        return gen__error(GEN_ENOMEM, "%s: cannot allocate the allocator's block table", name);
    return GEN_OK;
}

static void release_list(gen__cache_alloc *a, gen__cache_block *b)
{
    while (b) {
        gen__cache_block *next = b->next;
        a->raw.free(a->raw.user, b->ptr);
        gen__free(b);
        b = next;
    }
}

void gen__cache_trim(gen__cache_alloc *a)
{
    for (int i = 0; i < GEN__CACHE_CLASS_COUNT; i++) {
        release_list(a, a->free_lists[i]);
        a->free_lists[i] = NULL;
    }
    atomic_store(&a->cached, 0);
}

size_t gen__cache_destroy(gen__cache_alloc *a)
{
    size_t leaked = a->live_count;
    gen__cache_trim(a);
    if (a->buckets) {
        for (size_t i = 0; i < a->bucket_count; i++)
            release_list(a, a->buckets[i]);
        gen__free(a->buckets);
    }
    a->buckets = NULL;
    a->bucket_count = a->live_count = 0;
    atomic_store(&a->in_use, 0);
    atomic_store(&a->held, 0);
    return leaked;
}

/* Doubles the table when it gets crowded; failure just keeps longer chains. */
static void maybe_grow(gen__cache_alloc *a)
{
    if (a->live_count < 2 * a->bucket_count)
        return;
    size_t old_count = a->bucket_count;
    gen__cache_block **old = a->buckets;
    gen__cache_block **nb = gen__calloc(old_count * 2, sizeof(*nb));
    if (!nb)
        return;
    a->buckets = nb;
    a->bucket_count = old_count * 2;
    for (size_t i = 0; i < old_count; i++) {
        gen__cache_block *b = old[i];
        while (b) {
            gen__cache_block *next = b->next;
            size_t k = bucket_of(a, b->ptr);
            b->next = nb[k];
            nb[k] = b;
            b = next;
        }
    }
    gen__free(old);
}

static void track_live(gen__cache_alloc *a, gen__cache_block *b, size_t bytes)
{
    b->requested = bytes;
    size_t k = bucket_of(a, b->ptr);
    b->next = a->buckets[k];
    a->buckets[k] = b;
    a->live_count++;
    atomic_fetch_add(&a->held, b->size);
    unsigned long long now = atomic_fetch_add(&a->in_use, bytes) + bytes;
    unsigned long long peak = atomic_load(&a->peak);
    while (now > peak && !atomic_compare_exchange_weak(&a->peak, &peak, now))
        ;
    maybe_grow(a);
}

static gen_status oom(gen__cache_alloc *a, size_t bytes, const char *why)
{
    return gen__error(GEN_EDEVICE_OOM,
                      "%s: out of memory allocating %zu bytes (%s; %llu bytes in use)",
                      a->name, bytes, why, (unsigned long long)atomic_load(&a->in_use));
}

gen_status gen__cache_get(gen__cache_alloc *a, size_t bytes, void **out)
{
    *out = NULL;
    size_t size = 0;
    int cls = gen__cache_size_class(bytes, &size);
    if (cls < 0 || cls >= GEN__CACHE_CLASS_COUNT || size < bytes)
        return gen__error(GEN_EDEVICE_OOM, "%s: cannot allocate %zu bytes (too large)", a->name,
                          bytes);
    if (a->limit && atomic_load(&a->in_use) + bytes > a->limit) {
        char why[96];
        snprintf(why, sizeof(why), "over the limit of %" PRIu64 " bytes", a->limit);
        return oom(a, bytes, why);
    }
    gen__cache_block *b = a->free_lists[cls];
    if (b) {
        a->free_lists[cls] = b->next;
        atomic_fetch_sub(&a->cached, b->size);
        track_live(a, b, bytes);
        *out = b->ptr;
        return GEN_OK;
    }
    b = gen__malloc(sizeof(*b));
    if (!b)
        return gen__error(GEN_ENOMEM, "%s: cannot allocate a block record", a->name);
    void *p = NULL;
    gen_status st = a->raw.alloc(a->raw.user, size, &p);
    if (st == GEN_EDEVICE_OOM) { /* free what the cache holds, then one retry */
        unsigned long long released = atomic_load(&a->cached);
        gen__cache_trim(a);
        st = a->raw.alloc(a->raw.user, size, &p);
        if (st == GEN_EDEVICE_OOM) {
            gen__free(b);
            char why[128];
            snprintf(why, sizeof(why), "device full even after releasing %llu cached bytes",
                     released);
            return oom(a, bytes, why);
        }
    }
    if (st != GEN_OK) {
        gen__free(b);
        return st;
    }
    b->ptr = p;
    b->size = size;
    b->cls = cls;
    track_live(a, b, bytes);
    *out = p;
    return GEN_OK;
}

bool gen__cache_put(gen__cache_alloc *a, void *ptr)
{
    if (!ptr || !a->buckets)
        return ptr == NULL;
    size_t k = bucket_of(a, ptr);
    gen__cache_block **link = &a->buckets[k];
    while (*link && (*link)->ptr != ptr)
        link = &(*link)->next;
    gen__cache_block *b = *link;
    if (!b)
        return false;
    *link = b->next;
    a->live_count--;
    atomic_fetch_sub(&a->in_use, b->requested);
    atomic_fetch_sub(&a->held, b->size);
    b->next = a->free_lists[b->cls];
    a->free_lists[b->cls] = b;
    atomic_fetch_add(&a->cached, b->size);
    return true;
}
