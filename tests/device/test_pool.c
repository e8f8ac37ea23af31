/* Device pool: resolution table, validation errors naming the entry, label
 * numbering over all devices, CPU thread budgets, the session device. Real
 * CUDA discovery runs too (0 devices on machines without a GPU); CUDA layouts
 * are tested with a fake machine. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <gen/gen.h>

#include "backend/gpu_probe.h"
#include "device/device.h"

static gen__gpu_props fake[4];

static int setup_fake(void **state)
{
    (void)state;
    const char *names[4] = {"NVIDIA H200", "NVIDIA H200", "NVIDIA RTX 4090", "NVIDIA H200"};
    for (int i = 0; i < 4; i++) {
        memset(&fake[i], 0, sizeof(fake[i]));
        snprintf(fake[i].name, sizeof(fake[i].name), "%s", names[i]);
        fake[i].total_memory = 141ull << 30;
        fake[i].compute_capability = 90;
    }
    gen__device_pool_set_fake_gpus(fake, 4);
    return 0;
}

static int teardown_fake(void **state)
{
    (void)state;
    gen__device_pool_set_fake_gpus(NULL, 0);
    return 0;
}

static gen_device_pool *make(const char *spec)
{
    gen_device_pool *pool = NULL;
    if (gen_device_pool_create(&pool, spec) != GEN_OK)
        fail_msg("\"%s\": %s", spec, gen_last_error_message());
    return pool;
}

static void expect_error(const char *spec, gen_status status, const char *fragment)
{
    gen_device_pool *pool = (gen_device_pool *)1;
    assert_int_equal(gen_device_pool_create(&pool, spec), status);
    assert_null(pool);
    if (!strstr(gen_last_error_message(), fragment))
        fail_msg("\"%s\": message \"%s\" lacks \"%s\"", spec, gen_last_error_message(), fragment);
}

static void test_auto_uses_every_gpu(void **state)
{
    (void)state;
    gen_device_pool *p = make("auto");
    assert_int_equal(gen_device_pool_count(p), 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(gen_device_pool_kind(p, i), GEN_DEVICE_CUDA);
        assert_int_equal(gen_device_pool_ordinal(p, i), (int)i);
        assert_int_equal(gen_device_pool_cpu_threads(p, i), 0);
        assert_int_equal(gen_device_pool_compute_capability(p, i), 90);
    }
    assert_string_equal(gen_device_pool_label(p, 0), "NVIDIA H200 #1");
    assert_string_equal(gen_device_pool_label(p, 1), "NVIDIA H200 #2");
    assert_string_equal(gen_device_pool_label(p, 2), "NVIDIA RTX 4090"); /* unique: no suffix */
    assert_string_equal(gen_device_pool_label(p, 3), "NVIDIA H200 #3");
    gen_device_pool_destroy(p);
}

static void test_labels_count_unselected_devices(void **state)
{
    (void)state;
    /* Leaving out cuda:1 keeps cuda:3 labelled #3 (numbered over the machine). */
    gen_device_pool *p = make("cuda:3,cuda:0");
    assert_int_equal(gen_device_pool_count(p), 2);
    assert_string_equal(gen_device_pool_id(p, 0), "cuda:3");
    assert_string_equal(gen_device_pool_label(p, 0), "NVIDIA H200 #3");
    assert_string_equal(gen_device_pool_label(p, 1), "NVIDIA H200 #1");
    gen_device_pool_destroy(p);
}

static void test_dedup_and_current(void **state)
{
    (void)state;
    gen_device_pool *p = make("cuda:0, cuda, cuda:2,cuda:0");
    assert_int_equal(gen_device_pool_count(p), 2); /* "cuda" is the current device: cuda:0 */
    assert_string_equal(gen_device_pool_id(p, 0), "cuda:0");
    assert_string_equal(gen_device_pool_id(p, 1), "cuda:2");
    gen_device_pool_destroy(p);
}

static void test_cuda_errors(void **state)
{
    (void)state;
    expect_error("cuda:4", GEN_EINVAL, "cuda:4 does not exist (this machine has 4 CUDA devices");
    expect_error("cuda:0,cuda:9", GEN_EINVAL, "cuda:9");
    expect_error("", GEN_EINVAL, "empty");
    expect_error("npu:0", GEN_EINVAL, "unknown device kind in \"npu:0\"");
    expect_error("cuda:zero", GEN_EINVAL, "malformed entry \"cuda:zero\"");
    gen__device_pool_set_fake_gpus(fake, 0);
    expect_error("cuda:0", GEN_EDEVICE, "cuda:0 requested but CUDA is not available");
    expect_error("cuda", GEN_EDEVICE, "CUDA is not available");
    gen__device_pool_set_fake_gpus(fake, 4);
}

static void test_auto_without_gpu_is_one_cpu(void **state)
{
    (void)state;
    gen__device_pool_set_fake_gpus(fake, 0);
    gen_device_pool *p = make("auto");
    assert_int_equal(gen_device_pool_count(p), 1);
    assert_int_equal(gen_device_pool_kind(p, 0), GEN_DEVICE_CPU);
    assert_string_equal(gen_device_pool_id(p, 0), "cpu:0");
    assert_string_equal(gen_device_pool_label(p, 0), "CPU");
    assert_int_equal(gen_device_pool_cpu_threads(p, 0), gen__host_cpu_count());
    gen_device_pool_destroy(p);
    gen__device_pool_set_fake_gpus(fake, 4);
}

static void test_cpu_devices_split_cores(void **state)
{
    (void)state;
    int cores = gen__host_cpu_count();
    gen_device_pool *p = make("cpu:0,cpu:1");
    assert_int_equal(gen_device_pool_count(p), 2);
    int t0 = gen_device_pool_cpu_threads(p, 0), t1 = gen_device_pool_cpu_threads(p, 1);
    assert_true(t0 >= 1 && t1 >= 1);
    if (cores >= 2)
        assert_int_equal(t0 + t1, cores);
    assert_true(t0 >= t1 && t0 - t1 <= 1);
    assert_string_equal(gen_device_pool_label(p, 0), "CPU #1");
    assert_string_equal(gen_device_pool_label(p, 1), "CPU #2");
    uint64_t free_b = 0, total_b = 0;
    assert_int_equal(gen_device_pool_memory(p, 1, &free_b, &total_b), GEN_OK);
    assert_true(total_b > 0 && free_b > 0 && free_b <= total_b);
    assert_int_equal(gen_device_pool_memory(p, 2, &free_b, &total_b), GEN_EINVAL);
    assert_null(gen_device_pool_id(p, 2));
    assert_int_equal(gen_device_pool_ordinal(p, 5), -1);
    gen_device_pool_destroy(p);

    /* More virtual devices than cores: each still gets one thread. */
    char spec[256] = "";
    size_t used = 0;
    for (int i = 0; i < cores + 2; i++)
        used += (size_t)snprintf(spec + used, sizeof(spec) - used, "%scpu:%d", i ? "," : "", i);
    p = make(spec);
    for (size_t i = 0; i < gen_device_pool_count(p); i++)
        assert_int_equal(gen_device_pool_cpu_threads(p, i), 1);
    gen_device_pool_destroy(p);
}

static void test_mixed(void **state)
{
    (void)state;
    gen_device_pool *p = make("cuda:1,cpu:0");
    assert_int_equal(gen_device_pool_kind(p, 0), GEN_DEVICE_CUDA);
    assert_int_equal(gen_device_pool_kind(p, 1), GEN_DEVICE_CPU);
    assert_int_equal(gen_device_pool_cpu_threads(p, 1), gen__host_cpu_count());
    gen_device_pool_destroy(p);
}

static void test_real_probe_never_crashes(void **state)
{
    (void)state;
    /* Whatever this machine has: "auto" resolves, and the count agrees with the probe. */
    gen__device_pool_set_fake_gpus(NULL, 0);
    const char *why = NULL;
    int gpus = gen__gpu_count(&why);
    gen_device_pool *p = make("auto");
    if (gpus == 0) {
        assert_non_null(why);
        assert_int_equal(gen_device_pool_count(p), 1);
        assert_int_equal(gen_device_pool_kind(p, 0), GEN_DEVICE_CPU);
        expect_error("cuda:0", GEN_EDEVICE, "not available");
    } else {
        assert_int_equal(gen_device_pool_count(p), (size_t)gpus);
    }
    gen_device_pool_destroy(p);
    gen__device_pool_set_fake_gpus(fake, 4);
}

static void *session_thread(void *arg)
{
    const gen__device *d = arg;
    if (gen__session_device_get() != NULL)
        return (void *)1; /* a new thread starts without a device */
    gen__session_device_set(d);
    return gen__session_device_get() == d ? NULL : (void *)1;
}

static void test_session_device_is_thread_local(void **state)
{
    (void)state;
    gen_device_pool *p = make("cpu:0,cpu:1");
    const gen__device *d0 = gen__device_pool_at(p, 0), *d1 = gen__device_pool_at(p, 1);
    gen__session_device_set(d0);
    pthread_t t;
    void *result = (void *)2;
    assert_int_equal(pthread_create(&t, NULL, session_thread, (void *)d1), 0);
    pthread_join(t, &result);
    assert_null(result);
    assert_ptr_equal(gen__session_device_get(), d0);
    gen__session_device_clear();
    assert_null(gen__session_device_get());
    gen_device_pool_destroy(p);
}

static void test_context_owns_pool(void **state)
{
    (void)state;
    gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
    assert_int_equal(gen_context_options_set(&o, "generation_devices", "cpu:1,cpu:0"), GEN_OK);
    gen_context *ctx = NULL;
    assert_int_equal(gen_context_create(&ctx, &o), GEN_OK);
    const gen_device_pool *p = gen_context_device_pool(ctx);
    assert_int_equal(gen_device_pool_count(p), 2);
    assert_string_equal(gen_device_pool_id(p, 0), "cpu:1");
    gen_context_destroy(ctx);

    assert_int_equal(gen_context_options_set(&o, "generation_devices", "cuda:7"), GEN_OK);
    ctx = (gen_context *)1;
    assert_int_equal(gen_context_create(&ctx, &o), GEN_EINVAL);
    assert_null(ctx);
    assert_non_null(strstr(gen_last_error_message(), "cuda:7"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auto_uses_every_gpu),
        cmocka_unit_test(test_labels_count_unselected_devices),
        cmocka_unit_test(test_dedup_and_current),
        cmocka_unit_test(test_cuda_errors),
        cmocka_unit_test(test_auto_without_gpu_is_one_cpu),
        cmocka_unit_test(test_cpu_devices_split_cores),
        cmocka_unit_test(test_mixed),
        cmocka_unit_test(test_real_probe_never_crashes),
        cmocka_unit_test(test_session_device_is_thread_local),
        cmocka_unit_test(test_context_owns_pool),
    };
    return cmocka_run_group_tests(tests, setup_fake, teardown_fake);
}
