/* The CUDA backend (lib/backend/cuda): one gen__backend per CUDA device.
 * Declared in every build; a build without CUDA (or a machine without a
 * driver or device) gets GEN_EDEVICE with the reason from create. */
#ifndef GEN_BACKEND_CUDA_BACKEND_H
#define GEN_BACKEND_CUDA_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

typedef struct gen__cuda_backend_options {
    int index;                   /* CUDA device ordinal: the N of cuda:N */
    uint64_t memory_limit;       /* bytes of tensors at most; 0 = no limit but the device's */
    size_t conv_workspace_limit; /* cuDNN workspace bound in bytes; 0 = 256 MiB */
    size_t blas_workspace;       /* cuBLAS workspace in bytes; 0 = 32 MiB */
} gen__cuda_backend_options;

/* Attention kernels: the simple CUDA-core kernel (every dtype), or the
 * tensor-core one (f16/bf16 on compute capability >= 8.0; f32 always takes the
 * simple one). AUTO, the default, uses the tensor-core kernel for a dtype once
 * an on-device check the first time that dtype asks has found it agreeing with
 * the CUDA-core kernel (a warning and the simple kernel otherwise). The
 * environment's GEN_CUDA_ATTENTION ("simple" or "mma") forces one kernel for
 * new backends. */
#define GEN__CUDA_ATTENTION_AUTO 0
#define GEN__CUDA_ATTENTION_SIMPLE 1
#define GEN__CUDA_ATTENTION_MMA 2

/* Choose the attention kernel of a CUDA backend (tests and benchmarks).
 * Returns false (and changes nothing) when `be` is not a CUDA backend or the
 * device cannot run that kernel. */
bool gen__cuda_backend_set_attention(gen__backend *be, int kernel);

/* The kernel attention in `dtype` takes on `be` now (SIMPLE or MMA; in AUTO
 * this runs the on-device check if that dtype has not been checked yet), and
 * in *check_error (may be NULL) that check's worst relative L2 difference
 * between the two kernels (NaN when no check ran). SIMPLE for a backend that
 * is not CUDA. */
int gen__cuda_backend_attention_kernel(gen__backend *be, gen__dtype dtype, double *check_error);

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
