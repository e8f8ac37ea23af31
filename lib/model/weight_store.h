/* The shared host-weight store: one canonical host copy of each model part per
 * (model key, load-settings fingerprint), shared by every device's cache.
 *
 * acquire() returns the canonical copy and adds a reference, building it on a
 * miss (outside the store lock: reading a model from disk never blocks lookups
 * of other models; concurrent acquirers of the same entry wait for the one
 * build). release() drops a reference and frees the entry at zero.
 * invalidate() retires every entry of a model key: later acquires build a fresh
 * entry and can never adopt the retired one, which still counts against RAM
 * until its last holder releases it.
 *
 * Locking: a readers-writer lock over the entry list (lookups share; insert,
 * retire and release are exclusive), plus a mutex/condition for waiting on a
 * build. Lock order (DESIGN.md): construction rwlock -> per-device cache lock
 * -> this store's lock -> RAM budget lock. */
#ifndef GEN_MODEL_WEIGHT_STORE_H
#define GEN_MODEL_WEIGHT_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include <gen/common.h>

typedef struct gen__weight_store gen__weight_store;
typedef struct gen__weight_entry gen__weight_entry;

/* Loads one model part into host memory: sets *data, its size in bytes and the
 * function that frees it. Runs on the acquiring thread, without store locks. */
typedef gen_status (*gen__weights_build_fn)(void *user, void **data, uint64_t *bytes,
                                            void (**destroy)(void *data));

typedef struct gen__weight_store_stats {
    uint64_t bytes_in_use;      /* live + retired entries */
    uint64_t retired_bytes;     /* of which retired */
    uint64_t high_water_bytes;
    uint32_t live_entries;
    uint32_t retired_entries;
    uint64_t builds;            /* entries built (disk loads) */
    uint64_t shared_hits;       /* acquires served by an existing entry */
} gen__weight_store_stats;

gen_status gen__weight_store_create(gen__weight_store **out);
/* Frees every entry; holders must have released theirs (a leak is logged as a bug). */
void gen__weight_store_destroy(gen__weight_store *store);

gen_status gen__weight_store_acquire(gen__weight_store *store, const char *model_key,
                                     const char *fingerprint, gen__weights_build_fn build,
                                     void *user, gen__weight_entry **out);
void gen__weight_store_release(gen__weight_store *store, gen__weight_entry *weights);

/* Retire every live entry whose model key is `model_key` or starts with
 * "<model_key>:" (its parts). Returns how many entries were retired. */
unsigned gen__weight_store_invalidate(gen__weight_store *store, const char *model_key);

uint64_t gen__weight_store_bytes_in_use(gen__weight_store *store);
void gen__weight_store_get_stats(gen__weight_store *store, gen__weight_store_stats *out);

void *gen__weight_entry_data(const gen__weight_entry *weights);
uint64_t gen__weight_entry_bytes(const gen__weight_entry *weights);
const char *gen__weight_entry_key(const gen__weight_entry *weights);
bool gen__weight_entry_retired(const gen__weight_entry *weights);

#endif
