/* Per-device model caches over the shared host-weight store and the global RAM
 * budget.
 *
 * Each device has one cache. lock() returns a model part resident on that
 * device: a hit, or a miss that acquires the host copy from the shared store
 * (built from disk once for all devices) and makes the device copy, evicting
 * least-recently-used unlocked device copies so that the device keeps its
 * working memory free, and unlocked entries so that RAM stays within budget.
 * Device memory is always read on the cache's own device.
 *
 * Locks, in the only order they are taken (DESIGN.md):
 *   construction rwlock (registry)  read: lock();  write: drop()
 *   -> per-device cache mutex       a peer's mutex is only ever try-locked
 *   -> host-weight store lock
 *   -> RAM budget lock */
#ifndef GEN_MODEL_MODEL_CACHE_H
#define GEN_MODEL_MODEL_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/log.h"
#include "device/device.h"
#include "model/ram_budget.h"
#include "model/weight_store.h"

typedef struct gen__model_caches gen__model_caches;
typedef struct gen__model_cache gen__model_cache;
typedef struct gen__cached_model gen__cached_model;

/* How device copies are made; supplied by the layer that knows tensors. */
typedef struct gen__device_copy_ops {
    /* Make the device copy of host data on `device` (runs on the thread that
     * called lock(), normally that device's worker). upload_arg is the
     * request's. A CPU device may alias the host data and report
     * *device_bytes = 0. GEN_EDEVICE_OOM when it does not fit. */
    gen_status (*upload)(void *ctx, const gen__device *device, void *host_data,
                         uint64_t host_bytes, const void *upload_arg, void **device_data,
                         uint64_t *device_bytes);
    void (*release)(void *ctx, const gen__device *device, void *device_data);
    /* Free/total memory of `device`, read on that device; NULL = gen__device_memory. */
    gen_status (*memory)(void *ctx, const gen__device *device, uint64_t *free_bytes,
                         uint64_t *total_bytes);
    void *ctx;
} gen__device_copy_ops;

typedef struct gen__model_request {
    const char *key;            /* "<model>:<part>", e.g. "sd15:unet" */
    const char *fingerprint;    /* load settings baked into the host copy, e.g. "f32" */
    uint64_t expected_bytes;    /* host size estimate, to make room before loading */
    gen__weights_build_fn build;
    void *build_user;
    /* How to make the device copy (e.g. its dtype), passed to ops.upload; the
     * key must determine it, since a resident copy is reused by key. */
    const void *upload_arg;
    uint64_t working_mem;       /* this job's working memory (raises the default only) */
} gen__model_request;

typedef struct gen__model_cache_stats {
    uint64_t hits;
    uint64_t misses;
    uint64_t device_evictions;  /* device copies dropped to make room */
    uint64_t ram_evictions;     /* entries dropped to stay within the RAM budget */
    uint64_t device_bytes;      /* device copies resident now */
    uint64_t device_high_water;
    uint32_t entries;
    uint32_t locked;
} gen__model_cache_stats;

gen_status gen__model_caches_create(gen__model_caches **out, const gen_device_pool *pool,
                                    uint64_t max_cache_ram, uint64_t working_mem,
                                    const gen__device_copy_ops *ops, const gen__logger *logger);
/* Releases every entry; nothing may be locked. */
void gen__model_caches_destroy(gen__model_caches *caches);

gen__model_cache *gen__model_caches_get(gen__model_caches *caches, size_t pool_index);
gen__weight_store *gen__model_caches_store(gen__model_caches *caches);
gen__ram_budget *gen__model_caches_budget(gen__model_caches *caches);

/* Drop a model (and its parts "<key>:*") from every device and retire its host
 * copy: later locks rebuild from disk. Locked entries are dropped when
 * unlocked. Returns the number of cache entries affected. */
unsigned gen__model_caches_drop(gen__model_caches *caches, const char *model_key);
/* Evict every unlocked entry on every device. */
void gen__model_caches_clear(gen__model_caches *caches);

gen_status gen__model_cache_lock(gen__model_cache *cache, const gen__model_request *request,
                                 gen__cached_model **out);
void gen__model_cache_unlock(gen__model_cache *cache, gen__cached_model *model);

void *gen__cached_model_device_data(const gen__cached_model *model);
void *gen__cached_model_host_data(const gen__cached_model *model);

/* Keys resident on this device, for queue affinity. Never blocks: returns 0
 * when the cache is busy. Copies at most max keys (truncated to key_size). */
size_t gen__model_cache_resident_keys(gen__model_cache *cache, char (*keys)[128], size_t max);

void gen__model_cache_get_stats(gen__model_cache *cache, gen__model_cache_stats *out);
const gen__device *gen__model_cache_device(const gen__model_cache *cache);

#endif
