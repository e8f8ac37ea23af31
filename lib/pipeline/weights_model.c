/* Host weights from an opened model (see weights_model.h). */
#include "pipeline/weights_model.h"

#include "core/error.h"

gen_status gen__host_weights_from_model(gen__host_weights **out, const gen__model *model,
                                        gen__part part)
{
    *out = NULL;
    gen__host_weights *hw;
    gen_status st = gen__host_weights_create(&hw, gen__part_name(part));
    if (st != GEN_OK)
        return st;
    size_t n = gen__model_tensor_count(model, part);
    for (size_t i = 0; st == GEN_OK && i < n; i++) {
        const gen__st_view *v = gen__model_tensor_at(model, part, i);
        gen__dtype dtype;
        switch (v->dtype) {
        case GEN__ST_F32: dtype = GEN__F32; break;
        case GEN__ST_F16: dtype = GEN__F16; break;
        case GEN__ST_BF16: dtype = GEN__BF16; break;
        case GEN__ST_F64:
            st = gen__error(GEN_EUNSUPPORTED, "%s: %s weight '%s' is f64 (f32, f16, bf16 supported)",
                            gen__model_path(model), gen__part_name(part), v->name);
            continue;
        default:
            continue; /* integer buffers such as position_ids are not weights */
        }
        if (v->ndim == 0 || v->numel == 0)
            continue; /* scalars and empty tensors are not weights of these nets */
        if (v->ndim > GEN__TENSOR_MAX_DIMS) {
            st = gen__error(GEN_EUNSUPPORTED, "%s: %s weight '%s' has %d dimensions",
                            gen__model_path(model), gen__part_name(part), v->name, v->ndim);
            continue;
        }
        st = gen__host_weights_add(hw, v->name, dtype, v->ndim, v->shape, v->data);
    }
    if (st != GEN_OK) {
        gen__host_weights_destroy(hw);
        return st;
    }
    *out = hw;
    return GEN_OK;
}
