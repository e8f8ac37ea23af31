#include "pipeline/engine.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "backend/cuda_backend.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/time.h"
#include "pipeline/weights_model.h"
#include "pipeline/weights_share.h"

struct gen__engine {
    const gen_device_pool *pool;
    const gen__logger *logger;
    gen__gpu_dtype gpu_dtype;
    gen__model_caches *caches;
    pthread_mutex_t mu; /* backends[] */
    gen__backend *backends[GEN__MAX_DEVICES];
    pthread_mutex_t device_mu[GEN__MAX_DEVICES]; /* one job at a time per device */
};

/* --- device copies for the caches ------------------------------------------------------------ */

/* upload_arg: the gen__dtype of the copy (gen__engine_weight_dtype). */
static gen_status copy_upload(void *ctx, const gen__device *device, void *host_data,
                              uint64_t host_bytes, const void *upload_arg, void **device_data,
                              uint64_t *device_bytes)
{
    (void)host_bytes;
    gen__engine *e = ctx;
    gen__backend *be = NULL;
    gen_status st = gen__engine_backend(e, device->pool_index, &be);
    if (st != GEN_OK)
        return st;
    const gen__host_weights *hw = host_data;
    gen__dtype dtype = *(const gen__dtype *)upload_arg;
    gen__device_weights *dw = NULL;
    if (device->kind == GEN_DEVICE_CPU && gen__host_weights_all_dtype(hw, dtype))
        st = gen__device_weights_alias(&dw, hw, be, dtype); /* shared, zero-copy */
    else
        st = gen__device_weights_upload(&dw, hw, be, dtype);
    if (st != GEN_OK)
        return st;
    *device_data = dw;
    *device_bytes = device->kind == GEN_DEVICE_CPU && gen__host_weights_all_dtype(hw, dtype)
                        ? 0
                        : gen__device_weights_bytes(dw);
    return GEN_OK;
}

static void copy_release(void *ctx, const gen__device *device, void *device_data)
{
    (void)ctx;
    (void)device;
    gen__device_weights_release(device_data);
}

/* --- host copies for the store --------------------------------------------------------------- */

typedef struct part_request {
    const char *path;
    gen__part part;
    bool to_f32; /* CPU fingerprint: convert once, share the result */
    const gen__logger *logger;
} part_request;

/* Bytes of the map's tensors in their own dtypes (what the host copy holds). */
static uint64_t host_bytes_of(const gen__host_weights *hw)
{
    uint64_t bytes = 0;
    for (size_t i = 0; i < gen__host_weights_count(hw); i++) {
        const gen__host_tensor *t = gen__host_weights_at(hw, i);
        uint64_t n = 1;
        for (int d = 0; d < t->ndim; d++)
            n *= (uint64_t)t->shape[d];
        bytes += n * gen__dtype_size(t->dtype);
    }
    return bytes;
}

static void close_model(void *p)
{
    gen__model_close(p);
}

static void destroy_host(void *p)
{
    gen__host_weights_destroy(p);
}

static gen_status build_part(void *user, void **data, uint64_t *bytes, void (**destroy)(void *))
{
    part_request *r = user;
    gen__model *model = NULL;
    gen_status st = gen__model_open(&model, r->path, NULL);
    if (st != GEN_OK)
        return st;
    gen__host_weights *hw = NULL;
    st = gen__host_weights_from_model(&hw, model, r->part);
    if (st != GEN_OK) {
        gen__model_close(model);
        return st;
    }
    gen__host_weights_set_owner(hw, model, close_model); /* the views need the mapping */
    if (r->to_f32) {
        gen__host_weights *converted = NULL;
        st = gen__host_weights_to_dtype(&converted, hw, GEN__F32);
        if (st != GEN_OK) {
            gen__host_weights_destroy(hw);
            return st;
        }
        hw = converted;
    }
    *data = hw;
    *bytes = host_bytes_of(hw);
    *destroy = destroy_host;
    return GEN_OK;
}

/* --- engine ------------------------------------------------------------------------------------ */

gen_status gen__gpu_dtype_parse(const char *name, const char *text, gen__gpu_dtype *out)
{
    static const char *const names[] = {"auto", "f16", "bf16"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(text, names[i]) == 0) {
            *out = (gen__gpu_dtype)i;
            return GEN_OK;
        }
    }
    return gen__error(GEN_EINVAL, "%s: \"%s\" is not a GPU dtype (use auto, f16 or bf16)", name,
                      text);
}

gen__dtype gen__gpu_dtype_for_device(gen__gpu_dtype choice, gen__st_dtype unet_dtype,
                                     uint32_t compute_dtypes)
{
    gen__dtype dtype = GEN__F16;
    if (choice == GEN__GPU_DTYPE_BF16)
        dtype = GEN__BF16;
    else if (choice == GEN__GPU_DTYPE_AUTO && unet_dtype == GEN__ST_BF16)
        dtype = GEN__BF16; /* a bf16 model keeps bf16's range; f16 has 3 more mantissa bits */
    if (!(compute_dtypes & (1u << dtype)))
        dtype = GEN__F16; /* bf16 needs compute capability 8.0; f16 runs on every GPU */
    return dtype;
}

gen_status gen__engine_create(gen__engine **out, const gen_device_pool *pool,
                              uint64_t max_cache_ram, uint64_t working_mem,
                              gen__gpu_dtype gpu_dtype, const gen__logger *logger)
{
    *out = NULL;
    gen__engine *e = gen__calloc(1, sizeof(*e));
    if (!e)
        return gen__error(GEN_ENOMEM, "engine: cannot allocate");
    e->pool = pool;
    e->logger = logger;
    e->gpu_dtype = gpu_dtype;
    pthread_mutex_init(&e->mu, NULL);
    for (size_t i = 0; i < GEN__MAX_DEVICES; i++)
        pthread_mutex_init(&e->device_mu[i], NULL);
    gen__device_copy_ops ops = {copy_upload, copy_release, NULL, e};
    gen_status st = gen__model_caches_create(&e->caches, pool, max_cache_ram, working_mem, &ops,
                                             logger);
    if (st != GEN_OK) {
        pthread_mutex_destroy(&e->mu);
        for (size_t i = 0; i < GEN__MAX_DEVICES; i++)
            pthread_mutex_destroy(&e->device_mu[i]);
        gen__free(e);
        return st;
    }
    *out = e;
    return GEN_OK;
}

void gen__engine_destroy(gen__engine *e)
{
    if (!e)
        return;
    gen__model_caches_destroy(e->caches); /* device copies first: they live on the backends */
    for (size_t i = 0; i < GEN__MAX_DEVICES; i++)
        gen__backend_destroy(e->backends[i]);
    pthread_mutex_destroy(&e->mu);
    for (size_t i = 0; i < GEN__MAX_DEVICES; i++)
        pthread_mutex_destroy(&e->device_mu[i]);
    gen__free(e);
}

void gen__engine_device_lock(gen__engine *e, size_t index)
{
    pthread_mutex_lock(&e->device_mu[index]);
}

void gen__engine_device_unlock(gen__engine *e, size_t index)
{
    pthread_mutex_unlock(&e->device_mu[index]);
}

gen__model_caches *gen__engine_caches(gen__engine *e)
{
    return e->caches;
}

const gen__logger *gen__engine_logger(const gen__engine *e)
{
    return e->logger;
}

gen__dtype gen__engine_weight_dtype(gen__engine *e, size_t index, const gen__model *model)
{
    const gen__device *d = gen__device_pool_at(e->pool, index);
    if (!d || d->kind != GEN_DEVICE_CUDA)
        return GEN__F32;
    pthread_mutex_lock(&e->mu);
    const gen__backend *be = e->backends[index];
    /* no backend yet (callers make it first): assume f16 and bf16 */
    uint32_t computes = be ? be->compute_dtypes : (1u << GEN__F16) | (1u << GEN__BF16);
    pthread_mutex_unlock(&e->mu);
    return gen__gpu_dtype_for_device(e->gpu_dtype, gen__model_part_dtype(model, GEN__PART_UNET),
                                     computes);
}

gen_status gen__engine_backend(gen__engine *e, size_t index, gen__backend **out)
{
    *out = NULL;
    const gen__device *d = gen__device_pool_at(e->pool, index);
    if (!d)
        return gen__error(GEN_EINVAL, "engine: no device %zu", index);
    pthread_mutex_lock(&e->mu);
    gen_status st = GEN_OK;
    if (!e->backends[index]) {
        if (d->kind == GEN_DEVICE_CPU) {
            gen__cpu_backend_options o = {.index = d->ordinal, .threads = d->cpu_threads};
            st = gen__cpu_backend_create(&e->backends[index], &o);
        } else {
            gen__cuda_backend_options o = {.index = d->ordinal};
            st = gen__cuda_backend_create(&e->backends[index], &o);
        }
        if (st == GEN_OK)
            GEN__LOG_DEBUG(e->logger, "%s: backend ready", d->id);
    }
    *out = e->backends[index];
    pthread_mutex_unlock(&e->mu);
    return st;
}

gen_status gen__engine_lock_part(gen__engine *e, size_t index, const gen__model *model,
                                 gen__part part, gen__engine_part *out, bool *loaded,
                                 double *seconds)
{
    memset(out, 0, sizeof(*out));
    const gen__device *d = gen__device_pool_at(e->pool, index);
    gen__model_cache *cache = gen__model_caches_get(e->caches, index);
    if (!d || !cache)
        return gen__error(GEN_EINVAL, "engine: no device %zu", index);
    gen__backend *be = NULL;
    gen_status st = gen__engine_backend(e, index, &be); /* on this (the device's) thread */
    if (st != GEN_OK)
        return st;
    char key[4200];
    snprintf(key, sizeof(key), "%s:%s", gen__model_path(model), gen__part_name(part));
    part_request r = {gen__model_path(model), part, d->kind == GEN_DEVICE_CPU, e->logger};
    gen__dtype dtype = gen__engine_weight_dtype(e, index, model);
    gen__model_request req = {
        .key = key,
        .fingerprint = r.to_f32 ? "f32" : "file",
        .expected_bytes = gen__model_part_bytes(model, part),
        .build = build_part,
        .build_user = &r,
        .upload_arg = &dtype,
        .working_mem = 0,
    };
    gen__model_cache_stats before, after;
    gen__model_cache_get_stats(cache, &before);
    int64_t t0 = gen__monotonic_ns();
    st = gen__model_cache_lock(cache, &req, &out->entry);
    *seconds = (double)(gen__monotonic_ns() - t0) / 1e9;
    if (st != GEN_OK)
        return st;
    gen__model_cache_get_stats(cache, &after);
    *loaded = after.misses > before.misses;
    out->cache = cache;
    return GEN_OK;
}

const gen__device_weights *gen__engine_part_weights(const gen__engine_part *p)
{
    return gen__cached_model_device_data(p->entry);
}

void gen__engine_release_part(gen__engine_part *p)
{
    if (p->cache && p->entry)
        gen__model_cache_unlock(p->cache, p->entry);
    p->cache = NULL;
    p->entry = NULL;
}

unsigned gen__engine_drop_model(gen__engine *e, const char *path)
{
    return gen__model_caches_drop(e->caches, path);
}
