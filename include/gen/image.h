/* libgen — images: reading back what libgen recorded in the PNGs it wrote.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef GEN_IMAGE_H
#define GEN_IMAGE_H

#include <gen/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The generation parameters libgen stored in the PNG at `path` (an iTXt chunk
 * with keyword "libgen"): a UTF-8, NUL-terminated JSON object with the keys
 * model, prompt, negative_prompt, seed, steps, scheduler, guidance, width,
 * height, strength (null for text-to-image) and libgen_version.
 *
 * Size query: pass buf = NULL and buf_size = 0; *needed gets the bytes
 * required, NUL included, and GEN_OK is returned. With a buffer, the JSON is
 * copied when it fits; otherwise GEN_EFULL and *needed says how much is
 * needed. `needed` may be NULL. Errors: GEN_ENOTFOUND (no such file, or no
 * libgen metadata in it), GEN_EFORMAT (not a PNG, truncated or corrupt),
 * GEN_EIO. Thread-safe; no callbacks. */
GEN_API gen_status gen_image_read_metadata(const char *path, char *buf, size_t buf_size,
                                           size_t *needed);

#ifdef __cplusplus
}
#endif

#endif /* GEN_IMAGE_H */
