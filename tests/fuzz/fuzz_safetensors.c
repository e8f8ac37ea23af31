/* libFuzzer target: the safetensors reader on arbitrary bytes. Any input must
 * give GEN_OK or an error status, never a crash, leak or out-of-bounds read;
 * on success every view must lie inside the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gen__st_file *f = NULL;
    if (gen__st_open_memory(&f, data, size, "fuzz") != GEN_OK)
        return 0;
    for (size_t i = 0; i < gen__st_count(f); i++) {
        const gen__st_view *t = gen__st_at(f, i);
        const uint8_t *p = t->data;
        if (p < data || p + t->nbytes > data + size || t->numel * gen__st_dtype_size(t->dtype) != t->nbytes)
            abort();
        if (gen__st_find(f, t->name) != t)
            abort();
        volatile uint8_t sink = 0;
        if (t->nbytes) /* touch both ends: ASan checks the bounds */
            sink = (uint8_t)(p[0] ^ p[t->nbytes - 1]);
        (void)sink;
    }
    for (size_t i = 0; i < gen__st_metadata_count(f); i++)
        if (!gen__st_metadata_get(f, gen__st_metadata_key(f, i)))
            abort();
    gen__st_close(f);
    return 0;
}
