/* One resolved device of the pool, and the thread-local session device: the
 * device a worker thread runs on, set once when the worker starts. Every
 * allocation a worker makes goes to its session device. */
#ifndef GEN_DEVICE_DEVICE_H
#define GEN_DEVICE_DEVICE_H

#include <gen/device.h>

#include "device/device_spec.h"

typedef struct gen__device {
    size_t pool_index;        /* position in the pool */
    gen_device_kind kind;
    int ordinal;              /* CUDA index or virtual CPU number */
    int cpu_threads;          /* CPU devices: compute threads; CUDA: 0 */
    int compute_capability;   /* CUDA: major*10+minor */
    uint64_t total_memory;    /* at resolution time */
    char id[32];              /* "cuda:0" */
    char name[256];           /* "NVIDIA H200" */
    char label[288];          /* "NVIDIA H200 #2" */
} gen__device;

struct gen_device_pool {
    size_t count;
    gen__device devices[GEN__MAX_DEVICES];
};

/* Device at `index`, or NULL. */
const gen__device *gen__device_pool_at(const gen_device_pool *pool, size_t index);

/* Read free/total memory of `device` on that device. */
gen_status gen__device_memory(const gen__device *device, uint64_t *free_bytes,
                              uint64_t *total_bytes);

/* Test hook: pretend the machine has these CUDA devices (NULL restores the real probe). */
struct gen__gpu_props;
void gen__device_pool_set_fake_gpus(const struct gen__gpu_props *props, int count);

/* Thread-local session device. */
void gen__session_device_set(const gen__device *device);
const gen__device *gen__session_device_get(void);
void gen__session_device_clear(void);

/* Host facts used by CPU devices and RAM budgets. */
int gen__host_cpu_count(void);
uint64_t gen__host_total_ram(void);
uint64_t gen__host_available_ram(void);

#endif
