/* torch CPU generator: bit-exact against torch.randn fixtures
 * (tests/fixtures/randn, made by tools/make_randn_fixtures.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"
#include "pipeline/rng.h"

static st_file st;
static json_t *meta;

static int setup(void **state)
{
    (void)state;
    char p[1024];
    if (st_open(&st, fixture_path(p, sizeof p, "randn/randn.safetensors")) != 0)
        return -1;
    meta = json_load_file(fixture_path(p, sizeof p, "randn/randn.json"), 0, NULL);
    return meta ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    st_close(&st);
    json_decref(meta);
    return 0;
}

static size_t numel_of(json_t *shape)
{
    size_t n = 1;
    for (size_t i = 0; i < json_array_size(shape); i++)
        n *= (size_t)json_integer_value(json_array_get(shape, i));
    return n;
}

/* Every seed/shape key: full tensors, heads and tails of large ones. */
static void test_randn_matches_torch(void **state)
{
    (void)state;
    const char *key;
    json_t *m;
    int checked = 0;
    size_t mismatches = 0;
    json_object_foreach(meta, key, m) {
        if (strncmp(key, "seed", 4) != 0)
            continue;
        uint64_t seed = (uint64_t)json_integer_value(json_object_get(m, "seed"));
        if (!json_is_integer(json_object_get(m, "seed")))
            seed = (uint64_t)json_number_value(json_object_get(m, "seed"));
        size_t n = numel_of(json_object_get(m, "shape"));
        size_t nref;
        double *ref = st_get(&st, key, &nref);
        assert_non_null(ref);
        float *x = malloc(n * sizeof *x);
        gen__rng rng;
        gen__rng_seed(&rng, seed);
        gen__rng_randn(&rng, x, n);
        const char *part = json_string_value(json_object_get(m, "part"));
        size_t off = 0;
        if (strcmp(part, "full") == 0)
            assert_int_equal(nref, n);
        else if (strstr(part, "-256"))
            off = n - nref;
        for (size_t i = 0; i < nref; i++) {
            if ((double)x[off + i] != ref[i]) {
                if (mismatches < 5)
                    print_message("%s[%zu]: %.9g vs torch %.9g\n", key, off + i, x[off + i], ref[i]);
                mismatches++;
            }
        }
        free(x);
        free(ref);
        checked++;
    }
    print_message("randn: %d tensors compared, %zu mismatching values\n", checked, mismatches);
    assert_true(checked >= 40);
    assert_int_equal(mismatches, 0);
}

/* Successive draws from one generator continue the stream like torch. */
static void test_sequences(void **state)
{
    (void)state;
    static const struct { uint64_t seed; int count; } seqs[] = { {42, 3}, {7, 4}, {5, 4} };
    for (size_t s = 0; s < sizeof seqs / sizeof seqs[0]; s++) {
        gen__rng rng;
        gen__rng_seed(&rng, seqs[s].seed);
        for (int k = 0; k < seqs[s].count; k++) {
            const char *key = NULL;
            json_t *m;
            char prefix[64];
            snprintf(prefix, sizeof prefix, "seq%llu_%d_", (unsigned long long)seqs[s].seed, k);
            json_object_foreach(meta, key, m) {
                if (strncmp(key, prefix, strlen(prefix)) == 0)
                    break;
            }
            assert_non_null(m);
            size_t n = numel_of(json_object_get(m, "shape")), nref;
            double *ref = st_get(&st, key, &nref);
            assert_int_equal(n, nref);
            float x[256];
            assert_true(n <= 256);
            gen__rng_randn(&rng, x, n);
            for (size_t i = 0; i < n; i++)
                assert_true((double)x[i] == ref[i]);
            free(ref);
        }
    }
}

static void test_raw_mt19937(void **state)
{
    (void)state;
    static const uint64_t seeds[] = { 0, 42, (UINT64_C(1) << 32) + 5 };
    for (size_t s = 0; s < 3; s++) {
        char key[64];
        snprintf(key, sizeof key, "u32_seed%llu", (unsigned long long)seeds[s]);
        size_t n;
        double *ref = st_get(&st, key, &n);
        assert_non_null(ref);
        gen__rng rng;
        gen__rng_seed(&rng, seeds[s]);
        for (size_t i = 0; i < n; i++)
            assert_true((double)gen__rng_u32(&rng) == ref[i]);
        free(ref);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raw_mt19937),
        cmocka_unit_test(test_randn_matches_torch),
        cmocka_unit_test(test_sequences),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
