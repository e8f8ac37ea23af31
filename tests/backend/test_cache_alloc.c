/* The caching allocator behind the CUDA backend, over host memory: size
 * classes, reuse, exact bytes-in-use and peak, the out-of-memory path (release
 * the cache, retry once, then GEN_EDEVICE_OOM naming the device and the size)
 * and the limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/cache_alloc.h"
#include "core/error.h"

typedef struct fake_device {
    size_t capacity, used; /* raw bytes handed out */
    int allocs, frees;
    int fail_other;        /* next alloc fails with GEN_EDEVICE */
} fake_device;

typedef struct fake_hdr {
    size_t bytes;
    max_align_t pad;
} fake_hdr;

static gen_status fake_alloc(void *user, size_t bytes, void **out)
{
    fake_device *d = user;
    if (d->fail_other) {
        d->fail_other = 0;
        return gen__error(GEN_EDEVICE, "fake: device lost");
    }
    if (d->used + bytes > d->capacity)
        return GEN_EDEVICE_OOM;
    fake_hdr *h = malloc(sizeof(fake_hdr) + bytes);
    if (!h)
        return GEN_EDEVICE_OOM;
    h->bytes = bytes;
    d->used += bytes;
    d->allocs++;
    *out = h + 1;
    return GEN_OK;
}

static void fake_free(void *user, void *ptr)
{
    fake_device *d = user;
    fake_hdr *h = (fake_hdr *)ptr - 1;
    d->used -= h->bytes;
    d->frees++;
    free(h);
}

static void test_size_classes(void **state)
{
    (void)state;
    size_t prev_bytes = 0;
    int prev_cls = -1;
    size_t probes[] = {0, 1, 255, 256, 257, 4095, 4096, 4097, 5000, 8192, 8193, 65535,
                       (size_t)1 << 20, ((size_t)1 << 20) + 1, (size_t)3 << 30, (size_t)1 << 40};
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        size_t cb;
        int cls = gen__cache_size_class(probes[i], &cb);
        assert_true(cls >= 0 && cls < GEN__CACHE_CLASS_COUNT);
        assert_true(cb >= probes[i] && cb % 256 == 0);
        assert_true(cb - probes[i] <= 256 || (cb - probes[i]) * 8 <= probes[i]); /* < 12.5% */
        assert_true(cls >= prev_cls && cb >= prev_bytes);
        prev_cls = cls;
        prev_bytes = cb;
    }
    /* every size maps to the class whose size is the smallest one >= it */
    for (size_t b = 1; b < 200000; b += 97) {
        size_t cb, cb2;
        int cls = gen__cache_size_class(b, &cb);
        int same = gen__cache_size_class(cb, &cb2);
        assert_int_equal(cls, same);
        assert_int_equal(cb, cb2);
        if (cls > 0) {
            size_t below;
            gen__cache_size_class(cb - 1, &below);
            /* cb - 1 is in the same class unless cb is the previous class's end + 1 step */
            assert_true(below == cb || below < cb);
        }
    }
}

static void test_reuse_and_accounting(void **state)
{
    (void)state;
    fake_device dev = {.capacity = 1 << 20};
    gen__cache_alloc a;
    assert_int_equal(gen__cache_init(&a, "fake:0", (gen__cache_raw){fake_alloc, fake_free, &dev}, 0),
                     GEN_OK);
    void *p1, *p2, *p3;
    assert_int_equal(gen__cache_get(&a, 1000, &p1), GEN_OK);
    assert_int_equal(gen__cache_get(&a, 5000, &p2), GEN_OK);
    assert_int_equal(atomic_load(&a.in_use), 6000);
    assert_int_equal(atomic_load(&a.held), 1024 + 5120);
    assert_true(gen__cache_put(&a, p1));
    assert_int_equal(atomic_load(&a.in_use), 5000);
    assert_int_equal(atomic_load(&a.cached), 1024);
    /* same class: the cached block comes back without a raw allocation */
    assert_int_equal(gen__cache_get(&a, 900, &p3), GEN_OK);
    assert_ptr_equal(p3, p1);
    assert_int_equal(dev.allocs, 2);
    assert_int_equal(atomic_load(&a.in_use), 5900);
    assert_int_equal(atomic_load(&a.peak), 6000);
    assert_int_equal(atomic_load(&a.cached), 0);
    assert_false(gen__cache_put(&a, (char *)p3 + 1)); /* unknown pointer */
    assert_true(gen__cache_put(&a, NULL));
    assert_true(gen__cache_put(&a, p3));
    assert_true(gen__cache_put(&a, p2));
    assert_int_equal(atomic_load(&a.in_use), 0);
    gen__cache_trim(&a);
    assert_int_equal(dev.used, 0);
    assert_int_equal(gen__cache_destroy(&a), 0);
}

static void test_many_blocks(void **state)
{
    (void)state;
    fake_device dev = {.capacity = (size_t)1 << 30};
    gen__cache_alloc a;
    assert_int_equal(gen__cache_init(&a, "fake:0", (gen__cache_raw){fake_alloc, fake_free, &dev}, 0),
                     GEN_OK);
    enum { N = 5000 };
    void **p = calloc(N, sizeof(void *));
    uint64_t total = 0;
    for (int i = 0; i < N; i++) { /* grows the block table several times */
        assert_int_equal(gen__cache_get(&a, (size_t)(i % 300) * 64 + 1, &p[i]), GEN_OK);
        total += (uint64_t)(i % 300) * 64 + 1;
    }
    assert_int_equal(atomic_load(&a.in_use), total);
    for (int i = 0; i < N; i += 2)
        assert_true(gen__cache_put(&a, p[i]));
    /* two leaks: destroy reports the live blocks and releases them all */
    for (int i = 1; i < N - 2; i += 2)
        assert_true(gen__cache_put(&a, p[i]));
    assert_int_equal(gen__cache_destroy(&a), 1);
    assert_int_equal(dev.used, 0);
    free(p);
}

static void test_oom_retry(void **state)
{
    (void)state;
    fake_device dev = {.capacity = 64 * 1024};
    gen__cache_alloc a;
    assert_int_equal(gen__cache_init(&a, "fake:3", (gen__cache_raw){fake_alloc, fake_free, &dev}, 0),
                     GEN_OK);
    void *p1, *p2, *p3;
    assert_int_equal(gen__cache_get(&a, 40 * 1024, &p1), GEN_OK);
    assert_true(gen__cache_put(&a, p1)); /* cached, still held on the device */
    /* 30 KiB does not fit next to the cached 40 KiB: the cache is released, retry works */
    assert_int_equal(gen__cache_get(&a, 30 * 1024, &p2), GEN_OK);
    assert_int_equal(atomic_load(&a.cached), 0);
    assert_int_equal(dev.frees, 1);
    /* a request that can never fit: GEN_EDEVICE_OOM naming the device and the size */
    assert_int_equal(gen__cache_get(&a, 50 * 1024, &p3), GEN_EDEVICE_OOM);
    assert_null(p3);
    assert_non_null(strstr(gen_last_error_message(), "fake:3"));
    assert_non_null(strstr(gen_last_error_message(), "51200 bytes"));
    assert_int_equal(atomic_load(&a.in_use), 30 * 1024);
    /* another raw failure keeps its own status and message */
    dev.fail_other = 1;
    assert_int_equal(gen__cache_get(&a, 1024, &p3), GEN_EDEVICE);
    assert_non_null(strstr(gen_last_error_message(), "device lost"));
    assert_true(gen__cache_put(&a, p2));
    assert_int_equal(gen__cache_destroy(&a), 0);
    assert_int_equal(dev.used, 0);
}

static void test_limit(void **state)
{
    (void)state;
    fake_device dev = {.capacity = 1 << 20};
    gen__cache_alloc a;
    assert_int_equal(gen__cache_init(&a, "fake:1", (gen__cache_raw){fake_alloc, fake_free, &dev},
                                     10000),
                     GEN_OK);
    void *p1, *p2;
    assert_int_equal(gen__cache_get(&a, 6000, &p1), GEN_OK);
    assert_int_equal(gen__cache_get(&a, 6000, &p2), GEN_EDEVICE_OOM);
    assert_non_null(strstr(gen_last_error_message(), "limit of 10000 bytes"));
    assert_true(gen__cache_put(&a, p1));
    assert_int_equal(gen__cache_get(&a, 6000, &p2), GEN_OK);
    assert_true(gen__cache_put(&a, p2));
    assert_int_equal(gen__cache_destroy(&a), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size_classes),
        cmocka_unit_test(test_reuse_and_accounting),
        cmocka_unit_test(test_many_blocks),
        cmocka_unit_test(test_oom_retry),
        cmocka_unit_test(test_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
