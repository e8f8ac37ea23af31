/* The generation engine of a context: one backend per device (created on the
 * device's own worker thread at first use), the per-device model caches over
 * the shared host-weight store, and model parts loaded through them.
 *
 * Model parts are cached under "<model path>:<part>" with a fingerprint of
 * the host form: "f32" for CPU devices (converted once, then viewed by every
 * CPU device: N virtual CPU devices hold the weights once) and "file" for
 * GPUs (zero-copy views of the mapped file; each GPU uploads its own copy in
 * its storage dtype). The key does not name that dtype: within an engine it
 * follows from the gpu_dtype option and the model file, so a file replaced in
 * place must be dropped (gen__engine_drop_model) like any other change to it. */
#ifndef GEN_PIPELINE_ENGINE_H
#define GEN_PIPELINE_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "core/log.h"
#include "device/device.h"
#include "model/model.h"
#include "model/model_cache.h"
#include "pipeline/weights.h"

typedef struct gen__engine gen__engine;

/* The gpu_dtype option: what CUDA devices store weights and activations in. */
typedef enum gen__gpu_dtype {
    GEN__GPU_DTYPE_AUTO = 0, /* bf16 for a model whose UNet is stored in bf16, else f16 */
    GEN__GPU_DTYPE_F16,
    GEN__GPU_DTYPE_BF16
} gen__gpu_dtype;

/* "auto", "f16" or "bf16"; GEN_EINVAL naming `name` and the choices otherwise. */
gen_status gen__gpu_dtype_parse(const char *name, const char *text, gen__gpu_dtype *out);

/* The dtype a CUDA device uses for a model whose UNet is stored as
 * `unet_dtype`, given the dtypes its backend computes in (bits 1u << dtype):
 * the choice, or f16 where bf16 is missing (before compute capability 8.0). */
gen__dtype gen__gpu_dtype_for_device(gen__gpu_dtype choice, gen__st_dtype unet_dtype,
                                     uint32_t compute_dtypes);

gen_status gen__engine_create(gen__engine **out, const gen_device_pool *pool,
                              uint64_t max_cache_ram, uint64_t working_mem,
                              gen__gpu_dtype gpu_dtype, const gen__logger *logger);
/* Every part must be released and every worker stopped. NULL accepted. */
void gen__engine_destroy(gen__engine *engine);

gen__model_caches *gen__engine_caches(gen__engine *engine);
const gen__logger *gen__engine_logger(const gen__engine *engine);

/* The backend of device `index`, created by the first caller (which must be
 * the thread that will use it: CUDA state belongs to its thread). */
gen_status gen__engine_backend(gen__engine *engine, size_t index, gen__backend **out);

/* One generation at a time per device: held by workers and by synchronous
 * gen_generate calls around a whole job (a backend is not thread-safe). */
void gen__engine_device_lock(gen__engine *engine, size_t index);
void gen__engine_device_unlock(gen__engine *engine, size_t index);

/* The dtype device `index` stores `model`'s weights and activations in: f32 on
 * CPU; on CUDA f16 or bf16 as the gpu_dtype option says, f16 where the device
 * cannot compute in bf16 (before compute capability 8.0). Call it after
 * gen__engine_backend for that device. */
gen__dtype gen__engine_weight_dtype(gen__engine *engine, size_t index, const gen__model *model);

/* A model part resident on device `index`, locked until released. `model` is
 * an open handle of the same path (configs); the cache opens its own handle
 * when it has to read the weights. *loaded tells whether this call read them
 * (a cache miss), *seconds how long the lock took. */
typedef struct gen__engine_part {
    gen__model_cache *cache;
    gen__cached_model *entry;
} gen__engine_part;

gen_status gen__engine_lock_part(gen__engine *engine, size_t index, const gen__model *model,
                                 gen__part part, gen__engine_part *out, bool *loaded,
                                 double *seconds);
const gen__device_weights *gen__engine_part_weights(const gen__engine_part *p);
void gen__engine_release_part(gen__engine_part *p);

/* Drop every cached part of the model at `path` on every device. */
unsigned gen__engine_drop_model(gen__engine *engine, const char *path);

#endif
