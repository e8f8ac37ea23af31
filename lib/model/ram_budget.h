/* The global RAM budget for model weights, shared by every device's cache.
 * In use = the shared store's bytes (each canonical copy once, however many
 * devices hold it, retired entries included until freed) + bytes of models that
 * have no shared copy (counted per holder). */
#ifndef GEN_MODEL_RAM_BUDGET_H
#define GEN_MODEL_RAM_BUDGET_H

#include <stdint.h>

#include "model/weight_store.h"

typedef struct gen__ram_budget gen__ram_budget;

/* Heuristic size of one device's RAM cache when max_cache_ram is not set:
 * 0.5 x RAM - 2 GiB, capped at 32 GiB for a CPU device or at the device's total
 * memory minus working memory for a GPU, and at least 4 GiB. */
uint64_t gen__ram_cache_size_for_device(uint64_t host_ram, int is_gpu, uint64_t device_total,
                                        uint64_t working_mem);

/* The global maximum: max_cache_ram if non-zero, else
 * min(sum of per-device sizes, max(0.5 x RAM - 2 GiB, 4 GiB)). */
uint64_t gen__ram_budget_default_max(uint64_t max_cache_ram, uint64_t sum_per_device,
                                     uint64_t host_ram);

gen_status gen__ram_budget_create(gen__ram_budget **out, uint64_t max_bytes,
                                  gen__weight_store *store);
void gen__ram_budget_destroy(gen__ram_budget *budget);

uint64_t gen__ram_budget_max(const gen__ram_budget *budget);
uint64_t gen__ram_budget_in_use(gen__ram_budget *budget);
/* max - in use; negative when over budget. */
int64_t gen__ram_budget_available(gen__ram_budget *budget);
void gen__ram_budget_add_non_shared(gen__ram_budget *budget, int64_t delta);

#endif
