#include <gen/common.h>

GEN_API uint32_t gen_version_number(void)
{
    return GEN_VERSION_NUMBER;
}

GEN_API const char *gen_version_string(void)
{
    return GEN_VERSION_STRING;
}
