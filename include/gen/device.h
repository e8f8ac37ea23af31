/* libgen — the device pool: the devices generation runs on.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef GEN_DEVICE_H
#define GEN_DEVICE_H

#include <gen/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The resolved `generation_devices`: an ordered list of devices, one worker each.
 * Immutable after creation; every function below may be called from any thread. */
typedef struct gen_device_pool gen_device_pool;

typedef enum gen_device_kind {
    GEN_DEVICE_CPU = 0,
    GEN_DEVICE_CUDA = 1
} gen_device_kind;

/* Resolve a generation_devices text ("auto", "cuda:0,cuda:2", "cuda", "cpu:0,cpu:1")
 * against this machine. "auto" is every CUDA device, or one CPU device when
 * there is none. Errors name the entry: syntax (GEN_EINVAL), a CUDA index at or
 * past the device count (GEN_EINVAL), CUDA asked for but unavailable (GEN_EDEVICE). */
GEN_API gen_status gen_device_pool_create(gen_device_pool **out, const char *generation_devices);
GEN_API void gen_device_pool_destroy(gen_device_pool *pool);

GEN_API size_t gen_device_pool_count(const gen_device_pool *pool);

/* Per device, by position 0..count-1 in the pool. Strings are owned by the pool.
 * An out-of-range index gives GEN_DEVICE_CPU / -1 / NULL / 0. */
GEN_API gen_device_kind gen_device_pool_kind(const gen_device_pool *pool, size_t index);
/* CUDA device index or virtual CPU device number. */
GEN_API int gen_device_pool_ordinal(const gen_device_pool *pool, size_t index);
/* Normalised id: "cuda:0", "cpu:1". */
GEN_API const char *gen_device_pool_id(const gen_device_pool *pool, size_t index);
/* Hardware name: "NVIDIA H200", "CPU". */
GEN_API const char *gen_device_pool_name(const gen_device_pool *pool, size_t index);
/* Name made unique among identical devices, numbered over all devices of the
 * machine in index order: "NVIDIA H200 #2". A device with a unique name keeps it. */
GEN_API const char *gen_device_pool_label(const gen_device_pool *pool, size_t index);
/* Compute threads a CPU device uses (virtual CPU devices split the cores); 0 for CUDA. */
GEN_API int gen_device_pool_cpu_threads(const gen_device_pool *pool, size_t index);
/* Compute capability major*10+minor for CUDA devices; 0 for CPU. */
GEN_API int gen_device_pool_compute_capability(const gen_device_pool *pool, size_t index);

/* Memory of one device, read now on that device (host RAM for CPU devices). */
GEN_API gen_status gen_device_pool_memory(const gen_device_pool *pool, size_t index,
                                          uint64_t *free_bytes, uint64_t *total_bytes);

#ifdef __cplusplus
}
#endif

#endif /* GEN_DEVICE_H */
