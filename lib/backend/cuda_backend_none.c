/* gen__cuda_backend_create for builds without CUDA: a clear GEN_EDEVICE. */
#include "backend/cuda_backend.h"

#include <math.h>
#include <string.h>

#include "core/error.h"

gen_status gen__cuda_backend_create(gen__backend **out, const gen__cuda_backend_options *opts)
{
    if (out)
        *out = NULL;
    return gen__error(GEN_EDEVICE, "cuda:%d: this libgen was built without CUDA (-Dcuda=disabled)",
                      opts ? opts->index : 0);
}

void gen__cuda_backend_mem_stats(gen__backend *be, gen__cuda_mem_stats *out)
{
    memset(out, 0, sizeof(*out));
}

bool gen__cuda_backend_set_attention(gen__backend *be, int kernel)
{
    return false;
}

int gen__cuda_backend_attention_kernel(gen__backend *be, gen__dtype dtype, double *check_error)
{
    if (check_error)
        *check_error = NAN;
    return GEN__CUDA_ATTENTION_SIMPLE;
}
