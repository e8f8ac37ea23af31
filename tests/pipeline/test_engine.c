/* The engine's choice of storage dtype per device and model: the gpu_dtype
 * option's parser, its mapping from a model's UNet dtype (auto keeps a bf16
 * model in bf16) and the device's dtypes (no bf16 before sm_80: f16), and f32
 * on CPU devices whatever the option says (checked on the tiny model through a
 * real engine). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <gen/gen.h>

#include "core/error.h"
#include "model/model.h"
#include "pipeline/engine.h"

static void test_parse(void **state)
{
    (void)state;
    gen__gpu_dtype d;
    assert_int_equal(gen__gpu_dtype_parse("gpu_dtype", "auto", &d), GEN_OK);
    assert_int_equal(d, GEN__GPU_DTYPE_AUTO);
    assert_int_equal(gen__gpu_dtype_parse("gpu_dtype", "f16", &d), GEN_OK);
    assert_int_equal(d, GEN__GPU_DTYPE_F16);
    assert_int_equal(gen__gpu_dtype_parse("gpu_dtype", "bf16", &d), GEN_OK);
    assert_int_equal(d, GEN__GPU_DTYPE_BF16);
    const char *bad[] = {"", "F16", "fp16", "f32", "bf16 ", "auto\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        d = GEN__GPU_DTYPE_BF16;
        assert_int_equal(gen__gpu_dtype_parse("gpu_dtype", bad[i], &d), GEN_EINVAL);
        assert_int_equal(d, GEN__GPU_DTYPE_BF16); /* untouched */
        assert_non_null(strstr(gen_last_error_message(), "use auto, f16 or bf16"));
    }
}

static void test_for_device(void **state)
{
    (void)state;
    const uint32_t both = (1u << GEN__F32) | (1u << GEN__F16) | (1u << GEN__BF16);
    const uint32_t no_bf16 = (1u << GEN__F32) | (1u << GEN__F16); /* before sm_80 */
    const gen__st_dtype unet[] = {GEN__ST_F32, GEN__ST_F16, GEN__ST_BF16, GEN__ST_INVALID};
    for (size_t i = 0; i < sizeof(unet) / sizeof(unet[0]); i++) {
        assert_int_equal(gen__gpu_dtype_for_device(GEN__GPU_DTYPE_F16, unet[i], both), GEN__F16);
        assert_int_equal(gen__gpu_dtype_for_device(GEN__GPU_DTYPE_BF16, unet[i], both), GEN__BF16);
        /* auto: bf16 only for a bf16 model (a mixed one, INVALID, stays f16) */
        assert_int_equal(gen__gpu_dtype_for_device(GEN__GPU_DTYPE_AUTO, unet[i], both),
                         unet[i] == GEN__ST_BF16 ? GEN__BF16 : GEN__F16);
        /* a GPU without bf16 gets f16 whatever was asked */
        for (int c = 0; c < 3; c++)
            assert_int_equal(gen__gpu_dtype_for_device((gen__gpu_dtype)c, unet[i], no_bf16),
                             GEN__F16);
    }
}

static void test_cpu_devices_compute_in_f32(void **state)
{
    (void)state;
    gen__model *model = NULL;
    assert_int_equal(gen__model_open(&model, GEN_FIXTURES_DIR "/tiny-sd15", NULL), GEN_OK);
    gen_device_pool *pool = NULL;
    assert_int_equal(gen_device_pool_create(&pool, "cpu:0,cpu:1"), GEN_OK);
    const gen__gpu_dtype choices[] = {GEN__GPU_DTYPE_AUTO, GEN__GPU_DTYPE_F16, GEN__GPU_DTYPE_BF16};
    for (size_t c = 0; c < 3; c++) {
        gen__engine *e = NULL;
        assert_int_equal(gen__engine_create(&e, pool, 0, 0, choices[c], NULL), GEN_OK);
        for (size_t dev = 0; dev < 2; dev++)
            assert_int_equal(gen__engine_weight_dtype(e, dev, model), GEN__F32);
        gen__engine_destroy(e);
    }
    gen_device_pool_destroy(pool);
    gen__model_close(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_for_device),
        cmocka_unit_test(test_cpu_devices_compute_in_f32),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
