/* gpu_probe.h over the CUDA runtime. cudaGetDeviceCount reports "no driver" or
 * "no device" as an error code, so this works (count 0) on build machines. */
#include "backend/gpu_probe.h"

#include <stdio.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "core/error.h"

int gen__gpu_count(const char **why)
{
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        if (why)
            *why = cudaGetErrorString(err);
        cudaGetLastError(); /* clear the sticky error so later calls start clean */
        return 0;
    }
    if (count == 0 && why)
        *why = "no CUDA device found";
    return count;
}

gen_status gen__gpu_props_get(int index, gen__gpu_props *out)
{
    struct cudaDeviceProp prop;
    cudaError_t err = cudaGetDeviceProperties(&prop, index);
    if (err != cudaSuccess) {
        cudaGetLastError(); /* or the next kernel launch check reports it */
        return gen__error(GEN_EDEVICE, "cuda:%d: cannot read device properties: %s", index,
                          cudaGetErrorString(err));
    }
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", prop.name);
    out->total_memory = (uint64_t)prop.totalGlobalMem;
    out->compute_capability = prop.major * 10 + prop.minor;
    out->multiprocessors = prop.multiProcessorCount;
    return GEN_OK;
}

gen_status gen__gpu_memory(int index, uint64_t *free_bytes, uint64_t *total_bytes)
{
    int previous = 0;
    cudaGetDevice(&previous);
    cudaError_t err = cudaSetDevice(index);
    size_t free_b = 0, total_b = 0;
    if (err == cudaSuccess)
        err = cudaMemGetInfo(&free_b, &total_b);
    cudaSetDevice(previous);
    if (err != cudaSuccess) {
        cudaGetLastError(); /* mem_info runs on the worker too: leave no error for its next launch */
        return gen__error(GEN_EDEVICE, "cuda:%d: cannot read memory: %s", index,
                          cudaGetErrorString(err));
    }
    *free_bytes = free_b;
    *total_bytes = total_b;
    return GEN_OK;
}

int gen__gpu_current(void)
{
    int device = 0;
    if (cudaGetDevice(&device) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return device;
}
