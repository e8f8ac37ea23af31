/* Discovery of CUDA devices without depending on a driver being present: on a
 * machine without one (or a build without CUDA) the count is 0 and the reason is
 * reported, never a crash. Implemented by backend/cuda/cuda_probe.c when CUDA is
 * built, else by backend/gpu_probe_none.c. */
#ifndef GEN_BACKEND_GPU_PROBE_H
#define GEN_BACKEND_GPU_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include <gen/common.h>

typedef struct gen__gpu_props {
    char name[256];
    uint64_t total_memory;
    int compute_capability; /* major*10 + minor */
    int multiprocessors;
} gen__gpu_props;

/* Number of CUDA devices (0 when unavailable; *why is then a static reason). */
int gen__gpu_count(const char **why);

/* The calling thread's current CUDA device (0 when unknown). */
int gen__gpu_current(void);

/* Properties of CUDA device `index` (no CUDA context is created). */
gen_status gen__gpu_props_get(int index, gen__gpu_props *out);

/* Free and total memory of CUDA device `index`, read in that device's primary
 * context (retained for the rest of the process, as using the device would)
 * pushed onto the calling thread and popped again; the thread's CUDA state is
 * left as it was. Without the driver entry points: by switching the thread's
 * current device to it and back. */
gen_status gen__gpu_memory(int index, uint64_t *free_bytes, uint64_t *total_bytes);

#endif
