/* PNG files of generated images (libpng): 8-bit RGB out with the generation
 * parameters as an iTXt chunk, any common PNG in (init images) as RGB8. */
#ifndef GEN_IMAGE_PNG_H
#define GEN_IMAGE_PNG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gen/common.h>

/* Keyword of the iTXt chunk holding libgen's metadata JSON. */
#define GEN__PNG_META_KEY "libgen"

/* Default decode limit per side when the caller passes 0. */
#define GEN__PNG_MAX_SIDE 16384u

typedef struct gen__rgb_image {
    uint32_t width, height;
    uint8_t *pixels;        /* width * height * 3, row-major, gen__malloc'ed */
} gen__rgb_image;

void gen__rgb_image_free(gen__rgb_image *img);

/* Decode a PNG (8/16-bit; gray, gray+alpha, RGB, RGBA, palette; interlaced
 * or not) to RGB8: 16-bit samples keep their high byte and alpha is dropped,
 * as PIL's convert("RGB") does. Images wider than max_width or taller than
 * max_height (0 = GEN__PNG_MAX_SIDE) are refused before any pixel memory is
 * allocated. GEN_EFORMAT names what is wrong (not a PNG, truncated, bad CRC,
 * libpng's message); `name` is used in messages. */
gen_status gen__png_decode_memory(const void *data, size_t len, uint32_t max_width,
                                  uint32_t max_height, const char *name, gen__rgb_image *out);
gen_status gen__png_decode_file(const char *path, uint32_t max_width, uint32_t max_height,
                                gen__rgb_image *out);

/* Read a whole file (at most max_bytes) into a gen__malloc'ed buffer. */
gen_status gen__read_whole_file(const char *path, size_t max_bytes, uint8_t **data, size_t *len);

/* Encode RGB8 (rows `stride` bytes apart) as PNG into a gen__malloc'ed
 * buffer, with `metadata_json` (may be NULL) as iTXt "libgen". */
gen_status gen__png_encode_memory(const uint8_t *rgb, uint32_t width, uint32_t height, size_t stride,
                                  const char *metadata_json, uint8_t **out, size_t *out_len);

/* Write the PNG to `path` atomically: a temporary file in the same folder is
 * written, flushed and fsync'ed, then renamed into place and the folder
 * fsync'ed, so readers never see a partial image. With `replace` false an
 * existing file is an error (GEN_EBUSY) and is left untouched. */
gen_status gen__png_write_file(const char *path, const uint8_t *rgb, uint32_t width, uint32_t height,
                               size_t stride, const char *metadata_json, bool replace);

/* Write to `dir`/`stem`.png, or `stem`-1.png, -2, ... whichever is free
 * (never overwriting, even against concurrent writers); the chosen path goes
 * to path_out. */
gen_status gen__png_write_unique(const char *dir, const char *stem, const uint8_t *rgb,
                                 uint32_t width, uint32_t height, size_t stride,
                                 const char *metadata_json, char *path_out, size_t path_out_size);

/* The text of the iTXt (or tEXt) chunk `keyword` from PNG bytes, without
 * decoding pixels; chunk CRCs are checked. *text_out is gen__malloc'ed and
 * NUL-terminated. GEN_ENOTFOUND when absent. */
gen_status gen__png_find_text(const void *data, size_t len, const char *keyword, const char *name,
                              char **text_out, size_t *text_len);

/* Generation parameters recorded with an image. */
typedef struct gen__image_meta {
    const char *model;
    const char *prompt;
    const char *negative_prompt;
    const char *scheduler;
    uint64_t seed;
    int32_t steps;
    double guidance;
    uint32_t width, height;
    double strength;        /* img2img strength; < 0 = txt2img (written as null) */
} gen__image_meta;

/* The metadata JSON (keys: model, prompt, negative_prompt, seed, steps,
 * scheduler, guidance, width, height, strength, libgen_version). GEN_EINVAL
 * for a string that is not UTF-8. *json_out is gen__malloc'ed. */
gen_status gen__image_meta_to_json(const gen__image_meta *meta, char **json_out);

#endif
