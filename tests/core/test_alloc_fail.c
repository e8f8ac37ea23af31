/* Allocation failure injection: a failed allocation in context creation gives
 * GEN_ENOMEM and leaves nothing behind (the valgrind/ASan runs check leaks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include <gen/gen.h>

#include "core/alloc.h"

static void test_every_allocation_of_create(void **state)
{
    (void)state;
    /* Count the allocations of one successful create, then fail each in turn. */
    gen__alloc_fail_after(0, 0);
    gen_context *ctx = NULL;
    assert_int_equal(gen_context_create(&ctx, NULL), GEN_OK);
    long n = gen__alloc_fail_after(0, 0);
    gen_context_destroy(ctx);
    assert_true(n >= 1);
    for (long i = 1; i <= n; i++) {
        gen__alloc_fail_after(i, 1);
        ctx = (gen_context *)1;
        gen_status st = gen_context_create(&ctx, NULL);
        gen__alloc_fail_after(0, 0);
        assert_int_equal(st, GEN_ENOMEM);
        assert_null(ctx);
        assert_non_null(strstr(gen_last_error_message(), "allocate"));
    }
}

static void test_injection_counts(void **state)
{
    (void)state;
    gen__alloc_fail_after(2, 0);
    void *a = gen__malloc(8);
    void *b = gen__malloc(8);
    void *c = gen__malloc(8);
    assert_non_null(a);
    assert_null(b);
    assert_non_null(c); /* not sticky */
    gen__free(a);
    gen__free(c);
    char *s = gen__strdup("abc");
    assert_string_equal(s, "abc");
    gen__free(s);
    gen__alloc_fail_after(0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_allocation_of_create),
        cmocka_unit_test(test_injection_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
