/* Shared host-weight store, RAM budget and per-device model caches, with fake
 * payloads (the tensor layer is not involved): one host copy for all devices,
 * the stale-weights scenario, LRU eviction for device memory and for the RAM
 * budget, build failures, and races between threads. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/gpu_probe.h"
#include "core/alloc.h"
#include "core/error.h"
#include "model/model_cache.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)

/* --- fake model parts ---------------------------------------------------------------------- */

struct fake_part {
    uint64_t bytes;
    unsigned char pattern; /* the "weights": every byte is this value */
    atomic_int builds;
    int fail;              /* build returns GEN_EIO */
};

struct payload {
    uint64_t bytes;
    unsigned char *data;
};

static void destroy_payload(void *p)
{
    struct payload *pl = p;
    free(pl->data);
    free(pl);
}

static gen_status build_fake(void *user, void **data, uint64_t *bytes, void (**destroy)(void *))
{
    struct fake_part *part = user;
    atomic_fetch_add(&part->builds, 1);
    if (part->fail)
        return gen__error(GEN_EIO, "fake.safetensors: read failed");
    struct payload *pl = malloc(sizeof(*pl));
    pl->bytes = part->bytes;
    pl->data = malloc(4096); /* the real size only matters for accounting */
    memset(pl->data, part->pattern, 4096);
    *data = pl;
    *bytes = part->bytes;
    *destroy = destroy_payload;
    return GEN_OK;
}

/* --- fake devices: memory accounted per device ---------------------------------------------- */

struct fake_devices {
    pthread_mutex_t mu;
    uint64_t total[4];
    uint64_t used[4];
    int uploads;
};

static struct fake_devices devs = {PTHREAD_MUTEX_INITIALIZER, {0}, {0}, 0};

struct device_copy {
    struct payload *host;
    uint64_t bytes;
};

static gen_status fake_upload(void *ctx, const gen__device *d, void *host_data, uint64_t host_bytes,
                              const void *upload_arg, void **device_data, uint64_t *device_bytes)
{
    (void)ctx;
    assert_non_null(upload_arg); /* the request's: req() passes its part */
    if (d->kind == GEN_DEVICE_CPU) { /* alias the host copy: zero-copy */
        *device_data = host_data;
        *device_bytes = 0;
        return GEN_OK;
    }
    pthread_mutex_lock(&devs.mu);
    size_t i = d->pool_index;
    if (devs.used[i] + host_bytes > devs.total[i]) {
        pthread_mutex_unlock(&devs.mu);
        return gen__error(GEN_EDEVICE_OOM, "%s: out of memory", d->id);
    }
    devs.used[i] += host_bytes;
    devs.uploads++;
    pthread_mutex_unlock(&devs.mu);
    struct device_copy *copy = malloc(sizeof(*copy));
    copy->host = host_data;
    copy->bytes = host_bytes;
    *device_data = copy;
    *device_bytes = host_bytes;
    return GEN_OK;
}

static void fake_release(void *ctx, const gen__device *d, void *device_data)
{
    (void)ctx;
    if (d->kind == GEN_DEVICE_CPU)
        return;
    struct device_copy *copy = device_data;
    pthread_mutex_lock(&devs.mu);
    devs.used[d->pool_index] -= copy->bytes;
    pthread_mutex_unlock(&devs.mu);
    free(copy);
}

static gen_status fake_memory(void *ctx, const gen__device *d, uint64_t *free_b, uint64_t *total_b)
{
    (void)ctx;
    pthread_mutex_lock(&devs.mu);
    *total_b = devs.total[d->pool_index];
    *free_b = devs.total[d->pool_index] - devs.used[d->pool_index];
    pthread_mutex_unlock(&devs.mu);
    return GEN_OK;
}

static const gen__device_copy_ops ops = {fake_upload, fake_release, fake_memory, NULL};
static const gen__logger quiet = {NULL, NULL, GEN_LOG_ERROR};

static gen_device_pool *gpu_pool(int n, uint64_t total_each)
{
    static gen__gpu_props props[4];
    for (int i = 0; i < 4; i++) {
        snprintf(props[i].name, sizeof(props[i].name), "Fake GPU");
        props[i].total_memory = total_each;
        devs.total[i] = total_each;
        devs.used[i] = 0;
    }
    gen__device_pool_set_fake_gpus(props, n);
    gen_device_pool *pool = NULL;
    assert_int_equal(gen_device_pool_create(&pool, "auto"), GEN_OK);
    gen__device_pool_set_fake_gpus(NULL, 0);
    return pool;
}

static gen__model_request req(const char *key, struct fake_part *part)
{
    gen__model_request r = {.key = key,
                            .fingerprint = "f16",
                            .expected_bytes = part->bytes,
                            .build = build_fake,
                            .build_user = part,
                            .upload_arg = part};
    return r;
}

static unsigned char byte_of(const gen__cached_model *m)
{
    const struct payload *pl = gen__cached_model_host_data(m);
    return pl->data[0];
}

/* --- tests --------------------------------------------------------------------------------- */

static void test_budget_arithmetic(void **state)
{
    (void)state;
    /* The reference's example: a 96 GiB machine without max_cache_ram -> 46 GiB. */
    uint64_t per = gen__ram_cache_size_for_device(96 * GIB, 1, 141 * GIB, 3 * GIB);
    assert_int_equal(per, 46 * GIB);
    assert_int_equal(gen__ram_budget_default_max(0, 8 * per, 96 * GIB), 46 * GIB);
    /* Small machines get the 4 GiB floor; a set max_cache_ram wins. */
    assert_int_equal(gen__ram_cache_size_for_device(8 * GIB, 0, 0, 3 * GIB), 4 * GIB);
    assert_int_equal(gen__ram_budget_default_max(0, 4 * GIB, 8 * GIB), 4 * GIB);
    assert_int_equal(gen__ram_budget_default_max(10 * GIB, 400 * GIB, 96 * GIB), 10 * GIB);
    /* CPU device: capped at 32 GiB; GPU: at its memory minus working memory. */
    assert_int_equal(gen__ram_cache_size_for_device(512 * GIB, 0, 0, 3 * GIB), 32 * GIB);
    assert_int_equal(gen__ram_cache_size_for_device(512 * GIB, 1, 24 * GIB, 3 * GIB), 21 * GIB);
}

static void test_two_devices_share_one_host_copy(void **state)
{
    (void)state;
    gen_device_pool *pool = gpu_pool(2, 8 * GIB);
    gen__model_caches *all = NULL;
    assert_int_equal(gen__model_caches_create(&all, pool, 16 * GIB, 1 * GIB, &ops, &quiet), GEN_OK);
    struct fake_part unet = {.bytes = 1700 * MIB, .pattern = 1};
    gen__model_request r = req("sd15:unet", &unet);
    gen__cached_model *m0 = NULL, *m1 = NULL;
    assert_int_equal(gen__model_cache_lock(gen__model_caches_get(all, 0), &r, &m0), GEN_OK);
    assert_int_equal(gen__model_cache_lock(gen__model_caches_get(all, 1), &r, &m1), GEN_OK);
    assert_int_equal(atomic_load(&unet.builds), 1);                     /* read from disk once */
    assert_ptr_equal(gen__cached_model_host_data(m0), gen__cached_model_host_data(m1));
    assert_ptr_not_equal(gen__cached_model_device_data(m0), gen__cached_model_device_data(m1));
    assert_int_equal(gen__ram_budget_in_use(gen__model_caches_budget(all)), 1700 * MIB); /* once */
    gen__model_cache_stats s;
    gen__model_cache_get_stats(gen__model_caches_get(all, 1), &s);
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.device_bytes, 1700 * MIB);
    assert_int_equal(s.locked, 1);
    /* A second lock on device 0 is a hit. */
    gen__cached_model *again = NULL;
    assert_int_equal(gen__model_cache_lock(gen__model_caches_get(all, 0), &r, &again), GEN_OK);
    assert_ptr_equal(again, m0);
    gen__model_cache_unlock(gen__model_caches_get(all, 0), again);
    gen__model_cache_unlock(gen__model_caches_get(all, 0), m0);
    gen__model_cache_unlock(gen__model_caches_get(all, 1), m1);
    gen__model_cache_get_stats(gen__model_caches_get(all, 0), &s);
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.locked, 0);
    gen__model_caches_destroy(all);
    gen_device_pool_destroy(pool);
}

/* The bug a reviewer found in the reference implementation: after a setting
 * change dropped a model, a second device adopted the pre-change weights. */
static void test_stale_weights_never_adopted(void **state)
{
    (void)state;
    gen_device_pool *pool = gpu_pool(2, 8 * GIB);
    gen__model_caches *all = NULL;
    assert_int_equal(gen__model_caches_create(&all, pool, 16 * GIB, 1 * GIB, &ops, &quiet), GEN_OK);
    gen__model_cache *dev0 = gen__model_caches_get(all, 0), *dev1 = gen__model_caches_get(all, 1);

    struct fake_part v1 = {.bytes = 100 * MIB, .pattern = 0x11};
    gen__model_request r1 = req("sd15:unet", &v1);
    gen__cached_model *old = NULL;
    assert_int_equal(gen__model_cache_lock(dev0, &r1, &old), GEN_OK); /* device 0 is mid-job */
    assert_int_equal(byte_of(old), 0x11);

    /* The model changes on disk / in settings: drop it everywhere. */
    assert_int_equal(gen__model_caches_drop(all, "sd15"), 1);

    /* Device 1 now loads it: it must build fresh weights, never adopt the old ones. */
    struct fake_part v2 = {.bytes = 100 * MIB, .pattern = 0x22};
    gen__model_request r2 = req("sd15:unet", &v2);
    gen__cached_model *fresh = NULL;
    assert_int_equal(gen__model_cache_lock(dev1, &r2, &fresh), GEN_OK);
    assert_int_equal(byte_of(fresh), 0x22);
    assert_int_equal(atomic_load(&v2.builds), 1);
    assert_ptr_not_equal(gen__cached_model_host_data(fresh), gen__cached_model_host_data(old));

    /* The retired copy still counts against RAM while device 0 holds it. */
    gen__weight_store_stats ss;
    gen__weight_store_get_stats(gen__model_caches_store(all), &ss);
    assert_int_equal(ss.bytes_in_use, 200 * MIB);
    assert_int_equal(ss.retired_bytes, 100 * MIB);
    assert_int_equal(ss.retired_entries, 1);

    /* Device 0 locking again also gets the new weights (its old entry is stale). */
    gen__cached_model *dev0_new = NULL;
    assert_int_equal(gen__model_cache_lock(dev0, &r2, &dev0_new), GEN_OK);
    assert_int_equal(byte_of(dev0_new), 0x22);
    assert_int_equal(atomic_load(&v2.builds), 1); /* shared with device 1 */

    /* The old copy is freed when its last holder lets go. */
    gen__model_cache_unlock(dev0, old);
    gen__weight_store_get_stats(gen__model_caches_store(all), &ss);
    assert_int_equal(ss.retired_entries, 0);
    assert_int_equal(ss.bytes_in_use, 100 * MIB);
    gen__model_cache_unlock(dev0, dev0_new);
    gen__model_cache_unlock(dev1, fresh);
    gen__model_caches_destroy(all);
    gen_device_pool_destroy(pool);
}

static void test_device_lru_keeps_working_memory(void **state)
{
    (void)state;
    gen_device_pool *pool = gpu_pool(1, 10 * GIB);
    gen__model_caches *all = NULL;
    assert_int_equal(gen__model_caches_create(&all, pool, 100 * GIB, 3 * GIB, &ops, &quiet), GEN_OK);
    gen__model_cache *c = gen__model_caches_get(all, 0);
    struct fake_part a = {.bytes = 3 * GIB, .pattern = 'a'}, b = {.bytes = 3 * GIB, .pattern = 'b'},
                     d = {.bytes = 3 * GIB, .pattern = 'd'};
    gen__model_request ra = req("a:unet", &a), rb = req("b:unet", &b), rd = req("d:unet", &d);
    gen__cached_model *ma, *mb, *md;
    assert_int_equal(gen__model_cache_lock(c, &ra, &ma), GEN_OK);
    gen__model_cache_unlock(c, ma);
    assert_int_equal(gen__model_cache_lock(c, &rb, &mb), GEN_OK);
    gen__model_cache_unlock(c, mb);
    /* 6 GiB used of 10: loading d (3 GiB) + 3 GiB working memory needs 6 free -> evict a (LRU). */
    assert_int_equal(gen__model_cache_lock(c, &rd, &md), GEN_OK);
    gen__model_cache_stats s;
    gen__model_cache_get_stats(c, &s);
    assert_int_equal(s.device_evictions, 1);
    assert_null(gen__cached_model_device_data(ma)); /* host copy kept, device copy gone */
    assert_non_null(gen__cached_model_device_data(mb));
    /* A job raising its working memory evicts more (b), never the locked d. */
    gen__model_request ra_big = ra;
    ra_big.working_mem = 4 * GIB;
    assert_int_equal(gen__model_cache_lock(c, &ra_big, &ma), GEN_OK);
    assert_null(gen__cached_model_device_data(mb));
    assert_non_null(gen__cached_model_device_data(md));
    assert_int_equal(atomic_load(&a.builds), 1); /* re-upload from RAM, not from disk */
    gen__model_cache_get_stats(c, &s);
    assert_int_equal(s.device_high_water, 6 * GIB);
    gen__model_cache_unlock(c, ma);
    gen__model_cache_unlock(c, md);
    gen__model_caches_destroy(all);
    gen_device_pool_destroy(pool);
}

static void test_device_oom_is_reported(void **state)
{
    (void)state;
    gen_device_pool *pool = gpu_pool(1, 2 * GIB);
    gen__model_caches *all = NULL;
    assert_int_equal(gen__model_caches_create(&all, pool, 100 * GIB, 1 * GIB, &ops, &quiet), GEN_OK);
    struct fake_part huge = {.bytes = 5 * GIB, .pattern = 'h'};
    gen__model_request r = req("huge:unet", &huge);
    gen__cached_model *m = (gen__cached_model *)1;
    assert_int_equal(gen__model_cache_lock(gen__model_caches_get(all, 0), &r, &m), GEN_EDEVICE_OOM);
    assert_null(m);
    assert_non_null(strstr(gen_last_error_message(), "cuda:0"));
    assert_non_null(strstr(gen_last_error_message(), "huge:unet"));
    gen__model_caches_destroy(all);
    gen_device_pool_destroy(pool);
}

static void test_ram_budget_eviction(void **state)
{
    (void)state;
    gen_device_pool *pool = gpu_pool(2, 100 * GIB);
    gen__model_caches *all = NULL;
    assert_int_equal(gen__model_caches_create(&all, pool, 5 * GIB, 1 * GIB, &ops, &quiet), GEN_OK);
    gen__model_cache *c0 = gen__model_caches_get(all, 0), *c1 = gen__model_caches_get(all, 1);
    struct fake_part a = {.bytes = 2 * GIB, .pattern = 'a'}, b = {.bytes = 2 * GIB, .pattern = 'b'},
                     d = {.bytes = 2 * GIB, .pattern = 'd'};
    gen__model_request ra = req("a:unet", &a), rb = req("b:unet", &b), rd = req("d:unet", &d);
    gen__cached_model *m;
    gen__cached_model *a1;
    assert_int_equal(gen__model_cache_lock(c0, &ra, &m), GEN_OK);
    gen__model_cache_unlock(c0, m);
    assert_int_equal(gen__model_cache_lock(c1, &ra, &a1), GEN_OK); /* device 1 holds a, locked */
    assert_int_equal(gen__model_cache_lock(c0, &rb, &m), GEN_OK);
    gen__model_cache_unlock(c0, m);
    /* 4 GiB in use of 5; d needs 2: device 0 evicts a first (LRU), which frees
     * nothing because device 1 still holds it, so it re-checks and evicts b. */
    assert_int_equal(gen__model_cache_lock(c0, &rd, &m), GEN_OK);
    gen__model_cache_stats s;
    gen__model_cache_get_stats(c0, &s);
    assert_int_equal(s.ram_evictions, 2);
    assert_int_equal(gen__ram_budget_in_use(gen__model_caches_budget(all)), 4 * GIB);
    gen__model_cache_unlock(c0, m);
    gen__model_cache_unlock(c1, a1);
    gen__model_caches_destroy(all);
    gen_device_pool_destroy(pool);
}

static void test_build_failure(void **state)
{
    (void)state;
    gen_device_pool *pool = gpu_pool(1, 10 * GIB);
    gen__model_caches *all = NULL;
    assert_int_equal(gen__model_caches_create(&all, pool, 10 * GIB, 1 * GIB, &ops, &quiet), GEN_OK);
    struct fake_part bad = {.bytes = GIB, .pattern = 'x', .fail = 1};
    gen__model_request r = req("bad:unet", &bad);
    gen__cached_model *m = (gen__cached_model *)1;
    assert_int_equal(gen__model_cache_lock(gen__model_caches_get(all, 0), &r, &m), GEN_EIO);
    assert_null(m);
    assert_non_null(strstr(gen_last_error_message(), "fake.safetensors: read failed"));
    gen__weight_store_stats ss;
    gen__weight_store_get_stats(gen__model_caches_store(all), &ss);
    assert_int_equal(ss.live_entries + ss.retired_entries, 0);
    assert_int_equal(ss.bytes_in_use, 0);
    /* A later attempt builds again (a failure is not cached). */
    bad.fail = 0;
    assert_int_equal(gen__model_cache_lock(gen__model_caches_get(all, 0), &r, &m), GEN_OK);
    gen__model_cache_unlock(gen__model_caches_get(all, 0), m);
    gen__model_caches_destroy(all);
    gen_device_pool_destroy(pool);
}

/* --- concurrency -------------------------------------------------------------------------- */

struct race {
    gen__weight_store *store;
    struct fake_part *part;
    gen__weight_entry *got;
    gen_status st;
    pthread_barrier_t *barrier;
};

static void *acquire_thread(void *p)
{
    struct race *r = p;
    pthread_barrier_wait(r->barrier);
    r->st = gen__weight_store_acquire(r->store, "m:unet", "f32", build_fake, r->part, &r->got);
    return NULL;
}

static void test_concurrent_acquire_builds_once(void **state)
{
    (void)state;
    for (int fail = 0; fail <= 1; fail++) {
        gen__weight_store *store = NULL;
        assert_int_equal(gen__weight_store_create(&store), GEN_OK);
        struct fake_part part = {.bytes = 64 * MIB, .pattern = 7, .fail = fail};
        pthread_barrier_t barrier;
        pthread_barrier_init(&barrier, NULL, 8);
        struct race r[8];
        pthread_t t[8];
        for (int i = 0; i < 8; i++) {
            r[i] = (struct race){store, &part, NULL, GEN_OK, &barrier};
            pthread_create(&t[i], NULL, acquire_thread, &r[i]);
        }
        for (int i = 0; i < 8; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&barrier);
        for (int i = 0; i < 8; i++) {
            assert_int_equal(r[i].st, fail ? GEN_EIO : GEN_OK);
            if (!fail)
                assert_ptr_equal(r[i].got, r[0].got);
        }
        if (!fail)
            assert_int_equal(atomic_load(&part.builds), 1);
        assert_int_equal(gen__weight_store_bytes_in_use(store), fail ? 0 : 64 * MIB);
        for (int i = 0; i < 8; i++)
            gen__weight_store_release(store, r[i].got);
        assert_int_equal(gen__weight_store_bytes_in_use(store), 0);
        gen__weight_store_destroy(store);
    }
}

struct worker_arg {
    gen__model_caches *all;
    int device;
    unsigned seed;
    struct fake_part *parts;
    int errors;
};

static void *churn_thread(void *p)
{
    struct worker_arg *w = p;
    static const char *const keys[] = {"m0:unet", "m1:unet", "m2:unet", "m3:unet", "m4:unet"};
    gen__model_cache *c = gen__model_caches_get(w->all, (size_t)w->device);
    for (int i = 0; i < 300; i++) {
        unsigned k = (unsigned)rand_r(&w->seed) % 5;
        if (rand_r(&w->seed) % 40 == 0) {
            char model[8];
            snprintf(model, sizeof(model), "m%u", k); /* drop a whole model, all devices */
            gen__model_caches_drop(w->all, model);
            continue;
        }
        gen__model_request r = req(keys[k], &w->parts[k]);
        gen__cached_model *m = NULL;
        gen_status st = gen__model_cache_lock(c, &r, &m);
        if (st != GEN_OK) {
            w->errors++;
            continue;
        }
        if (byte_of(m) != w->parts[k].pattern)
            w->errors++;
        gen__model_cache_unlock(c, m);
    }
    return NULL;
}

static void test_eviction_races_four_threads(void **state)
{
    (void)state;
    gen_device_pool *pool = gpu_pool(4, 4 * GIB);
    gen__model_caches *all = NULL;
    /* Budget for about two models: eviction, peer eviction and drops all race. */
    assert_int_equal(gen__model_caches_create(&all, pool, 5 * GIB, 1 * GIB, &ops, &quiet), GEN_OK);
    struct fake_part parts[5];
    for (int i = 0; i < 5; i++)
        parts[i] = (struct fake_part){.bytes = 2 * GIB, .pattern = (unsigned char)(0x30 + i)};
    struct worker_arg w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker_arg){all, i, 1234u + (unsigned)i, parts, 0};
        pthread_create(&t[i], NULL, churn_thread, &w[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++)
        assert_int_equal(w[i].errors, 0);
    /* Everything unlocked: the budget can be met again, and clear empties the caches. */
    gen__model_caches_clear(all);
    assert_int_equal(gen__ram_budget_in_use(gen__model_caches_budget(all)), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(devs.used[i], 0);
    gen__model_caches_destroy(all);
    gen_device_pool_destroy(pool);
}

static void test_cpu_device_copy_aliases_host(void **state)
{
    (void)state;
    gen_device_pool *pool = NULL;
    assert_int_equal(gen_device_pool_create(&pool, "cpu:0,cpu:1"), GEN_OK);
    gen__model_caches *all = NULL;
    assert_int_equal(gen__model_caches_create(&all, pool, 8 * GIB, 1 * GIB, &ops, &quiet), GEN_OK);
    struct fake_part p = {.bytes = 500 * MIB, .pattern = 9};
    gen__model_request r = req("cpu:unet", &p);
    gen__cached_model *m0, *m1;
    assert_int_equal(gen__model_cache_lock(gen__model_caches_get(all, 0), &r, &m0), GEN_OK);
    assert_int_equal(gen__model_cache_lock(gen__model_caches_get(all, 1), &r, &m1), GEN_OK);
    assert_ptr_equal(gen__cached_model_device_data(m0), gen__cached_model_host_data(m0));
    assert_ptr_equal(gen__cached_model_device_data(m1), gen__cached_model_host_data(m0));
    char keys[4][128];
    assert_int_equal(gen__model_cache_resident_keys(gen__model_caches_get(all, 1), keys, 4), 1);
    assert_string_equal(keys[0], "cpu:unet");
    gen__model_cache_unlock(gen__model_caches_get(all, 0), m0);
    gen__model_cache_unlock(gen__model_caches_get(all, 1), m1);
    gen__model_caches_destroy(all);
    gen_device_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_arithmetic),
        cmocka_unit_test(test_two_devices_share_one_host_copy),
        cmocka_unit_test(test_stale_weights_never_adopted),
        cmocka_unit_test(test_device_lru_keeps_working_memory),
        cmocka_unit_test(test_device_oom_is_reported),
        cmocka_unit_test(test_ram_budget_eviction),
        cmocka_unit_test(test_build_failure),
        cmocka_unit_test(test_concurrent_acquire_builds_once),
        cmocka_unit_test(test_eviction_races_four_threads),
        cmocka_unit_test(test_cpu_device_copy_aliases_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
