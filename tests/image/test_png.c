/* PNG encode/decode and metadata: round trips, every pixel layout libpng
 * reads, corrupt and truncated files, size limits, atomic collision-free
 * writes, the public metadata reader. */
#include <dirent.h>
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <gen/gen.h>

#include "core/alloc.h"
#include "image/png.h"

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gen_png_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static uint8_t *test_pattern(uint32_t w, uint32_t h)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        p[i] = (uint8_t)(i * 7 + i / 5);
    return p;
}

static size_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.' || strncmp(e->d_name, ".libgen-", 8) == 0;
    closedir(d);
    return n;
}

static void test_round_trip_with_metadata(void **state)
{
    (void)state;
    uint32_t w = 37, h = 23;
    uint8_t *px = test_pattern(w, h);
    gen__image_meta m = { "tiny-sd15", "a caf\xc3\xa9 on Mars \xf0\x9f\x9a\x80, \"quoted\"\n",
                          "blurry", "euler_a", UINT64_MAX, 20, 7.5, w, h, -1.0 };
    char *json;
    assert_int_equal(gen__image_meta_to_json(&m, &json), GEN_OK);
    char path[256];
    size_t before = count_files(tmpdir);
    assert_int_equal(gen__png_write_unique(tmpdir, "img", px, w, h, (size_t)w * 3, json, path,
                                           sizeof path), GEN_OK);
    assert_non_null(strstr(path, "/img.png"));
    gen__rgb_image img;
    assert_int_equal(gen__png_decode_file(path, 0, 0, &img), GEN_OK);
    assert_int_equal(img.width, w);
    assert_int_equal(img.height, h);
    assert_memory_equal(img.pixels, px, (size_t)w * h * 3);
    gen__rgb_image_free(&img);

    /* Public reader: size query, too small, exact. */
    size_t needed = 0;
    assert_int_equal(gen_image_read_metadata(path, NULL, 0, &needed), GEN_OK);
    assert_int_equal(needed, strlen(json) + 1);
    char small[8];
    assert_int_equal(gen_image_read_metadata(path, small, sizeof small, &needed), GEN_EFULL);
    char *buf = malloc(needed);
    assert_int_equal(gen_image_read_metadata(path, buf, needed, NULL), GEN_OK);
    assert_string_equal(buf, json);
    json_t *j = json_loads(buf, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "prompt")), m.prompt);
    assert_string_equal(json_string_value(json_object_get(j, "seed")), "18446744073709551615");
    assert_int_equal(json_integer_value(json_object_get(j, "steps")), 20);
    assert_true(json_is_null(json_object_get(j, "strength")));
    assert_string_equal(json_string_value(json_object_get(j, "libgen_version")), gen_version_string());
    json_decref(j);
    free(buf);

    /* A second write with the same stem gets a new name; no temporary files remain. */
    char path2[256];
    assert_int_equal(gen__png_write_unique(tmpdir, "img", px, w, h, (size_t)w * 3, NULL, path2,
                                           sizeof path2), GEN_OK);
    assert_non_null(strstr(path2, "/img-1.png"));
    assert_int_equal(count_files(tmpdir), before + 2);
    assert_int_equal(gen_image_read_metadata(path2, NULL, 0, NULL), GEN_ENOTFOUND);

    /* Without replace an existing file is refused and left as it was. */
    assert_int_equal(gen__png_write_file(path, px, 1, 1, 3, NULL, false), GEN_EBUSY);
    assert_int_equal(gen_image_read_metadata(path, NULL, 0, &needed), GEN_OK);
    assert_int_equal(gen__png_write_file(path, px, 1, 1, 3, NULL, true), GEN_OK);
    assert_int_equal(gen_image_read_metadata(path, NULL, 0, NULL), GEN_ENOTFOUND);
    assert_int_equal(count_files(tmpdir), before + 2);

    /* Bad metadata text. */
    gen__image_meta bad = m;
    bad.prompt = "bad \xff";
    char *bj = (char *)1;
    assert_int_equal(gen__image_meta_to_json(&bad, &bj), GEN_EINVAL);
    assert_null(bj);
    gen__free(json);
    free(px);
}

/* A PNG of any layout written with libpng from 16-bit samples s(x, y, c). */
static uint16_t sample(uint32_t x, uint32_t y, int c)
{
    return (uint16_t)(x * 2477u + y * 7919u + (unsigned)c * 12345u);
}

struct membuf {
    uint8_t *p;
    size_t n;
};

static void mem_write(png_structp png, png_bytep d, png_size_t n)
{
    struct membuf *b = png_get_io_ptr(png);
    b->p = realloc(b->p, b->n + n);
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void mem_flush(png_structp png)
{
    (void)png;
}

static struct membuf make_png(uint32_t w, uint32_t h, int type, int depth, int interlace,
                              uint8_t *expect)
{
    struct membuf b = { NULL, 0 };
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_set_write_fn(png, &b, mem_write, mem_flush);
    png_set_IHDR(png, info, w, h, depth, type, interlace, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_color pal[256];
    png_byte trans[256];
    if (type == PNG_COLOR_TYPE_PALETTE) {
        for (int i = 0; i < 256; i++) {
            pal[i] = (png_color){ (png_byte)i, (png_byte)(255 - i), (png_byte)(i * 3) };
            trans[i] = (png_byte)(i / 2);
        }
        png_set_PLTE(png, info, pal, 1 << depth);
        png_set_tRNS(png, info, trans, 1 << depth, NULL);
    }
    png_write_info(png, info);
    int channels = type == PNG_COLOR_TYPE_GRAY ? 1 : type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                 : type == PNG_COLOR_TYPE_RGB ? 3 : type == PNG_COLOR_TYPE_RGB_ALPHA ? 4 : 1;
    size_t rowbytes = ((size_t)w * channels * depth + 7) / 8;
    png_bytep *rows = malloc(sizeof *rows * h);
    for (uint32_t y = 0; y < h; y++) {
        rows[y] = calloc(1, rowbytes);
        for (uint32_t x = 0; x < w; x++) {
            uint8_t *e = expect + ((size_t)y * w + x) * 3;
            for (int c = 0; c < channels; c++) {
                uint16_t v = sample(x, y, c);
                if (depth == 16) {
                    rows[y][(x * channels + c) * 2] = (png_byte)(v >> 8);
                    rows[y][(x * channels + c) * 2 + 1] = (png_byte)v;
                } else if (depth == 8) {
                    rows[y][x * channels + c] = (png_byte)(v >> 8);
                } else {
                    /* Sub-byte gray or palette index, MSB first. */
                    unsigned idx = (v >> 8) & ((1u << depth) - 1);
                    size_t bit = (size_t)x * depth;
                    rows[y][bit / 8] |= (png_byte)(idx << (8 - depth - bit % 8));
                    v = (uint16_t)(idx << 8);
                }
                uint8_t hi = (uint8_t)(v >> 8);
                if (type == PNG_COLOR_TYPE_PALETTE) {
                    unsigned idx = depth == 8 ? hi : hi;
                    e[0] = pal[idx].red;
                    e[1] = pal[idx].green;
                    e[2] = pal[idx].blue;
                } else if ((type & PNG_COLOR_MASK_COLOR) == 0 && c == 0) {
                    uint8_t g = depth >= 8 ? hi : (uint8_t)(hi * 255 / ((1u << depth) - 1));
                    e[0] = e[1] = e[2] = g;
                } else if ((type & PNG_COLOR_MASK_COLOR) && c < 3) {
                    e[c] = hi;
                }
            }
        }
    }
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    for (uint32_t y = 0; y < h; y++)
        free(rows[y]);
    free(rows);
    return b;
}

static void test_decode_layouts(void **state)
{
    (void)state;
    static const struct { int type, depth; } layouts[] = {
        { PNG_COLOR_TYPE_GRAY, 1 }, { PNG_COLOR_TYPE_GRAY, 2 }, { PNG_COLOR_TYPE_GRAY, 4 },
        { PNG_COLOR_TYPE_GRAY, 8 }, { PNG_COLOR_TYPE_GRAY, 16 }, { PNG_COLOR_TYPE_GRAY_ALPHA, 8 },
        { PNG_COLOR_TYPE_GRAY_ALPHA, 16 }, { PNG_COLOR_TYPE_RGB, 8 }, { PNG_COLOR_TYPE_RGB, 16 },
        { PNG_COLOR_TYPE_RGB_ALPHA, 8 }, { PNG_COLOR_TYPE_RGB_ALPHA, 16 },
        { PNG_COLOR_TYPE_PALETTE, 1 }, { PNG_COLOR_TYPE_PALETTE, 4 }, { PNG_COLOR_TYPE_PALETTE, 8 },
    };
    uint32_t w = 19, h = 11;
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        for (int interlace = 0; interlace < 2; interlace++) {
            uint8_t *expect = calloc((size_t)w * h, 3);
            struct membuf b = make_png(w, h, layouts[i].type, layouts[i].depth,
                                       interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, expect);
            gen__rgb_image img;
            gen_status st = gen__png_decode_memory(b.p, b.n, 0, 0, "layout", &img);
            if (st != GEN_OK)
                fail_msg("type %d depth %d: %s", layouts[i].type, layouts[i].depth,
                         gen_last_error_message());
            assert_int_equal(img.width, w);
            assert_int_equal(img.height, h);
            if (memcmp(img.pixels, expect, (size_t)w * h * 3) != 0)
                fail_msg("type %d depth %d interlace %d: pixels differ", layouts[i].type,
                         layouts[i].depth, interlace);
            gen__rgb_image_free(&img);
            free(expect);
            free(b.p);
        }
    }
}

static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xffffffffu;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void test_corrupt_and_truncated(void **state)
{
    (void)state;
    uint8_t *px = test_pattern(16, 16);
    uint8_t *png;
    size_t len;
    assert_int_equal(gen__png_encode_memory(px, 16, 16, 48, "{\"a\":1}", &png, &len), GEN_OK);
    gen__rgb_image img;
    /* Not a PNG. */
    assert_int_equal(gen__png_decode_memory("GIF89a....", 10, 0, 0, "x.gif", &img), GEN_EFORMAT);
    assert_non_null(strstr(gen_last_error_message(), "x.gif: not a PNG"));
    assert_null(img.pixels);
    /* Every truncation is an error, never a crash or a partial image. */
    for (size_t cut = 0; cut < len; cut++) {
        gen_status st = gen__png_decode_memory(png, cut, 0, 0, "cut", &img);
        assert_int_equal(st, GEN_EFORMAT);
        assert_null(img.pixels);
        char *text;
        size_t tl;
        st = gen__png_find_text(png, cut, GEN__PNG_META_KEY, "cut", &text, &tl);
        assert_true(st == GEN_EFORMAT || st == GEN_OK);
        if (st == GEN_OK)
            gen__free(text);
    }
    /* A flipped bit inside the image data: CRC error. */
    uint8_t *bad = malloc(len);
    memcpy(bad, png, len);
    bad[len - 20] ^= 0x10;
    assert_int_equal(gen__png_decode_memory(bad, len, 0, 0, "flip", &img), GEN_EFORMAT);
    assert_non_null(strstr(gen_last_error_message(), "flip: corrupt PNG"));
    /* Huge dimensions with a valid CRC are refused before allocation. */
    memcpy(bad, png, len);
    put_be32(bad + 16, 1000000);
    put_be32(bad + 20, 1000000);
    put_be32(bad + 29, crc32_of(bad + 12, 17));
    assert_int_equal(gen__png_decode_memory(bad, len, 0, 0, "huge", &img), GEN_EFORMAT);
    /* Caller limits. */
    assert_int_equal(gen__png_decode_memory(png, len, 8, 64, "limit", &img), GEN_EFORMAT);
    assert_int_equal(gen__png_decode_memory(png, len, 16, 16, "limit", &img), GEN_OK);
    gen__rgb_image_free(&img);
    free(bad);
    /* Files: missing, not PNG. */
    assert_int_equal(gen__png_decode_file("/nonexistent/x.png", 0, 0, &img), GEN_ENOTFOUND);
    char path[128];
    snprintf(path, sizeof path, "%s/notpng.png", tmpdir);
    FILE *fp = fopen(path, "wb");
    fputs("hello", fp);
    fclose(fp);
    assert_int_equal(gen__png_decode_file(path, 0, 0, &img), GEN_EFORMAT);
    assert_int_equal(gen_image_read_metadata(path, NULL, 0, NULL), GEN_EFORMAT);
    assert_int_equal(gen_image_read_metadata("/nonexistent/x.png", NULL, 0, NULL), GEN_ENOTFOUND);
    assert_int_equal(gen_image_read_metadata(NULL, NULL, 0, NULL), GEN_EINVAL);
    gen__free(png);
    free(px);
}

/* Every allocation failing in turn: clean errors, nothing leaked (valgrind/ASan). */
static void test_alloc_failures(void **state)
{
    (void)state;
    uint8_t *px = test_pattern(8, 8);
    for (long k = 1;; k++) {
        gen__alloc_fail_after(k, 1);
        uint8_t *png = NULL;
        size_t len;
        gen__rgb_image img = { 0 };
        gen_status st = gen__png_encode_memory(px, 8, 8, 24, "{}", &png, &len);
        if (st == GEN_OK)
            st = gen__png_decode_memory(png, len, 0, 0, "a", &img);
        long made = gen__alloc_fail_after(0, 0);
        gen__free(png);
        gen__rgb_image_free(&img);
        if (st == GEN_OK && made < k)
            break;
        assert_true(st == GEN_ENOMEM || st == GEN_EFORMAT);
        assert_true(k < 1000);
    }
    free(px);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_with_metadata),
        cmocka_unit_test(test_decode_layouts),
        cmocka_unit_test(test_corrupt_and_truncated),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
