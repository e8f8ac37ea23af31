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

gen_status gen__versioned_init(void *dst, const void *defaults, const size_t *sizes,
                               uint32_t version, uint32_t current, const char *fn)
{
    if (!dst)
        return gen__error(GEN_EINVAL, "%s: options pointer is NULL", fn);
    if (version == 0 || version > current)
        return gen__error(version == 0 ? GEN_EINVAL : GEN_EVERSION,
                          "%s: version %u is not supported (1..%u)", fn, (unsigned)version,
                          (unsigned)current);
    memset(dst, 0, sizes[version]);
    memcpy(dst, defaults, sizes[version]);
    memcpy(dst, &version, sizeof(version)); /* every options struct starts with it */
    return GEN_OK;
}
