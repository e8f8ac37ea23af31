/* The safetensors reader: a valid file reads back zero-copy; a corpus of
 * hand-broken files (written here, in C, into a temp dir) each yields
 * GEN_EFORMAT with a message naming the file, the tensor and the rule; every
 * allocation failure is GEN_ENOMEM without a leak (valgrind/ASan check). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "model/safetensors.h"
#include "tensor/tensor.h"
#include "st_write.h"

static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = st_tempdir();
    return dir ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    st_rmtree(dir);
    free(dir);
    return 0;
}

static void test_valid_file(void **state)
{
    (void)state;
    float w[6] = {1, 2, 3, 4, 5, 6};
    uint16_t h[3] = {0x3c00, 0xc000, 0x7bff}; /* 1, -2, 65504 */
    st_spec specs[] = {
        {"b.weight", "F32", 2, {2, 3}, w},
        {"a.half", "F16", 1, {3}, h},
        {"z.empty", "F32", 2, {0, 5}, NULL},
        {"scalar", "I64", 0, {0}, NULL},
    };
    const char *p = st_path(dir, "valid.safetensors");
    assert_int_equal(st_write(p, specs, 4, "{\"format\":\"pt\",\"note\":\"x\"}"), 0);
    gen__st_file *f = NULL;
    assert_int_equal(gen__st_open(&f, p), GEN_OK);
    assert_int_equal(gen__st_count(f), 4);
    /* sorted by name */
    assert_string_equal(gen__st_at(f, 0)->name, "a.half");
    assert_string_equal(gen__st_at(f, 3)->name, "z.empty");
    const gen__st_view *t = gen__st_find(f, "b.weight");
    assert_non_null(t);
    assert_int_equal(t->dtype, GEN__ST_F32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(t->numel, 6);
    assert_int_equal(t->nbytes, 24);
    assert_memory_equal(t->data, w, sizeof(w));
    const gen__st_view *hv = gen__st_find(f, "a.half");
    float out[3];
    assert_true(gen__st_dtype_to_f32(hv->dtype, hv->data, out, 3));
    assert_true(out[0] == 1.0f && out[1] == -2.0f && out[2] == 65504.0f);
    const gen__st_view *s = gen__st_find(f, "scalar");
    assert_int_equal(s->ndim, 0);
    assert_int_equal(s->numel, 1);
    assert_int_equal(gen__st_find(f, "z.empty")->numel, 0);
    assert_null(gen__st_find(f, "missing"));
    assert_int_equal(gen__st_metadata_count(f), 2);
    assert_string_equal(gen__st_metadata_get(f, "format"), "pt");
    assert_null(gen__st_metadata_get(f, "nope"));
    gen__st_close(f);
}

static void test_f16_bf16_conversion(void **state)
{
    (void)state;
    assert_true(gen__f16_to_f32(0x0001) == 5.9604644775390625e-08f); /* smallest subnormal */
    assert_true(gen__f16_to_f32(0x03ff) == 6.097555160522461e-05f);
    assert_true(gen__f16_to_f32(0x8000) == 0.0f);
    assert_true(gen__f16_to_f32(0x7c00) > 1e38f);
    assert_true(gen__f16_to_f32(0x7e00) != gen__f16_to_f32(0x7e00)); /* NaN */
    assert_true(gen__bf16_to_f32(0x3f80) == 1.0f);
    assert_true(gen__bf16_to_f32(0xc040) == -3.0f);
}

/* ---------------------------------------------------------------- the broken corpus */

typedef struct broken {
    const char *file;
    const char *header;     /* NULL: use raw_len/raw only */
    uint64_t header_len;    /* 0: strlen(header) */
    size_t data_len;        /* zero bytes after the header */
    size_t file_len;        /* when nonzero: truncate the written file to this many bytes */
    const char *expect[3];  /* substrings of the message besides the file name */
} broken;

static const broken corpus[] = {
    {"empty.safetensors", "", 0, 0, 1, {"too short", "truncated"}},
    {"short.safetensors", "", 0, 0, 5, {"too short", "truncated"}},
    {"header_past_end.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
     4096, 4, 0, {"header length 4096", "past the end", "truncated"}},
    {"header_too_long.safetensors", "{}", (uint64_t)200 << 20, 0, 0, {"header length 209715200", "limit"}},
    {"not_json_object_start.safetensors", "[1,2]   ", 0, 0, 0, {"does not start with '{'"}},
    {"bad_json.safetensors", "{\"a\":{\"dtype\":\"F32\",", 0, 0, 0, {"not valid JSON"}},
    {"trailing_json.safetensors", "{} {}    ", 0, 0, 0, {"not valid JSON"}},
    {"duplicate_key.safetensors",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
     0, 8, 0, {"\"w\"", "appears twice"}},
    {"bad_dtype.safetensors", "{\"w\":{\"dtype\":\"F31\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0,
     4, 0, {"'w'", "unknown dtype \"F31\""}},
    {"dtype_not_string.safetensors", "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 0,
     4, 0, {"'w'", "dtype is not a string"}},
    {"shape_overflow.safetensors",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,0]}}", 0, 0,
     0, {"'w'", "overflows"}},
    {"shape_bytes_overflow.safetensors",
     "{\"w\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,0]}}", 0, 0, 0,
     {"'w'", "overflows"}},
    {"shape_mismatch.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}",
     0, 20, 0, {"'w'", "needs 24 bytes", "span 20"}},
    {"negative_dim.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 0,
     4, 0, {"'w'", "shape[0] is negative"}},
    {"fraction_dim.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}",
     0, 4, 0, {"'w'", "whole number"}},
    {"too_many_dims.safetensors",
     "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 0, 1, 0,
     {"'w'", "9 dimensions"}},
    {"offsets_out_of_file.safetensors",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 0, 8, 0,
     {"'w'", "run past the end", "truncated"}},
    {"truncated_data.safetensors",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
     0, 16, 0 /* cut below */, {"'b'", "run past the end"}},
    {"offsets_reversed.safetensors", "{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}",
     0, 4, 0, {"'w'", "end before they begin"}},
    {"offsets_not_pair.safetensors", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", 0,
     1, 0, {"'w'", "data_offsets is not an array of 2"}},
    {"overlap.safetensors",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
     0, 12, 0, {"'b'", "overlap tensor 'a'"}},
    {"same_span.safetensors",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
     0, 8, 0, {"'b'", "overlap tensor 'a'"}},
    {"gap.safetensors",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
     0, 12, 0, {"'b'", "gap of 4 bytes"}},
    {"trailing_bytes.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
     0, 12, 0, {"8 bytes after the last tensor"}},
    {"metadata_not_string.safetensors",
     "{\"__metadata__\":{\"format\":\"pt\",\"step\":1000},"
     "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
     0, 4, 0, {"__metadata__", "\"step\" is not a string"}},
    {"metadata_not_object.safetensors", "{\"__metadata__\":[\"x\"]}", 0, 0, 0,
     {"__metadata__ is not a JSON object"}},
    {"entry_not_object.safetensors", "{\"w\":[1,2,3]}", 0, 0, 0, {"'w'", "not a JSON object"}},
    {"missing_offsets.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 0, 4, 0,
     {"'w'", "missing \"data_offsets\""}},
    {"empty_name.safetensors", "{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 4,
     0, {"empty name"}},
    {"nul_in_name.safetensors",
     "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 4, 0,
     {"not valid JSON"}},
    {"invalid_utf8.safetensors", "{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
     0, 4, 0, {"not valid JSON"}},
};

static void test_broken_corpus(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
        const broken *b = &corpus[i];
        const char *p = st_path(dir, b->file);
        size_t hb = strlen(b->header);
        uint64_t hl = b->header_len ? b->header_len : hb;
        char *data = calloc(1, b->data_len + 1);
        assert_int_equal(st_write_raw(p, hl, b->header, hb, data, b->data_len), 0);
        free(data);
        if (b->file_len)
            assert_int_equal(truncate(p, (off_t)(b->file_len - 1)), 0);
        if (strcmp(b->file, "truncated_data.safetensors") == 0)
            assert_int_equal(truncate(p, (off_t)(8 + hb + 12)), 0);
        gen__st_file *f = (gen__st_file *)1;
        gen_status st = gen__st_open(&f, p);
        const char *msg = gen_last_error_message();
        print_message("%-36s -> %s\n", b->file, msg);
        assert_int_equal(st, GEN_EFORMAT);
        assert_null(f);
        assert_non_null(strstr(msg, b->file));
        for (int k = 0; k < 3 && b->expect[k]; k++) {
            if (!strstr(msg, b->expect[k]))
                fail_msg("%s: message \"%s\" lacks \"%s\"", b->file, msg, b->expect[k]);
        }
    }
}

static void test_not_found_and_directory(void **state)
{
    (void)state;
    gen__st_file *f = (gen__st_file *)1;
    assert_int_equal(gen__st_open(&f, st_path(dir, "does-not-exist.safetensors")), GEN_ENOTFOUND);
    assert_null(f);
    assert_non_null(strstr(gen_last_error_message(), "does-not-exist"));
    assert_int_equal(gen__st_open(&f, dir), GEN_EIO);
    assert_non_null(strstr(gen_last_error_message(), "not a regular file"));
}

static void test_unaligned_view(void **state)
{
    (void)state;
    /* A 3-byte U8 tensor pushes the F32 one off its alignment: still valid, flagged. */
    st_spec specs[] = {{"a", "U8", 1, {3}, NULL}, {"b", "F32", 1, {2}, NULL}};
    const char *p = st_path(dir, "unaligned.safetensors");
    assert_int_equal(st_write(p, specs, 2, NULL), 0);
    gen__st_file *f;
    assert_int_equal(gen__st_open(&f, p), GEN_OK);
    assert_true(gen__st_find(f, "a")->aligned);
    assert_false(gen__st_find(f, "b")->aligned);
    gen__st_close(f);
}

static void test_memory_open(void **state)
{
    (void)state;
    static const char img[] = "\x10\0\0\0\0\0\0\0{}              ";
    gen__st_file *f;
    assert_int_equal(gen__st_open_memory(&f, img, 8 + 16, "mem"), GEN_OK);
    assert_int_equal(gen__st_count(f), 0);
    gen__st_close(f);
    assert_int_equal(gen__st_open_memory(&f, img, 8 + 15, "mem"), GEN_EFORMAT);
    assert_non_null(strstr(gen_last_error_message(), "mem: header length 16"));
}

static void test_allocation_failures(void **state)
{
    (void)state;
    st_spec specs[] = {{"x", "F32", 1, {4}, NULL}, {"y", "BF16", 2, {2, 2}, NULL}};
    const char *p = st_path(dir, "alloc.safetensors");
    assert_int_equal(st_write(p, specs, 2, "{\"k\":\"v\"}"), 0);
    gen__alloc_fail_after(0, 0);
    gen__st_file *f;
    assert_int_equal(gen__st_open(&f, p), GEN_OK);
    long n = gen__alloc_fail_after(0, 0);
    gen__st_close(f);
    assert_true(n >= 3);
    for (long i = 1; i <= n; i++) {
        gen__alloc_fail_after(i, 1);
        f = (gen__st_file *)1;
        gen_status st = gen__st_open(&f, p);
        gen__alloc_fail_after(0, 0);
        assert_int_equal(st, GEN_ENOMEM);
        assert_null(f);
        assert_non_null(strstr(gen_last_error_message(), "out of memory"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_file),
        cmocka_unit_test(test_f16_bf16_conversion),
        cmocka_unit_test(test_broken_corpus),
        cmocka_unit_test(test_not_found_and_directory),
        cmocka_unit_test(test_unaligned_view),
        cmocka_unit_test(test_memory_open),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
