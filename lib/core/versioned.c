#include "core/versioned.h"

#include <string.h>

#include "core/error.h"

gen_status gen__versioned_copy(void *dst, const void *src, const size_t *sizes, uint32_t current,
                               const char *type_name)
{
    uint32_t version;
    memcpy(&version, src, sizeof(version)); /* every options struct starts with it */
    if (version == 0)
        return gen__error(GEN_EINVAL, "%s: version is 0; initialise it with the INIT macro or "
                                      "the options_init function",
                          type_name);
    if (version > current)
        return gen__error(GEN_EVERSION,
                          "%s: version %u is newer than this library supports (%u); the program "
                          "was built against newer libgen headers",
                          type_name, (unsigned)version, (unsigned)current);
    memcpy(dst, src, sizes[version]);
    memcpy(dst, &current, sizeof(current));
    return GEN_OK;
}
