/* Host weights of one part of an opened model (lib/model): zero-copy views of
 * the part's float tensors under their diffusers/transformers names. */
#ifndef GEN_PIPELINE_WEIGHTS_MODEL_H
#define GEN_PIPELINE_WEIGHTS_MODEL_H

#include <gen/common.h>

#include "model/model.h"
#include "pipeline/weights.h"

/* f32/f16/bf16 tensors are added as views into the model's mapped files (the
 * model must stay open while the map or an upload of it is in use); other
 * element types (int64 position_ids of single-file checkpoints) are skipped;
 * f64 weights are GEN_EUNSUPPORTED naming the tensor. */
gen_status gen__host_weights_from_model(gen__host_weights **out, const gen__model *model,
                                        gen__part part);

#endif
