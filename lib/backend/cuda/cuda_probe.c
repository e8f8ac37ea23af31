/* gpu_probe.h over the CUDA runtime. cudaGetDeviceCount reports "no driver" or
 * "no device" as an error code, so this works (count 0) on build machines. */
#include "backend/gpu_probe.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wundef"
#include <cuda.h>         /* types only: driver calls are looked up through the runtime */
#include <cudaTypedefs.h> /* their PFN_ types */
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

/* A device's memory is read in its primary context pushed onto the calling
 * thread and popped again (driver calls found through the runtime, so nothing
 * links libcuda). No runtime state changes: switching with cudaSetDevice and
 * back would leave a thread that had no device with one selected, and make
 * device 0 current there (creating a context on GPU 0, which this process may
 * not use, in every process of a one-process-per-GPU deployment that asks).
 * The asked device's primary context is retained once for the process (it is
 * created if nothing used the device yet: hundreds of MiB there, as using the
 * device would cost anyway). Without the driver calls (no driver, or one too
 * old for them) the switch-and-back fallback is used. */
static struct {
    PFN_cuInit_v2000 init;
    PFN_cuDeviceGet_v2000 device_get;
    PFN_cuDevicePrimaryCtxRetain_v7000 retain;
    PFN_cuCtxPushCurrent_v4000 push;
    PFN_cuCtxPopCurrent_v4000 pop;
    PFN_cuMemGetInfo_v3020 mem_info;
    bool ok;
} drv;
static pthread_once_t drv_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t retained_mu = PTHREAD_MUTEX_INITIALIZER;
#define RETAINED_MAX 64
static CUcontext retained[RETAINED_MAX];

static void *driver_fn(const char *name, unsigned version)
{
    void *fn = NULL;
    enum cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
#if CUDART_VERSION >= 12050
    cudaError_t err = cudaGetDriverEntryPointByVersion(name, &fn, version, cudaEnableDefault, &q);
#else
    (void)version; /* the default lookup gives the versions this runtime was built for */
    cudaError_t err = cudaGetDriverEntryPoint(name, &fn, cudaEnableDefault, &q);
#endif
    return err == cudaSuccess && q == cudaDriverEntryPointSuccess ? fn : NULL;
}

static void find_driver_fns(void)
{
    drv.init = (PFN_cuInit_v2000)driver_fn("cuInit", 2000);
    drv.device_get = (PFN_cuDeviceGet_v2000)driver_fn("cuDeviceGet", 2000);
    drv.retain = (PFN_cuDevicePrimaryCtxRetain_v7000)driver_fn("cuDevicePrimaryCtxRetain", 7000);
    drv.push = (PFN_cuCtxPushCurrent_v4000)driver_fn("cuCtxPushCurrent", 4000);
    drv.pop = (PFN_cuCtxPopCurrent_v4000)driver_fn("cuCtxPopCurrent", 4000);
    drv.mem_info = (PFN_cuMemGetInfo_v3020)driver_fn("cuMemGetInfo", 3020);
    drv.ok = drv.init && drv.device_get && drv.retain && drv.push && drv.pop && drv.mem_info &&
             drv.init(0) == CUDA_SUCCESS;
    cudaGetLastError(); /* no driver: the fallback below */
}

/* true when the driver path was tried (*ok: whether it read the memory) */
static bool memory_by_driver(int index, size_t *free_b, size_t *total_b, bool *ok)
{
    pthread_once(&drv_once, find_driver_fns);
    if (!drv.ok || index < 0 || index >= RETAINED_MAX)
        return false;
    *ok = false;
    pthread_mutex_lock(&retained_mu);
    CUcontext ctx = retained[index];
    CUdevice dev;
    if (!ctx && drv.device_get(&dev, index) == CUDA_SUCCESS &&
        drv.retain(&ctx, dev) == CUDA_SUCCESS)
        retained[index] = ctx;
    pthread_mutex_unlock(&retained_mu);
    if (!ctx)
        return true;
    CUcontext popped = NULL;
    if (drv.push(ctx) == CUDA_SUCCESS) {
        *ok = drv.mem_info(free_b, total_b) == CUDA_SUCCESS;
        drv.pop(&popped);
    }
    return true;
}

gen_status gen__gpu_memory(int index, uint64_t *free_bytes, uint64_t *total_bytes)
{
    size_t free_b = 0, total_b = 0;
    bool ok = false;
    if (!memory_by_driver(index, &free_b, &total_b, &ok) || !ok) { /* the runtime's way then */
        int previous = 0;
        cudaGetDevice(&previous);
        cudaError_t err = cudaSetDevice(index);
        if (err == cudaSuccess)
            err = cudaMemGetInfo(&free_b, &total_b);
        cudaSetDevice(previous);
        if (err != cudaSuccess) {
            cudaGetLastError(); /* mem_info runs on the worker too: no error for its next launch */
            return gen__error(GEN_EDEVICE, "cuda:%d: cannot read memory: %s", index,
                              cudaGetErrorString(err));
        }
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
