/* gpu_probe.h for builds without the CUDA backend. */
#include "backend/gpu_probe.h"

#include "core/error.h"

int gen__gpu_count(const char **why)
{
    if (why)
        *why = "this libgen was built without the CUDA backend (meson -Dcuda=disabled or no CUDA "
               "toolkit found)";
    return 0;
}

gen_status gen__gpu_props_get(int index, gen__gpu_props *out)
{
    (void)out;
    return gen__error(GEN_EDEVICE, "cuda:%d: this libgen was built without CUDA", index);
}

gen_status gen__gpu_memory(int index, uint64_t *free_bytes, uint64_t *total_bytes)
{
    (void)free_bytes;
    (void)total_bytes;
    return gen__error(GEN_EDEVICE, "cuda:%d: this libgen was built without CUDA", index);
}

int gen__gpu_current(void)
{
    return 0;
}
