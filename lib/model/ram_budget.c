#include "model/ram_budget.h"

#include <pthread.h>

#include "core/alloc.h"
#include "core/error.h"

#define GIB (1ull << 30)

struct gen__ram_budget {
    uint64_t max;
    gen__weight_store *store;
    pthread_mutex_t mu;  /* last in the lock order */
    int64_t non_shared;
};

uint64_t gen__ram_cache_size_for_device(uint64_t host_ram, int is_gpu, uint64_t device_total,
                                        uint64_t working_mem)
{
    uint64_t half = host_ram / 2;
    uint64_t size = half > 2 * GIB ? half - 2 * GIB : 0;
    uint64_t cap = 32 * GIB;
    if (is_gpu)
        cap = device_total > working_mem ? device_total - working_mem : 0;
    if (size > cap)
        size = cap;
    if (size < 4 * GIB)
        size = 4 * GIB;
    return size;
}

uint64_t gen__ram_budget_default_max(uint64_t max_cache_ram, uint64_t sum_per_device,
                                     uint64_t host_ram)
{
    if (max_cache_ram)
        return max_cache_ram;
    uint64_t half = host_ram / 2;
    uint64_t headroom = half > 2 * GIB ? half - 2 * GIB : 0;
    if (headroom < 4 * GIB)
        headroom = 4 * GIB;
    return sum_per_device < headroom ? sum_per_device : headroom;
}

gen_status gen__ram_budget_create(gen__ram_budget **out, uint64_t max_bytes,
                                  gen__weight_store *store)
{
    *out = NULL;
    gen__ram_budget *b = gen__calloc(1, sizeof(*b));
    if (!b)
        return gen__error(GEN_ENOMEM, "RAM budget: cannot allocate");
    b->max = max_bytes;
    b->store = store;
    pthread_mutex_init(&b->mu, NULL);
    *out = b;
    return GEN_OK;
}

void gen__ram_budget_destroy(gen__ram_budget *b)
{
    if (!b)
        return;
    pthread_mutex_destroy(&b->mu);
    gen__free(b);
}

uint64_t gen__ram_budget_max(const gen__ram_budget *b)
{
    return b->max;
}

uint64_t gen__ram_budget_in_use(gen__ram_budget *b)
{
    uint64_t shared = gen__weight_store_bytes_in_use(b->store);
    pthread_mutex_lock(&b->mu);
    int64_t non_shared = b->non_shared;
    pthread_mutex_unlock(&b->mu);
    return shared + (uint64_t)(non_shared > 0 ? non_shared : 0);
}

int64_t gen__ram_budget_available(gen__ram_budget *b)
{
    return (int64_t)b->max - (int64_t)gen__ram_budget_in_use(b);
}

void gen__ram_budget_add_non_shared(gen__ram_budget *b, int64_t delta)
{
    pthread_mutex_lock(&b->mu);
    b->non_shared += delta;
    pthread_mutex_unlock(&b->mu);
}
