/* libFuzzer target: the config.json parsers. The first byte picks the parser
 * (unet, vae, text encoder, scheduler, model_index), the rest is the JSON. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "model/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    switch (data[0] % 5) {
    case 0: {
        gen__unet_config c;
        if (gen__unet_config_parse("fuzz", text, len, &c) == GEN_OK &&
            gen__unet_config_validate("fuzz", &c) != GEN_OK)
            abort(); /* a parsed config is always valid */
        break;
    }
    case 1: {
        gen__vae_config c;
        (void)gen__vae_config_parse("fuzz", text, len, &c);
        break;
    }
    case 2: {
        gen__text_config c;
        (void)gen__text_config_parse("fuzz", text, len, &c);
        break;
    }
    case 3: {
        gen__scheduler_config c, d;
        if (gen__scheduler_config_parse("fuzz", text, len, &c) == GEN_OK) {
            if (gen__scheduler_config_for(&c, GEN__SCHED_CLASS_EULER, &d) == GEN_OK)
                gen__scheduler_config_free(&d);
            gen__scheduler_config_free(&c);
        }
        break;
    }
    default: {
        gen__model_index m;
        (void)gen__model_index_parse("fuzz", text, len, &m);
        break;
    }
    }
    return 0;
}
