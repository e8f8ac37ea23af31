/* Sharing weights between devices without copies.
 *
 * The shared host-weight store (model/weight_store.h) holds one canonical host
 * map per model part and load setting. For CPU devices that map is already in
 * the compute dtype (f32), and every CPU device's "device copy" is a set of
 * views of it: N virtual CPU devices hold the weights once. For GPUs the host
 * map stays a zero-copy view of the mapped file and each GPU gets its own
 * converted upload (gen__device_weights_upload). */
#ifndef GEN_PIPELINE_WEIGHTS_SHARE_H
#define GEN_PIPELINE_WEIGHTS_SHARE_H

#include <stdbool.h>

#include "pipeline/weights.h"

/* A host map with every tensor in `dtype`. Tensors already in `dtype` stay
 * borrowed views of `src`'s data (src's owner reference moves to the result);
 * the others are converted into one owned allocation. *out replaces src: src
 * is destroyed on success (and left untouched on failure). */
gen_status gen__host_weights_to_dtype(gen__host_weights **out, gen__host_weights *src,
                                      gen__dtype dtype);

/* Whether every tensor of `hw` is in `dtype`. */
bool gen__host_weights_all_dtype(const gen__host_weights *hw, gen__dtype dtype);

/* A device copy on a CPU backend that views the host data instead of copying
 * it (0 device bytes). GEN_EINVAL unless `be` computes in the map's dtype and
 * every tensor has it. The map must outlive the result. */
gen_status gen__device_weights_alias(gen__device_weights **out, const gen__host_weights *hw,
                                     gen__backend *be, gen__dtype dtype);

#endif
