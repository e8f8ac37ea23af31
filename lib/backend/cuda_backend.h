/* The CUDA backend (lib/backend/cuda): one gen__backend per CUDA device.
 * Declared in every build; a build without CUDA (or a machine without a
 * driver or device) gets GEN_EDEVICE with the reason from create. */
#ifndef GEN_BACKEND_CUDA_BACKEND_H
#define GEN_BACKEND_CUDA_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

typedef struct gen__cuda_backend_options {
    int index;                   /* CUDA device ordinal: the N of cuda:N */
    uint64_t memory_limit;       /* bytes of tensors at most; 0 = no limit but the device's */
    size_t conv_workspace_limit; /* cuDNN workspace bound in bytes; 0 = 256 MiB */
    size_t blas_workspace;       /* cuBLAS workspace in bytes; 0 = 32 MiB */
} gen__cuda_backend_options;

/* Create the backend of CUDA device opts->index ON THE CALLING THREAD, which
 * then owns it (its worker): the stream, the cuBLAS and cuDNN handles are made
 * here with that device current, and every later call sets the device again,
 * so the current device of the thread never matters. compute_dtypes: f32, f16
 * and bf16 (bf16 from compute capability 8.0). GEN_EDEVICE naming the device
 * and the reason when CUDA is not built, no driver or no such device exists;
 * GEN_EDEVICE_OOM when the workspaces do not fit. */
gen_status gen__cuda_backend_create(gen__backend **out, const gen__cuda_backend_options *opts);

/* Caching-allocator details beyond gen__backend_mem_info (zeros for a backend
 * that is not CUDA). */
typedef struct gen__cuda_mem_stats {
    uint64_t held;   /* bytes of live blocks after size-class rounding */
    uint64_t cached; /* bytes of freed blocks kept for reuse */
} gen__cuda_mem_stats;
void gen__cuda_backend_mem_stats(gen__backend *be, gen__cuda_mem_stats *out);

#endif
