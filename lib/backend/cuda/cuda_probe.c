/* gpu_probe.h over the CUDA runtime. cudaGetDeviceCount reports "no driver" or
 * "no device" as an error code, so this works (count 0) on build machines. */
#include "backend/gpu_probe.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wundef"
#include <cuda.h> /* types only: the two driver calls are looked up through the runtime */
#include <cuda_runtime_api.h>
#pragma GCC diagnostic pop

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

/* The calling thread's context is saved and restored exactly (none stays
 * none) with the driver's cuCtxGetCurrent/cuCtxSetCurrent, found through the
 * runtime so that nothing links libcuda. Switching back with cudaSetDevice
 * instead would make device 0 current on a thread that had no device, and
 * create a context there: hundreds of MiB on a GPU this process may not even
 * use, for every process of a one-process-per-GPU deployment that asks. */
typedef CUresult (*ctx_get_fn)(CUcontext *);
typedef CUresult (*ctx_set_fn)(CUcontext);
static ctx_get_fn ctx_get;
static ctx_set_fn ctx_set;
static pthread_once_t ctx_fns_once = PTHREAD_ONCE_INIT;

static void find_ctx_fns(void)
{
    void *get = NULL, *set = NULL;
    enum cudaDriverEntryPointQueryResult qg = cudaDriverEntryPointSymbolNotFound, qs = qg;
    if (cudaGetDriverEntryPointByVersion("cuCtxGetCurrent", &get, 4000, cudaEnableDefault, &qg) ==
            cudaSuccess &&
        cudaGetDriverEntryPointByVersion("cuCtxSetCurrent", &set, 4000, cudaEnableDefault, &qs) ==
            cudaSuccess &&
        qg == cudaDriverEntryPointSuccess && qs == cudaDriverEntryPointSuccess && get && set) {
        ctx_get = (ctx_get_fn)get;
        ctx_set = (ctx_set_fn)set;
    }
    cudaGetLastError(); /* no driver: fall back to cudaGetDevice/cudaSetDevice */
}

gen_status gen__gpu_memory(int index, uint64_t *free_bytes, uint64_t *total_bytes)
{
    pthread_once(&ctx_fns_once, find_ctx_fns);
    CUcontext saved = NULL;
    bool exact = ctx_get && ctx_set && ctx_get(&saved) == CUDA_SUCCESS;
    int previous = 0;
    if (!exact)
        cudaGetDevice(&previous);
    cudaError_t err = cudaSetDevice(index);
    size_t free_b = 0, total_b = 0;
    if (err == cudaSuccess)
        err = cudaMemGetInfo(&free_b, &total_b);
    if (exact)
        ctx_set(saved);
    else
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
