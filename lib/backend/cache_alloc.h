/* A caching allocator for device memory (the CUDA backend's cudaMalloc sits
 * behind it): requests are rounded up to size classes, freed blocks go to a
 * per-class free list and are reused without a device call. It knows nothing
 * about CUDA (the raw allocator is a pair of callbacks), so the unit suite
 * exercises it with host memory and injected out-of-memory failures.
 *
 * Accounting: bytes_in_use counts the bytes requested by live allocations
 * (exactly what the tensors need), peak its high-water mark; held counts the
 * bytes of live blocks after rounding and cached the bytes parked in free lists.
 * Allocation and free must come from one thread at a time (the backend's
 * worker); the counters may be read from any thread. */
#ifndef GEN_BACKEND_CACHE_ALLOC_H
#define GEN_BACKEND_CACHE_ALLOC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gen/common.h>

/* Size classes: 256-byte steps up to 4 KiB, then 8 classes per power of two
 * (rounding waste below 12.5%). */
#define GEN__CACHE_CLASS_COUNT 432

/* Class of a request of `bytes` (0 counts as 1) and that class's block size. */
static inline int gen__cache_size_class(size_t bytes, size_t *class_bytes)
{
    if (bytes == 0)
        bytes = 1;
    if (bytes <= 4096) {
        size_t s = (bytes + 255) & ~(size_t)255;
        *class_bytes = s;
        return (int)(s / 256) - 1;
    }
    int p = 63 - __builtin_clzll((unsigned long long)(bytes - 1)); /* 2^p < bytes <= 2^(p+1) */
    size_t step = (size_t)1 << (p - 3);
    size_t s = (bytes + step - 1) & ~(step - 1);
    int j = (int)((s - ((size_t)1 << p)) / step); /* 1..8 */
    *class_bytes = s;
    return 16 + (p - 12) * 8 + (j - 1);
}

/* The raw allocator: alloc returns GEN_OK, GEN_EDEVICE_OOM when the device is
 * full (no message needed: the cache writes it), or another status with a
 * message recorded. */
typedef struct gen__cache_raw {
    gen_status (*alloc)(void *user, size_t bytes, void **out);
    void (*free)(void *user, void *ptr);
    void *user;
} gen__cache_raw;

typedef struct gen__cache_block gen__cache_block;

typedef struct gen__cache_alloc {
    char name[32];              /* device name for messages ("cuda:0") */
    gen__cache_raw raw;
    uint64_t limit;             /* bytes_in_use may not exceed this (0 = no limit) */
    gen__cache_block *free_lists[GEN__CACHE_CLASS_COUNT];
    gen__cache_block **buckets; /* live blocks by pointer (chained hash) */
    size_t bucket_count, live_count;
    atomic_ullong in_use, peak, held, cached;
} gen__cache_alloc;

/* GEN_ENOMEM (host) on failure. */
gen_status gen__cache_init(gen__cache_alloc *a, const char *name, gen__cache_raw raw, uint64_t limit);

/* Releases every block, cached or live (live ones are leaks: counted and
 * returned so the backend can log them). */
size_t gen__cache_destroy(gen__cache_alloc *a);

/* A block of at least `bytes`. When the raw allocator (or the limit) says
 * out of memory, every cached block is released and the request retried once;
 * then GEN_EDEVICE_OOM with a message naming the device and the size. */
gen_status gen__cache_get(gen__cache_alloc *a, size_t bytes, void **out);

/* Return a block to its free list (NULL accepted; unknown pointers are
 * ignored and reported as false). */
bool gen__cache_put(gen__cache_alloc *a, void *ptr);

/* Release every cached (unused) block to the raw allocator. */
void gen__cache_trim(gen__cache_alloc *a);

#endif
