#include "model/model_cache.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/parse.h"

struct gen__cached_model {
    gen__cached_model *next;
    char *key;
    char *fingerprint;
    gen__weight_entry *host;  /* a reference on the shared host copy */
    void *device_data;        /* NULL while only the host copy is held */
    uint64_t device_bytes;
    unsigned locks;
    uint64_t last_used;       /* cache tick; LRU order */
    bool stale;               /* dropped while locked: remove at unlock */
};

struct gen__model_cache {
    gen__model_caches *owner;
    const gen__device *device;
    pthread_mutex_t mu;
    gen__cached_model *entries;
    uint64_t tick;
    gen__model_cache_stats stats;
};

struct gen__model_caches {
    pthread_rwlock_t construction; /* write-preferring: drop() must not starve */
    gen__weight_store *store;
    gen__ram_budget *budget;
    gen__device_copy_ops ops;
    uint64_t working_mem;
    const gen__logger *logger;
    size_t count;
    gen__model_cache *caches;
};

/* --- entries (cache mutex held) ---------------------------------------------------------- */

static void drop_device_copy(gen__model_cache *c, gen__cached_model *m)
{
    if (!m->device_data)
        return;
    c->owner->ops.release(c->owner->ops.ctx, c->device, m->device_data);
    c->stats.device_bytes -= m->device_bytes;
    m->device_data = NULL;
    m->device_bytes = 0;
}

static void remove_entry(gen__model_cache *c, gen__cached_model *m)
{
    for (gen__cached_model **p = &c->entries; *p; p = &(*p)->next) {
        if (*p == m) {
            *p = m->next;
            break;
        }
    }
    drop_device_copy(c, m);
    gen__weight_store_release(c->owner->store, m->host);
    gen__free(m->key);
    gen__free(m->fingerprint);
    gen__free(m);
}

static gen__cached_model *lru_unlocked(gen__model_cache *c, bool with_device_copy)
{
    gen__cached_model *best = NULL;
    for (gen__cached_model *m = c->entries; m; m = m->next) {
        if (m->locks || (with_device_copy && !m->device_data))
            continue;
        if (!best || m->last_used < best->last_used)
            best = m;
    }
    return best;
}

/* Evict unlocked entries LRU-first until `need` bytes fit in the RAM budget,
 * re-checking after each eviction: evicting a model another device still
 * holds frees nothing. Returns whether it fits. */
static bool evict_for_ram(gen__model_cache *c, uint64_t need)
{
    gen__ram_budget *budget = c->owner->budget;
    while (gen__ram_budget_available(budget) < (int64_t)need) {
        gen__cached_model *victim = lru_unlocked(c, false);
        if (!victim)
            return false;
        GEN__LOG_DEBUG(c->owner->logger, "%s: evicting %s to stay within the RAM budget",
                       c->device->id, victim->key);
        remove_entry(c, victim);
        c->stats.ram_evictions++;
    }
    return true;
}

static gen_status read_memory(gen__model_cache *c, uint64_t *free_b, uint64_t *total_b)
{
    if (c->owner->ops.memory)
        return c->owner->ops.memory(c->owner->ops.ctx, c->device, free_b, total_b);
    return gen__device_memory(c->device, free_b, total_b);
}

/* Evict unlocked device copies LRU-first until `need` bytes plus the working
 * memory are free on this cache's own device. */
static gen_status make_device_room(gen__model_cache *c, uint64_t need, uint64_t working)
{
    for (;;) {
        uint64_t free_b = 0, total_b = 0;
        gen_status st = read_memory(c, &free_b, &total_b);
        if (st != GEN_OK)
            return st;
        if (free_b >= need + working)
            return GEN_OK;
        gen__cached_model *victim = lru_unlocked(c, true);
        if (!victim)
            return GEN_OK; /* nothing left to evict: let the upload decide */
        GEN__LOG_DEBUG(c->owner->logger, "%s: offloading %s to keep working memory free",
                       c->device->id, victim->key);
        drop_device_copy(c, victim);
        c->stats.device_evictions++;
    }
}

static gen__cached_model *find(gen__model_cache *c, const char *key, const char *fp)
{
    for (gen__cached_model *m = c->entries; m; m = m->next) {
        if (!m->stale && strcmp(m->key, key) == 0 && strcmp(m->fingerprint, fp) == 0)
            return m;
    }
    return NULL;
}

/* Ask other devices' caches to give back RAM. Their locks are only tried, so
 * two caches making room at once never wait on each other. */
static void evict_on_peers(gen__model_cache *self, uint64_t need)
{
    gen__model_caches *all = self->owner;
    for (size_t i = 0; i < all->count; i++) {
        gen__model_cache *peer = &all->caches[i];
        if (peer == self || gen__ram_budget_available(all->budget) >= (int64_t)need)
            continue;
        if (pthread_mutex_trylock(&peer->mu) != 0)
            continue;
        evict_for_ram(peer, need);
        pthread_mutex_unlock(&peer->mu);
    }
}

static gen_status upload(gen__model_cache *c, gen__cached_model *m, uint64_t working,
                         const void *upload_arg)
{
    uint64_t host_bytes = gen__weight_entry_bytes(m->host);
    void *host_data = gen__weight_entry_data(m->host);
    gen_status st = GEN_OK;
    if (c->device->kind != GEN_DEVICE_CPU)
        st = make_device_room(c, host_bytes, working);
    if (st == GEN_OK)
        st = c->owner->ops.upload(c->owner->ops.ctx, c->device, host_data, host_bytes,
                                  upload_arg, &m->device_data, &m->device_bytes);
    if (st == GEN_EDEVICE_OOM) {
        /* One retry after giving back every unlocked device copy. */
        gen__cached_model *victim;
        while ((victim = lru_unlocked(c, true)) != NULL) {
            drop_device_copy(c, victim);
            c->stats.device_evictions++;
        }
        st = c->owner->ops.upload(c->owner->ops.ctx, c->device, host_data, host_bytes,
                                  upload_arg, &m->device_data, &m->device_bytes);
    }
    if (st != GEN_OK) {
        m->device_data = NULL;
        m->device_bytes = 0;
        return gen__error_prefix("%s: loading %s onto the device: ", c->device->id, m->key);
    }
    c->stats.device_bytes += m->device_bytes;
    if (c->stats.device_bytes > c->stats.device_high_water)
        c->stats.device_high_water = c->stats.device_bytes;
    return GEN_OK;
}

/* --- public (internal) API ---------------------------------------------------------------- */

gen_status gen__model_cache_lock(gen__model_cache *c, const gen__model_request *req,
                                 gen__cached_model **out)
{
    *out = NULL;
    if (!c || !req || !req->key || !req->fingerprint || !req->build)
        return gen__error(GEN_EINVAL, "model cache: lock with a NULL argument");
    gen__model_caches *all = c->owner;
    uint64_t working = req->working_mem > all->working_mem ? req->working_mem : all->working_mem;

    pthread_rwlock_rdlock(&all->construction);
    pthread_mutex_lock(&c->mu);
    gen_status st = GEN_OK;
    gen__cached_model *m = find(c, req->key, req->fingerprint);
    if (m) {
        c->stats.hits++;
    } else {
        c->stats.misses++;
        if (!evict_for_ram(c, req->expected_bytes)) {
            evict_on_peers(c, req->expected_bytes);
            if (gen__ram_budget_available(all->budget) < (int64_t)req->expected_bytes) {
                char need[32], max[32];
                gen__format_size(req->expected_bytes, need, sizeof(need));
                gen__format_size(gen__ram_budget_max(all->budget), max, sizeof(max));
                GEN__LOG_WARN(all->logger,
                              "%s: loading %s (%s) exceeds the RAM budget (%s) while other "
                              "models are in use; raise max_cache_ram if this repeats",
                              c->device->id, req->key, need, max);
            }
        }
        m = gen__calloc(1, sizeof(*m));
        char *key = gen__strdup(req->key), *fp = gen__strdup(req->fingerprint);
        if (!m || !key || !fp) {
            gen__free(m);
            gen__free(key);
            gen__free(fp);
            st = gen__error(GEN_ENOMEM, "model cache: cannot allocate entry for %s", req->key);
            goto out;
        }
        m->key = key;
        m->fingerprint = fp;
        st = gen__weight_store_acquire(all->store, req->key, req->fingerprint, req->build,
                                       req->build_user, &m->host);
        if (st != GEN_OK) {
            gen__free(m->key);
            gen__free(m->fingerprint);
            gen__free(m);
            goto out;
        }
        m->next = c->entries;
        c->entries = m;
    }
    if (!m->device_data) {
        st = upload(c, m, working, req->upload_arg);
        if (st != GEN_OK)
            goto out;
    }
    m->locks++;
    m->last_used = ++c->tick;
    *out = m;
out:
    pthread_mutex_unlock(&c->mu);
    pthread_rwlock_unlock(&all->construction);
    return st;
}

void gen__model_cache_unlock(gen__model_cache *c, gen__cached_model *m)
{
    if (!c || !m)
        return;
    pthread_mutex_lock(&c->mu);
    if (m->locks > 0)
        m->locks--;
    if (m->locks == 0 && m->stale)
        remove_entry(c, m);
    else if (m->locks == 0 && gen__ram_budget_available(c->owner->budget) < 0)
        evict_for_ram(c, 0); /* over budget while this was locked: catch up now */
    pthread_mutex_unlock(&c->mu);
}

void *gen__cached_model_device_data(const gen__cached_model *m)
{
    return m->device_data;
}

void *gen__cached_model_host_data(const gen__cached_model *m)
{
    return gen__weight_entry_data(m->host);
}

size_t gen__model_cache_resident_keys(gen__model_cache *c, char (*keys)[128], size_t max)
{
    if (pthread_mutex_trylock(&c->mu) != 0)
        return 0;
    size_t n = 0;
    for (gen__cached_model *m = c->entries; m && n < max; m = m->next) {
        if (m->device_data && !m->stale)
            snprintf(keys[n++], 128, "%s", m->key);
    }
    pthread_mutex_unlock(&c->mu);
    return n;
}

void gen__model_cache_get_stats(gen__model_cache *c, gen__model_cache_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->stats;
    out->entries = 0;
    out->locked = 0;
    for (gen__cached_model *m = c->entries; m; m = m->next) {
        out->entries++;
        out->locked += m->locks > 0;
    }
    pthread_mutex_unlock(&c->mu);
}

const gen__device *gen__model_cache_device(const gen__model_cache *c)
{
    return c->device;
}

/* --- registry ------------------------------------------------------------------------------ */

gen_status gen__model_caches_create(gen__model_caches **out, const gen_device_pool *pool,
                                    uint64_t max_cache_ram, uint64_t working_mem,
                                    const gen__device_copy_ops *ops, const gen__logger *logger)
{
    *out = NULL;
    size_t n = gen_device_pool_count(pool);
    if (n == 0 || !ops || !ops->upload || !ops->release)
        return gen__error(GEN_EINVAL, "model caches: no devices or no copy operations");
    gen__model_caches *all = gen__calloc(1, sizeof(*all));
    gen__model_cache *caches = gen__calloc(n, sizeof(*caches));
    if (!all || !caches) {
        gen__free(all);
        gen__free(caches);
        return gen__error(GEN_ENOMEM, "model caches: cannot allocate %zu caches", n);
    }
    uint64_t host_ram = gen__host_total_ram(), sum = 0;
    for (size_t i = 0; i < n; i++) {
        const gen__device *d = gen__device_pool_at(pool, i);
        sum += gen__ram_cache_size_for_device(host_ram, d->kind == GEN_DEVICE_CUDA,
                                              d->total_memory, working_mem);
    }
    gen_status st = gen__weight_store_create(&all->store);
    if (st == GEN_OK)
        st = gen__ram_budget_create(&all->budget,
                                    gen__ram_budget_default_max(max_cache_ram, sum, host_ram),
                                    all->store);
    if (st != GEN_OK) {
        gen__weight_store_destroy(all->store);
        gen__free(all);
        gen__free(caches);
        return st;
    }
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&all->construction, &attr);
    pthread_rwlockattr_destroy(&attr);
    all->ops = *ops;
    all->working_mem = working_mem;
    all->logger = logger;
    all->count = n;
    all->caches = caches;
    for (size_t i = 0; i < n; i++) {
        caches[i].owner = all;
        caches[i].device = gen__device_pool_at(pool, i);
        pthread_mutex_init(&caches[i].mu, NULL);
    }
    char max_text[32];
    gen__format_size(gen__ram_budget_max(all->budget), max_text, sizeof(max_text));
    GEN__LOG_INFO(logger, "model caches: %zu device%s, RAM budget %s", n, n == 1 ? "" : "s",
                  max_text);
    *out = all;
    return GEN_OK;
}

void gen__model_caches_destroy(gen__model_caches *all)
{
    if (!all)
        return;
    for (size_t i = 0; i < all->count; i++) {
        gen__model_cache *c = &all->caches[i];
        while (c->entries)
            remove_entry(c, c->entries);
        pthread_mutex_destroy(&c->mu);
    }
    gen__ram_budget_destroy(all->budget);
    gen__weight_store_destroy(all->store);
    pthread_rwlock_destroy(&all->construction);
    gen__free(all->caches);
    gen__free(all);
}

gen__model_cache *gen__model_caches_get(gen__model_caches *all, size_t pool_index)
{
    return all && pool_index < all->count ? &all->caches[pool_index] : NULL;
}

gen__weight_store *gen__model_caches_store(gen__model_caches *all)
{
    return all->store;
}

gen__ram_budget *gen__model_caches_budget(gen__model_caches *all)
{
    return all->budget;
}

static bool key_matches(const char *entry_key, const char *model_key)
{
    size_t n = strlen(model_key);
    return strcmp(entry_key, model_key) == 0 ||
           (strncmp(entry_key, model_key, n) == 0 && entry_key[n] == ':');
}

unsigned gen__model_caches_drop(gen__model_caches *all, const char *model_key)
{
    unsigned affected = 0;
    pthread_rwlock_wrlock(&all->construction);
    gen__weight_store_invalidate(all->store, model_key);
    for (size_t i = 0; i < all->count; i++) {
        gen__model_cache *c = &all->caches[i];
        pthread_mutex_lock(&c->mu);
        gen__cached_model *m = c->entries;
        while (m) {
            gen__cached_model *next = m->next;
            if (key_matches(m->key, model_key)) {
                affected++;
                if (m->locks)
                    m->stale = true;
                else
                    remove_entry(c, m);
            }
            m = next;
        }
        pthread_mutex_unlock(&c->mu);
    }
    pthread_rwlock_unlock(&all->construction);
    return affected;
}

void gen__model_caches_clear(gen__model_caches *all)
{
    for (size_t i = 0; i < all->count; i++) {
        gen__model_cache *c = &all->caches[i];
        pthread_mutex_lock(&c->mu);
        gen__cached_model *victim;
        while ((victim = lru_unlocked(c, false)) != NULL)
            remove_entry(c, victim);
        pthread_mutex_unlock(&c->mu);
    }
}
