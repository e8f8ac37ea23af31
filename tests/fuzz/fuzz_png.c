/* Fuzz PNG decoding (to RGB8, sides limited to 512 to keep memory bounded)
 * and the metadata chunk reader. */
#include <stdint.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "image/png.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gen__rgb_image img;
    if (gen__png_decode_memory(data, size, 512, 512, "fuzz", &img) == GEN_OK) {
        if (!img.pixels || img.width == 0 || img.height == 0 || img.width > 512 || img.height > 512)
            abort();
        gen__rgb_image_free(&img);
    }
    char *text;
    size_t len;
    if (gen__png_find_text(data, size, GEN__PNG_META_KEY, "fuzz", &text, &len) == GEN_OK)
        gen__free(text);
    return 0;
}
