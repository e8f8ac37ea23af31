/* Option strings: "name=value" through gen_context_options_set, the device
 * list parser and the size parser. Any input must give GEN_OK or an error
 * with a message, never a crash, and a failed set must leave the options as
 * they were. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gen/gen.h>

#include "core/parse.h"
#include "device/device_spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    gen__device_spec spec;
    if (gen__device_spec_parse(text, &spec) == GEN_OK) {
        char canonical[GEN_DEVICES_TEXT_MAX];
        gen__device_spec spec2;
        /* Normal form is a fixed point. */
        if (gen__device_spec_format(&spec, canonical, sizeof(canonical)) == GEN_OK &&
            (gen__device_spec_parse(canonical, &spec2) != GEN_OK || spec2.count != spec.count))
            abort();
    }
    uint64_t bytes;
    (void)gen__parse_size("fuzz", text, &bytes);
    double d;
    (void)gen__parse_double("fuzz", text, -1e9, 1e9, false, &d);

    char *eq = strchr(text, '=');
    if (eq) {
        *eq = '\0';
        gen_context_options opts = GEN_CONTEXT_OPTIONS_INIT;
        gen_context_options before = opts;
        gen_status st = gen_context_options_set(&opts, text, eq + 1);
        if (st != GEN_OK && memcmp(&before, &opts, sizeof(opts)) != 0)
            abort(); /* a failed set changed the options */
        if (st != GEN_OK && gen_last_error_message()[0] == '\0')
            abort(); /* every error has a message */
    }
    free(text);
    return 0;
}
