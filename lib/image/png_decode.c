/* PNG -> RGB8 with libpng. All state that must survive a longjmp lives in a
 * heap context whose pointer never changes after setjmp, so an error deep in
 * libpng frees everything. */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <png.h>

#include "core/alloc.h"
#include "core/error.h"
#include "image/png.h"

typedef struct dec_ctx {
    const uint8_t *data;
    size_t len, pos;
    uint8_t *pixels;
    png_bytep *rows;
    const char *name;
    uint32_t max_width, max_height;
    char msg[200];
} dec_ctx;

static void on_error(png_structp png, png_const_charp msg)
{
    dec_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void read_mem(png_structp png, png_bytep out, png_size_t n)
{
    dec_ctx *c = png_get_io_ptr(png);
    if (n > c->len - c->pos)
        png_error(png, "truncated file");
    memcpy(out, c->data + c->pos, n);
    c->pos += n;
}

void gen__rgb_image_free(gen__rgb_image *img)
{
    if (!img)
        return;
    gen__free(img->pixels);
    img->pixels = NULL;
    img->width = img->height = 0;
}

/* The libpng part: everything it touches after setjmp is in *c (the pointer
 * itself never changes), so nothing can be clobbered by the longjmp. */
static gen_status decode(dec_ctx *c, gen__rgb_image *out)
{
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, c, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        return gen__error(GEN_ENOMEM, "%s: out of memory for the PNG decoder", c->name);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        gen__free(c->pixels);
        gen__free(c->rows);
        c->pixels = NULL;
        c->rows = NULL;
        return gen__error(GEN_EFORMAT, "%s: corrupt PNG: %s", c->name, c->msg);
    }
    png_set_read_fn(png, c, read_mem);
    png_set_user_limits(png, c->max_width, c->max_height);
    png_set_chunk_malloc_max(png, 8u << 20);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);
    /* Everything to 8-bit RGB, alpha and transparency dropped. */
    if (depth == 16)
        png_set_strip_16(png);
    if (type == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if ((type & PNG_COLOR_MASK_COLOR) == 0) {
        if (depth < 8)
            png_set_expand_gray_1_2_4_to_8(png);
        png_set_gray_to_rgb(png);
    }
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8)
        png_error(png, "unsupported pixel layout");
    size_t stride = (size_t)w * 3;
    if (png_get_rowbytes(png, info) != stride)
        png_error(png, "unexpected row size");
    c->pixels = gen__malloc(stride * h);
    c->rows = gen__malloc(sizeof *c->rows * h);
    if (!c->pixels || !c->rows) {
        snprintf(c->msg, sizeof c->msg, "out of memory for %ux%u pixels", (unsigned)w, (unsigned)h);
        png_longjmp(png, 1);
    }
    for (png_uint_32 y = 0; y < h; y++)
        c->rows[y] = c->pixels + y * stride;
    png_read_image(png, c->rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    out->width = w;
    out->height = h;
    out->pixels = c->pixels;
    c->pixels = NULL;
    gen__free(c->rows);
    c->rows = NULL;
    return GEN_OK;
}

gen_status gen__png_decode_memory(const void *data, size_t len, uint32_t max_width,
                                  uint32_t max_height, const char *name, gen__rgb_image *out)
{
    memset(out, 0, sizeof *out);
    if (!name)
        name = "image";
    if (!data || len < 8 || png_sig_cmp((png_const_bytep)data, 0, 8) != 0)
        return gen__error(GEN_EFORMAT, "%s: not a PNG file", name);
    dec_ctx *c = gen__calloc(1, sizeof *c);
    if (!c)
        return gen__error(GEN_ENOMEM, "%s: out of memory", name);
    c->data = data;
    c->len = len;
    c->name = name;
    c->max_width = max_width ? max_width : GEN__PNG_MAX_SIDE;
    c->max_height = max_height ? max_height : GEN__PNG_MAX_SIDE;
    gen_status st = decode(c, out);
    gen__free(c);
    return st;
}

gen_status gen__read_whole_file(const char *path, size_t max_bytes, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return gen__error(errno == ENOENT ? GEN_ENOTFOUND : GEN_EIO, "%s: %s", path, strerror(errno));
    gen_status st = GEN_OK;
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            if (cap >= max_bytes) {
                st = gen__error(GEN_EFORMAT, "%s: larger than %zu bytes", path, max_bytes);
                break;
            }
            cap = cap ? cap * 2 : 65536;
            if (cap > max_bytes)
                cap = max_bytes;
            uint8_t *b = gen__realloc(buf, cap);
            if (!b) {
                st = gen__error(GEN_ENOMEM, "%s: out of memory", path);
                break;
            }
            buf = b;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0) {
            if (ferror(fp))
                st = gen__error(GEN_EIO, "%s: read error", path);
            break;
        }
    }
    fclose(fp);
    if (st != GEN_OK) {
        gen__free(buf);
        return st;
    }
    *data = buf;
    *len = n;
    return GEN_OK;
}

gen_status gen__png_decode_file(const char *path, uint32_t max_width, uint32_t max_height,
                                gen__rgb_image *out)
{
    memset(out, 0, sizeof *out);
    uint8_t *data;
    size_t len;
    /* A compressed PNG is far smaller than its pixels; 1 GiB bounds the read. */
    gen_status st = gen__read_whole_file(path, (size_t)1 << 30, &data, &len);
    if (st != GEN_OK)
        return st;
    st = gen__png_decode_memory(data, len, max_width, max_height, path, out);
    gen__free(data);
    return st;
}
