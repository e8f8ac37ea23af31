/* Host allocation. Every allocation in libgen goes through here so that a test
 * can make the Nth allocation fail and check the error path (no abort, no leak). */
#ifndef GEN_CORE_ALLOC_H
#define GEN_CORE_ALLOC_H

#include <stddef.h>

void *gen__malloc(size_t size);
void *gen__calloc(size_t count, size_t size);
void *gen__realloc(void *ptr, size_t size);
void gen__free(void *ptr);
char *gen__strdup(const char *s);
/* `alignment` a power of two; free with gen__free. */
void *gen__aligned_malloc(size_t alignment, size_t size);
char *gen__strndup(const char *s, size_t n);

/* Test hook: make the allocation that comes `n` allocations from now fail
 * (n = 1: the next one), and every later one while `sticky` is set; n = 0
 * disables injection. Returns how many allocations were made since the last
 * call (lets a test walk N over every allocation of a code path). */
long gen__alloc_fail_after(long n, int sticky);

#endif
