/* The last error is per thread: two threads never see each other's message. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <gen/gen.h>

#include "core/error.h"
#include "core/utf8.h"

static void test_never_null(void **state)
{
    (void)state;
    gen_clear_last_error();
    assert_non_null(gen_last_error_message());
    assert_string_equal(gen_last_error_message(), "");
    assert_int_equal(gen_last_error_status(), GEN_OK);
}

static void test_set_and_prefix(void **state)
{
    (void)state;
    assert_int_equal(gen__error(GEN_EFORMAT, "tensor %s: bad dtype %d", "w", 7), GEN_EFORMAT);
    assert_string_equal(gen_last_error_message(), "tensor w: bad dtype 7");
    assert_int_equal(gen__error_prefix("unet.safetensors: "), GEN_EFORMAT);
    assert_string_equal(gen_last_error_message(), "unet.safetensors: tensor w: bad dtype 7");
    assert_int_equal(gen_last_error_status(), GEN_EFORMAT);
}

static void test_long_message_cut_on_char_boundary(void **state)
{
    (void)state;
    char big[3000];
    /* "é" is two bytes: a cut in the middle would leave invalid UTF-8. */
    for (size_t i = 0; i + 2 < sizeof(big); i += 2)
        memcpy(big + i, "\xc3\xa9", 2);
    big[sizeof(big) - 2] = '\0';
    gen__error(GEN_EINVAL, "x%s", big);
    const char *m = gen_last_error_message();
    size_t len = strlen(m);
    assert_true(len < GEN__ERROR_MESSAGE_MAX);
    assert_true(gen__utf8_valid(m, len));
    assert_string_equal(m + len - 3, "...");
}

struct thread_arg {
    int id;
    pthread_barrier_t *barrier;
    int ok;
};

static void *thread_main(void *p)
{
    struct thread_arg *arg = p;
    char expected[64];
    snprintf(expected, sizeof(expected), "error from thread %d", arg->id);
    arg->ok = 1;
    for (int round = 0; round < 2000; round++) {
        gen__error(arg->id == 0 ? GEN_EIO : GEN_EINVAL, "error from thread %d", arg->id);
        if (round == 0)
            pthread_barrier_wait(arg->barrier); /* both threads have set their message */
        if (strcmp(gen_last_error_message(), expected) != 0 ||
            gen_last_error_status() != (arg->id == 0 ? GEN_EIO : GEN_EINVAL))
            arg->ok = 0;
    }
    return NULL;
}

static void test_thread_local(void **state)
{
    (void)state;
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    struct thread_arg args[2] = {{0, &barrier, 0}, {1, &barrier, 0}};
    pthread_t t[2];
    gen__error(GEN_EBUSY, "main thread message");
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, thread_main, &args[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&barrier);
    assert_true(args[0].ok);
    assert_true(args[1].ok);
    assert_string_equal(gen_last_error_message(), "main thread message");
    assert_int_equal(gen_last_error_status(), GEN_EBUSY);
}

static void test_utf8(void **state)
{
    (void)state;
    char out[4];
    uint32_t cp;
    assert_int_equal(gen__utf8_encode(0x1F600, out), 4);
    assert_int_equal(gen__utf8_decode(out, 4, &cp), 4);
    assert_int_equal(cp, 0x1F600);
    assert_false(gen__utf8_valid("\xc0\xaf", 2));       /* overlong */
    assert_false(gen__utf8_valid("\xed\xa0\x80", 3));   /* surrogate */
    assert_false(gen__utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_true(gen__utf8_valid("a\xc3\xa9", 3));
    assert_int_equal(gen__utf8_floor("a\xc3\xa9", 2), 1);
    assert_int_equal(gen__utf8_floor("a\xc3\xa9", 3), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_never_null),
        cmocka_unit_test(test_set_and_prefix),
        cmocka_unit_test(test_long_message_cut_on_char_boundary),
        cmocka_unit_test(test_thread_local),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
