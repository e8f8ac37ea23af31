/* Exact dtype conversion (all 65536 f16 and bf16 values), shapes and views. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <gen/gen.h>

#include "tensor/tensor.h"

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* The value of a half from its definition, computed in double. */
static double half_value(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
    double v = exp == 0 ? ldexp(man, -24) : ldexp(1024 + man, exp - 25);
    return sign ? -v : v;
}

static void test_f16_to_f32_exhaustive(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = gen__f16_to_f32((uint16_t)h);
        int exp = (h >> 10) & 31;
        if (exp == 31) {
            if (h & 1023) {
                assert_true(isnan(f));
                assert_int_equal(signbit(f) != 0, (h >> 15) != 0);
            } else {
                assert_true(isinf(f));
                assert_int_equal(f < 0, (h >> 15) != 0);
            }
            continue;
        }
        assert_true((double)f == half_value((uint16_t)h));
        assert_int_equal(signbit(f) != 0, (h >> 15) != 0); /* -0 stays -0 */
    }
}

/* Round trip of every half, and rounding of the midpoints between neighbours:
 * a tie goes to the even one, a hair below/above goes down/up. */
static void test_f32_to_f16_exhaustive(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t hh = (uint16_t)h;
        float f = gen__f16_to_f32(hh);
        uint16_t back = gen__f32_to_f16(f);
        if (isnan(f)) {
            assert_true(isnan(gen__f16_to_f32(back)));
            assert_int_equal(back >> 15, h >> 15);
            continue;
        }
        assert_int_equal(back, hh);
        if ((h & 0x7fff) >= 0x7c00)
            continue;
        /* midpoint to the next larger magnitude (for 0x7bff: 65520 -> inf) */
        uint16_t next = (uint16_t)(hh + 1);
        double hi = (h & 0x7fff) == 0x7bff ? (h >> 15 ? -65536.0 : 65536.0) : half_value(next);
        double mid = (half_value(hh) + hi) / 2;
        float fm = (float)mid;
        assert_true((double)fm == mid); /* exact in f32 */
        uint16_t even = (hh & 1) ? next : hh;
        assert_int_equal(gen__f32_to_f16(fm), even);
        float below = nextafterf(fm, 0.0f), above = nextafterf(fm, fm * 2.0f);
        assert_int_equal(gen__f32_to_f16(below), hh);
        assert_int_equal(gen__f32_to_f16(above), next);
    }
    assert_int_equal(gen__f32_to_f16(INFINITY), 0x7c00);
    assert_int_equal(gen__f32_to_f16(-INFINITY), 0xfc00);
    assert_int_equal(gen__f32_to_f16(1e10f), 0x7c00);
    assert_int_equal(gen__f32_to_f16(-1e-10f), 0x8000);
    assert_int_equal(gen__f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(gen__f32_to_f16(from_bits(0x7f800001u)) & 0x7e00, 0x7e00); /* sNaN -> qNaN */
}

static void test_bf16_exhaustive(void **state)
{
    (void)state;
    for (uint32_t b = 0; b < 65536; b++) {
        uint16_t bb = (uint16_t)b;
        float f = gen__bf16_to_f32(bb);
        assert_int_equal(bits(f), b << 16);
        uint16_t back = gen__f32_to_bf16(f);
        if (isnan(f)) {
            assert_true(isnan(gen__bf16_to_f32(back)));
            assert_int_equal(back >> 15, b >> 15);
            continue;
        }
        assert_int_equal(back, bb);
        if ((b & 0x7fff) >= 0x7f80)
            continue;
        /* the f32 halfway to the next bf16, and its neighbours */
        uint32_t mid = (b << 16) | 0x8000u;
        uint16_t next = (uint16_t)(bb + 1), even = (bb & 1) ? next : bb;
        assert_int_equal(gen__f32_to_bf16(from_bits(mid)), even);
        assert_int_equal(gen__f32_to_bf16(from_bits(mid - 1)), bb);
        assert_int_equal(gen__f32_to_bf16(from_bits(mid + 1)), next);
    }
    assert_int_equal(gen__f32_to_bf16(from_bits(0x7f7fffffu)), 0x7f80); /* max f32 -> inf */
    assert_true(isnan(gen__bf16_to_f32(gen__f32_to_bf16(from_bits(0x7f800001u)))));
}

static void test_convert_host(void **state)
{
    (void)state;
    float src[5] = {1.0f, -2.5f, 65504.0f, 1e-8f, NAN};
    uint16_t h[5], b[5];
    float back[5];
    gen__convert_host(h, GEN__F16, src, GEN__F32, 5);
    gen__convert_host(b, GEN__BF16, h, GEN__F16, 5);
    gen__convert_host(back, GEN__F32, b, GEN__BF16, 5);
    assert_true(back[0] == 1.0f && back[1] == -2.5f && back[2] == 65536.0f);
    assert_true(isnan(back[4]));
}

static void test_describe_and_views(void **state)
{
    (void)state;
    gen__tensor t;
    int64_t shape[4] = {2, 3, 4, 5};
    assert_int_equal(gen__tensor_describe(&t, GEN__F16, 4, shape), GEN_OK);
    assert_int_equal(gen__tensor_numel(&t), 120);
    assert_int_equal(gen__tensor_nbytes(&t), 240);
    assert_int_equal(gen__tensor_rows(&t), 24);
    assert_int_equal(gen__tensor_cols(&t), 5);
    assert_int_equal(gen__tensor_dims(&t, 1, -1), 12);
    char buf[GEN__SHAPE_STR_MAX];
    assert_string_equal(gen__tensor_str(&t, buf, sizeof(buf)), "f16[2,3,4,5]");

    uint16_t storage[120];
    t.data = storage;
    gen__tensor v;
    assert_int_equal(gen__tensor_view3(&v, &t, 3, 4, 5, 60), GEN_OK);
    assert_ptr_equal(v.data, storage + 60);
    assert_false(v.owned);
    assert_int_equal(gen__tensor_view3(&v, &t, 3, 4, 5, 61), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "f16[3,4,5]"));
    assert_int_equal(gen__tensor_view2(&v, &t, 0, 5, 0), GEN_EINVAL);

    int64_t bad[2] = {4, -1};
    assert_int_equal(gen__tensor_describe(&t, GEN__F32, 2, bad), GEN_EINVAL);
    assert_int_equal(gen__tensor_describe(&t, GEN__F32, 6, shape), GEN_EINVAL);
    assert_int_equal(gen__tensor_describe(&t, (gen__dtype)7, 2, shape), GEN_EINVAL);
    int64_t huge[3] = {INT64_C(1) << 30, INT64_C(1) << 30, INT64_C(1) << 30};
    assert_int_equal(gen__tensor_describe(&t, GEN__F32, 3, huge), GEN_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_to_f32_exhaustive),
        cmocka_unit_test(test_f32_to_f16_exhaustive),
        cmocka_unit_test(test_bf16_exhaustive),
        cmocka_unit_test(test_convert_host),
        cmocka_unit_test(test_describe_and_views),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
