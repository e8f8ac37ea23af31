/* Creating a CUDA backend where there is no usable GPU (this build machine,
 * CI, or a build without CUDA): GEN_EDEVICE with a message naming the device
 * and the reason, *out NULL, no crash, and again on a second try. On a machine
 * with GPUs it checks the opposite: the backend comes up with a name and f16. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <gen_config.h>

#include "backend/cuda_backend.h"
#include "backend/gpu_probe.h"

static void test_create(void **state)
{
    (void)state;
    const char *why = NULL;
    int count = gen__gpu_count(&why);
    for (int round = 0; round < 2; round++) {
        gen__backend *be = (gen__backend *)(uintptr_t)1;
        gen__cuda_backend_options o = {.index = 0};
        gen_status st = gen__cuda_backend_create(&be, &o);
        if (count == 0 || !GEN_HAVE_CUDA) {
            assert_int_equal(st, GEN_EDEVICE);
            assert_null(be);
            assert_non_null(strstr(gen_last_error_message(), "cuda:0"));
            assert_true(strlen(gen_last_error_message()) > strlen("cuda:0: "));
        } else {
            assert_int_equal(st, GEN_OK);
            assert_string_equal(be->name, "cuda:0");
            assert_true(be->compute_dtypes & (1u << GEN__F16));
            gen__backend_destroy(be);
        }
    }
}

static void test_bad_index(void **state)
{
    (void)state;
    gen__backend *be = (gen__backend *)(uintptr_t)1;
    gen__cuda_backend_options o = {.index = 4096};
    assert_int_equal(gen__cuda_backend_create(&be, &o), GEN_EDEVICE);
    assert_null(be);
    assert_non_null(strstr(gen_last_error_message(), "cuda:4096"));
    o.index = -1;
    assert_int_equal(gen__cuda_backend_create(&be, &o), GEN_EDEVICE);
    assert_null(be);
}

static void test_mem_stats_of_other_backend(void **state)
{
    (void)state;
    gen__cuda_mem_stats s = {1, 1};
    gen__cuda_backend_mem_stats(NULL, &s);
    assert_int_equal(s.held, 0);
    assert_int_equal(s.cached, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_bad_index),
        cmocka_unit_test(test_mem_stats_of_other_backend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
