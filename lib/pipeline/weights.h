/* Weights of one model part (text encoder, UNet, VAE) as the networks see them.
 *
 * Two objects, so a per-device model cache can share the first and own the second:
 * - gen__host_weights: name -> host tensor (dtype, shape, pointer). The data is
 *   borrowed (typically a zero-copy view into an mmap'd safetensors file) and
 *   kept alive by an optional owner reference released with the map. Names are
 *   the part's diffusers names ("down_blocks.0.resnets.0.conv1.weight").
 * - gen__device_weights: a device copy of a host map on one backend, every
 *   tensor converted to one compute dtype. Made by gen__device_weights_upload,
 *   freed by gen__device_weights_release (the cache's upload/release pair).
 *
 * The networks (text_encoder.h, unet.h, vae.h) bind views of the device copy
 * with gen__weights_get, which names the missing or mis-shaped tensor. */
#ifndef GEN_PIPELINE_WEIGHTS_H
#define GEN_PIPELINE_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gen/common.h>

#include "backend/backend.h"
#include "tensor/tensor.h"

typedef struct gen__host_tensor {
    char *name;                             /* owned copy */
    gen__dtype dtype;
    int ndim;
    int64_t shape[GEN__TENSOR_MAX_DIMS];
    const void *data;                       /* borrowed, gen__tensor_nbytes-sized */
} gen__host_tensor;

typedef struct gen__host_weights gen__host_weights;

/* An empty map; `label` ("unet", "vae", "text_encoder") prefixes messages. */
gen_status gen__host_weights_create(gen__host_weights **out, const char *label);

/* Destroy the map (NULL accepted); releases the owner reference, if any. */
void gen__host_weights_destroy(gen__host_weights *hw);

/* Keep `owner` alive as long as the map: release(owner) runs at destroy. */
void gen__host_weights_set_owner(gen__host_weights *hw, void *owner, void (*release)(void *));

/* Add a tensor whose data (dense row-major, `dtype`) is borrowed. Names must be
 * unique (GEN_EINVAL naming the duplicate); shapes are checked like
 * gen__tensor_describe. */
gen_status gen__host_weights_add(gen__host_weights *hw, const char *name, gen__dtype dtype,
                                 int ndim, const int64_t *shape, const void *data);

const char *gen__host_weights_label(const gen__host_weights *hw);
size_t gen__host_weights_count(const gen__host_weights *hw);
const gen__host_tensor *gen__host_weights_at(const gen__host_weights *hw, size_t index);
/* NULL when absent (no error recorded). */
const gen__host_tensor *gen__host_weights_find(const gen__host_weights *hw, const char *name);
/* Sum of the tensors' bytes in `dtype` (the size of a device copy). */
uint64_t gen__host_weights_bytes(const gen__host_weights *hw, gen__dtype dtype);

typedef struct gen__device_weights gen__device_weights;

/* Copy every tensor of `hw` onto `be`, converted to `dtype` (which `be` must
 * compute in). GEN_EDEVICE_OOM / GEN_ENOMEM / GEN_EUNSUPPORTED with a message
 * naming the part and tensor; nothing is left allocated on failure. The copy does
 * not refer to `hw` afterwards. */
gen_status gen__device_weights_upload(gen__device_weights **out, const gen__host_weights *hw,
                                      gen__backend *be, gen__dtype dtype);

/* Free the device copy (NULL accepted). Views taken from it become invalid. */
void gen__device_weights_release(gen__device_weights *dw);

gen__backend *gen__device_weights_backend(const gen__device_weights *dw);
gen__dtype gen__device_weights_dtype(const gen__device_weights *dw);
const char *gen__device_weights_label(const gen__device_weights *dw);
uint64_t gen__device_weights_bytes(const gen__device_weights *dw);

/* A view of tensor `name`, checked against `shape` (ndim dims; a dimension of -1
 * matches anything). GEN_ENOTFOUND "unet: weight 'x' is missing" or GEN_EINVAL
 * "unet: weight 'x' is f32[3,3], expected [4,4]". */
gen_status gen__weights_get(const gen__device_weights *dw, const char *name, int ndim,
                            const int64_t *shape, gen__tensor *out);

/* Like gen__weights_get but an absent tensor is not an error: *found = false,
 * out left empty. A present tensor of the wrong shape is still an error. */
gen_status gen__weights_get_opt(const gen__device_weights *dw, const char *name, int ndim,
                                const int64_t *shape, gen__tensor *out, bool *found);

/* Whether the device copy holds `name`. */
bool gen__weights_has(const gen__device_weights *dw, const char *name);

#endif
