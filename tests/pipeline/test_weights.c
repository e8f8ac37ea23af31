/* Host weight maps and device copies: sorted lookup, duplicates, dtype
 * conversion on upload (f16/bf16 -> f32, chunked for large tensors), shape
 * checks with messages naming the tensor, allocation failures without leaks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <gen/gen.h>

#include "backend/backend.h"
#include "core/alloc.h"
#include "pipeline/weights.h"

static gen__backend *be;

static int setup(void **state)
{
    (void)state;
    gen__cpu_backend_options o = {0, 1, 0};
    return gen__cpu_backend_create(&be, &o) == GEN_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    gen__backend_destroy(be);
    return 0;
}

static void test_host_map(void **state)
{
    (void)state;
    static const float a[6] = {1, 2, 3, 4, 5, 6};
    gen__host_weights *hw;
    assert_int_equal(gen__host_weights_create(&hw, "unet"), GEN_OK);
    assert_int_equal(gen__host_weights_add(hw, "b.weight", GEN__F32, 2, (int64_t[]){2, 3}, a),
                     GEN_OK);
    assert_int_equal(gen__host_weights_add(hw, "a.bias", GEN__F32, 1, (int64_t[]){6}, a), GEN_OK);
    assert_int_equal(gen__host_weights_add(hw, "c", GEN__F32, 1, (int64_t[]){1}, a), GEN_OK);
    assert_int_equal(gen__host_weights_add(hw, "b.weight", GEN__F32, 1, (int64_t[]){1}, a),
                     GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "'b.weight' is given twice"));
    assert_int_equal(gen__host_weights_add(hw, "bad", GEN__F32, 2, (int64_t[]){2, 0}, a),
                     GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "'bad'"));
    assert_int_equal(gen__host_weights_count(hw), 3);
    assert_string_equal(gen__host_weights_at(hw, 0)->name, "a.bias");
    assert_string_equal(gen__host_weights_at(hw, 2)->name, "c");
    assert_non_null(gen__host_weights_find(hw, "b.weight"));
    assert_null(gen__host_weights_find(hw, "b"));
    assert_int_equal(gen__host_weights_bytes(hw, GEN__F32), 13 * 4);
    assert_int_equal(gen__host_weights_bytes(hw, GEN__F16), 13 * 2);
    gen__host_weights_destroy(hw);
    gen__host_weights_destroy(NULL);
}

static int released;
static void release(void *p) { released += *(int *)p; }

static void test_upload_convert(void **state)
{
    (void)state;
    /* a tensor larger than the staging buffer (1 Mi elements) exercises the chunks */
    const size_t big = ((size_t)1 << 20) + 37;
    uint16_t *h16 = gen__malloc(big * sizeof *h16);
    uint16_t bf[4];
    float f32[4] = {0.5f, -2.0f, 3.25f, 1e-3f};
    assert_non_null(h16);
    for (size_t i = 0; i < big; i++)
        h16[i] = gen__f32_to_f16((float)(i % 2048) - 1024.0f);
    for (int i = 0; i < 4; i++)
        bf[i] = gen__f32_to_bf16(f32[i]);
    gen__host_weights *hw;
    int token = 5;
    released = 0;
    assert_int_equal(gen__host_weights_create(&hw, "vae"), GEN_OK);
    gen__host_weights_set_owner(hw, &token, release);
    assert_int_equal(gen__host_weights_add(hw, "big", GEN__F16, 2,
                                           (int64_t[]){(int64_t)big, 1}, h16), GEN_OK);
    assert_int_equal(gen__host_weights_add(hw, "bf", GEN__BF16, 2, (int64_t[]){2, 2}, bf),
                     GEN_OK);
    assert_int_equal(gen__host_weights_add(hw, "f", GEN__F32, 1, (int64_t[]){4}, f32), GEN_OK);

    gen__device_weights *dw;
    assert_int_equal(gen__device_weights_upload(&dw, hw, be, GEN__F32), GEN_OK);
    gen__host_weights_destroy(hw); /* the copy does not refer to the host map */
    assert_int_equal(released, 5);
    assert_int_equal(gen__device_weights_bytes(dw), (big + 8) * 4);
    assert_true(gen__device_weights_backend(dw) == be);
    assert_int_equal(gen__device_weights_dtype(dw), GEN__F32);

    gen__tensor t;
    assert_int_equal(gen__weights_get(dw, "big", 2, (int64_t[]){-1, 1}, &t), GEN_OK);
    assert_false(t.owned);
    float *back = gen__malloc(big * sizeof *back);
    assert_non_null(back);
    assert_int_equal(gen__tensor_download(&t, back, big * sizeof *back), GEN_OK);
    for (size_t i = 0; i < big; i++)
        if (back[i] != (float)(i % 2048) - 1024.0f)
            fail_msg("element %zu: %g", i, (double)back[i]);
    float four[4];
    assert_int_equal(gen__weights_get(dw, "bf", 2, (int64_t[]){2, 2}, &t), GEN_OK);
    assert_int_equal(gen__tensor_download(&t, four, sizeof four), GEN_OK);
    for (int i = 0; i < 4; i++)
        assert_true(four[i] == gen__bf16_to_f32(bf[i]));
    assert_int_equal(gen__weights_get(dw, "f", 1, (int64_t[]){4}, &t), GEN_OK);
    assert_int_equal(gen__tensor_download(&t, four, sizeof four), GEN_OK);
    assert_memory_equal(four, f32, sizeof four);

    assert_int_equal(gen__weights_get(dw, "nope", 1, (int64_t[]){4}, &t), GEN_ENOTFOUND);
    assert_string_equal(gen_last_error_message(), "vae: weight 'nope' is missing");
    assert_int_equal(gen__weights_get(dw, "f", 2, (int64_t[]){2, 2}, &t), GEN_EINVAL);
    assert_string_equal(gen_last_error_message(), "vae: weight 'f' is f32[4], expected [2,2]");
    assert_int_equal(gen__weights_get(dw, "bf", 2, (int64_t[]){2, 3}, &t), GEN_EINVAL);
    assert_string_equal(gen_last_error_message(), "vae: weight 'bf' is f32[2,2], expected [2,3]");
    bool found = true;
    assert_int_equal(gen__weights_get_opt(dw, "nope", 1, (int64_t[]){4}, &t, &found), GEN_OK);
    assert_false(found);
    assert_true(gen__weights_has(dw, "bf"));
    assert_false(gen__weights_has(dw, "b"));

    gen__device_weights_release(dw);
    gen__device_weights_release(NULL);
    gen__backend_mem_info mi;
    gen__backend_memory(be, &mi);
    assert_int_equal(mi.bytes_in_use, 0);
    gen__free(back);
    gen__free(h16);
}

/* Upload onto a device whose memory limit is too small: an error naming the
 * tensor, and nothing left allocated. */
static void test_upload_oom(void **state)
{
    (void)state;
    gen__backend *small;
    gen__cpu_backend_options o = {1, 1, 4096};
    assert_int_equal(gen__cpu_backend_create(&small, &o), GEN_OK);
    static float data[1024];
    gen__host_weights *hw;
    assert_int_equal(gen__host_weights_create(&hw, "unet"), GEN_OK);
    assert_int_equal(gen__host_weights_add(hw, "a", GEN__F32, 1, (int64_t[]){512}, data), GEN_OK);
    assert_int_equal(gen__host_weights_add(hw, "b", GEN__F32, 1, (int64_t[]){1024}, data), GEN_OK);
    gen__device_weights *dw = (gen__device_weights *)1;
    assert_int_equal(gen__device_weights_upload(&dw, hw, small, GEN__F32), GEN_EDEVICE_OOM);
    assert_null(dw);
    assert_non_null(strstr(gen_last_error_message(), "unet weight 'b' on cpu:1"));
    gen__backend_mem_info mi;
    gen__backend_memory(small, &mi);
    assert_int_equal(mi.bytes_in_use, 0);
    /* a dtype the CPU does not compute in */
    assert_int_equal(gen__device_weights_upload(&dw, hw, small, GEN__F16), GEN_EUNSUPPORTED);
    gen__host_weights_destroy(hw);
    gen__backend_destroy(small);
}

/* Every host allocation of an upload may fail: GEN_ENOMEM, no leak, no crash. */
static void test_alloc_failures(void **state)
{
    (void)state;
    static float data[16];
    for (long n = 1; n < 64; n++) {
        gen__host_weights *hw = NULL;
        gen__device_weights *dw = NULL;
        gen__alloc_fail_after(n, 1);
        gen_status st = gen__host_weights_create(&hw, "text_encoder");
        if (st == GEN_OK)
            st = gen__host_weights_add(hw, "x", GEN__F32, 1, (int64_t[]){16}, data);
        if (st == GEN_OK)
            st = gen__host_weights_add(hw, "y", GEN__F32, 2, (int64_t[]){4, 4}, data);
        if (st == GEN_OK)
            st = gen__device_weights_upload(&dw, hw, be, GEN__F32);
        gen__alloc_fail_after(0, 0);
        gen__device_weights_release(dw);
        gen__host_weights_destroy(hw);
        if (st == GEN_OK)
            break;
        assert_true(st == GEN_ENOMEM || st == GEN_EDEVICE_OOM);
    }
    gen__backend_mem_info mi;
    gen__backend_memory(be, &mi);
    assert_int_equal(mi.bytes_in_use, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_map),
        cmocka_unit_test(test_upload_convert),
        cmocka_unit_test(test_upload_oom),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
