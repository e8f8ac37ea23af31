#include "core/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_countdown; /* 0 = off */
static atomic_int fail_sticky;
static atomic_long alloc_count;

static int should_fail(void)
{
    atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
    long left = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (left == 0)
        return 0;
    if (left == 1) {
        if (!atomic_load_explicit(&fail_sticky, memory_order_relaxed))
            atomic_store_explicit(&fail_countdown, 0, memory_order_relaxed);
        return 1;
    }
    atomic_fetch_sub_explicit(&fail_countdown, 1, memory_order_relaxed);
    return 0;
}

long gen__alloc_fail_after(long n, int sticky)
{
    atomic_store(&fail_sticky, sticky);
    atomic_store(&fail_countdown, n < 0 ? 0 : n);
    return atomic_exchange(&alloc_count, 0);
}

void *gen__malloc(size_t size)
{
    if (should_fail())
        return NULL;
    return malloc(size ? size : 1);
}

void *gen__calloc(size_t count, size_t size)
{
    if (should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *gen__realloc(void *ptr, size_t size)
{
    if (should_fail())
        return NULL;
    return realloc(ptr, size ? size : 1);
}

void *gen__aligned_malloc(size_t alignment, size_t size)
{
    if (should_fail())
        return NULL;
    size = (size + alignment - 1) / alignment * alignment; /* aligned_alloc's rule */
    return aligned_alloc(alignment, size ? size : alignment);
}

void gen__free(void *ptr)
{
    free(ptr);
}

char *gen__strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *copy = gen__malloc(len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

char *gen__strdup(const char *s)
{
    return gen__strndup(s, strlen(s));
}
