#include "model/weight_store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

enum entry_state { ENTRY_BUILDING, ENTRY_READY, ENTRY_FAILED };

struct gen__weight_entry {
    gen__weight_entry *next;
    char *model_key;
    char *fingerprint;
    atomic_long refs;          /* holders, and waiters of a build */
    atomic_int state;          /* enum entry_state */
    atomic_bool retired;       /* written under the store write lock */
    void *data;
    uint64_t bytes;
    void (*destroy)(void *data);
    gen_status build_status;   /* when FAILED */
    char build_message[512];
};

struct gen__weight_store {
    pthread_rwlock_t lock;     /* the entry lists */
    pthread_mutex_t build_mu;  /* with build_cv: waiting for a build to finish */
    pthread_cond_t build_cv;
    gen__weight_entry *live;
    gen__weight_entry *retired;
    uint64_t bytes_in_use;     /* ready entries, live and retired; under lock */
    uint64_t retired_bytes;
    uint64_t high_water;
    atomic_ullong builds;
    atomic_ullong shared_hits;
};

gen_status gen__weight_store_create(gen__weight_store **out)
{
    *out = NULL;
    gen__weight_store *s = gen__calloc(1, sizeof(*s));
    if (!s)
        return gen__error(GEN_ENOMEM, "weight store: cannot allocate");
    pthread_rwlock_init(&s->lock, NULL);
    pthread_mutex_init(&s->build_mu, NULL);
    pthread_cond_init(&s->build_cv, NULL);
    *out = s;
    return GEN_OK;
}

static void free_entry(gen__weight_entry *e)
{
    if (e->destroy && e->data)
        e->destroy(e->data);
    gen__free(e->model_key);
    gen__free(e->fingerprint);
    gen__free(e);
}

static void free_list(gen__weight_entry *e)
{
    while (e) {
        gen__weight_entry *next = e->next;
        if (atomic_load(&e->refs) != 0)
            fprintf(stderr, "libgen [error] weight store destroyed while %s still has %ld holders\n",
                    e->model_key, (long)atomic_load(&e->refs));
        free_entry(e);
        e = next;
    }
}

void gen__weight_store_destroy(gen__weight_store *s)
{
    if (!s)
        return;
    free_list(s->live);
    free_list(s->retired);
    pthread_rwlock_destroy(&s->lock);
    pthread_mutex_destroy(&s->build_mu);
    pthread_cond_destroy(&s->build_cv);
    gen__free(s);
}

static gen__weight_entry *find_live(gen__weight_store *s, const char *key, const char *fp)
{
    for (gen__weight_entry *e = s->live; e; e = e->next) {
        if (strcmp(e->model_key, key) == 0 && strcmp(e->fingerprint, fp) == 0)
            return e;
    }
    return NULL;
}

/* Unlink e from whichever list holds it; caller holds the write lock. */
static void unlink_entry(gen__weight_store *s, gen__weight_entry *e)
{
    gen__weight_entry **lists[2] = {&s->live, &s->retired};
    for (int l = 0; l < 2; l++) {
        for (gen__weight_entry **p = lists[l]; *p; p = &(*p)->next) {
            if (*p == e) {
                *p = e->next;
                return;
            }
        }
    }
}

/* Drop one reference with the write lock held; frees at zero. */
static void release_locked(gen__weight_store *s, gen__weight_entry *e)
{
    if (atomic_fetch_sub(&e->refs, 1) != 1)
        return;
    unlink_entry(s, e);
    if (atomic_load(&e->state) == ENTRY_READY) {
        s->bytes_in_use -= e->bytes;
        if (atomic_load(&e->retired))
            s->retired_bytes -= e->bytes;
    }
    free_entry(e);
}

void gen__weight_store_release(gen__weight_store *s, gen__weight_entry *e)
{
    if (!s || !e)
        return;
    pthread_rwlock_wrlock(&s->lock);
    release_locked(s, e);
    pthread_rwlock_unlock(&s->lock);
}

/* Wait until a build finishes; returns the entry's final state. */
static int wait_built(gen__weight_store *s, gen__weight_entry *e)
{
    pthread_mutex_lock(&s->build_mu);
    while (atomic_load(&e->state) == ENTRY_BUILDING)
        pthread_cond_wait(&s->build_cv, &s->build_mu);
    pthread_mutex_unlock(&s->build_mu);
    return atomic_load(&e->state);
}

static gen_status build_entry(gen__weight_store *s, gen__weight_entry *e,
                              gen__weights_build_fn build, void *user)
{
    void *data = NULL;
    uint64_t bytes = 0;
    void (*destroy)(void *) = NULL;
    gen_status st = build(user, &data, &bytes, &destroy);
    atomic_fetch_add(&s->builds, 1);

    pthread_rwlock_wrlock(&s->lock);
    if (st == GEN_OK) {
        e->data = data;
        e->bytes = bytes;
        e->destroy = destroy;
        s->bytes_in_use += bytes;
        if (atomic_load(&e->retired)) /* invalidated while building: count it where it now lives */
            s->retired_bytes += bytes;
        if (s->bytes_in_use > s->high_water)
            s->high_water = s->bytes_in_use;
    } else {
        e->build_status = st;
        snprintf(e->build_message, sizeof(e->build_message), "%s", gen_last_error_message());
        /* Nobody new may find a failed build; waiters keep it alive by reference. */
        unlink_entry(s, e);
        atomic_store(&e->retired, true);
        e->next = s->retired;
        s->retired = e;
    }
    pthread_mutex_lock(&s->build_mu);
    atomic_store(&e->state, st == GEN_OK ? ENTRY_READY : ENTRY_FAILED);
    pthread_cond_broadcast(&s->build_cv);
    pthread_mutex_unlock(&s->build_mu);
    if (st != GEN_OK)
        release_locked(s, e); /* the builder's reference */
    pthread_rwlock_unlock(&s->lock);
    return st;
}

gen_status gen__weight_store_acquire(gen__weight_store *s, const char *key, const char *fp,
                                     gen__weights_build_fn build, void *user,
                                     gen__weight_entry **out)
{
    *out = NULL;
    if (!s || !key || !fp || !build)
        return gen__error(GEN_EINVAL, "weight store: acquire with a NULL argument");
    for (;;) {
        /* Fast path: shared lock, take a reference on a live entry. */
        pthread_rwlock_rdlock(&s->lock);
        gen__weight_entry *e = find_live(s, key, fp);
        if (e)
            atomic_fetch_add(&e->refs, 1);
        pthread_rwlock_unlock(&s->lock);

        if (!e) {
            pthread_rwlock_wrlock(&s->lock);
            e = find_live(s, key, fp);
            if (e) {
                atomic_fetch_add(&e->refs, 1);
                pthread_rwlock_unlock(&s->lock);
            } else {
                gen__weight_entry *fresh = gen__calloc(1, sizeof(*fresh));
                char *k = gen__strdup(key), *f = gen__strdup(fp);
                if (!fresh || !k || !f) {
                    pthread_rwlock_unlock(&s->lock);
                    gen__free(fresh);
                    gen__free(k);
                    gen__free(f);
                    return gen__error(GEN_ENOMEM, "weight store: cannot allocate entry for %s",
                                      key);
                }
                fresh->model_key = k;
                fresh->fingerprint = f;
                atomic_init(&fresh->refs, 1);
                atomic_init(&fresh->state, ENTRY_BUILDING);
                fresh->next = s->live;
                s->live = fresh;
                pthread_rwlock_unlock(&s->lock);
                gen_status st = build_entry(s, fresh, build, user);
                if (st != GEN_OK)
                    return gen__error_prefix("loading %s: ", key);
                *out = fresh;
                return GEN_OK;
            }
        }
        int state = wait_built(s, e);
        if (state == ENTRY_READY) {
            atomic_fetch_add(&s->shared_hits, 1);
            *out = e;
            return GEN_OK;
        }
        /* The build another thread ran failed: report its error. */
        gen_status st = e->build_status;
        char message[512];
        snprintf(message, sizeof(message), "%s", e->build_message);
        gen__weight_store_release(s, e);
        return gen__error(st, "loading %s (by another thread): %s", key, message);
    }
}

unsigned gen__weight_store_invalidate(gen__weight_store *s, const char *key)
{
    size_t klen = strlen(key);
    unsigned count = 0;
    pthread_rwlock_wrlock(&s->lock);
    gen__weight_entry **p = &s->live;
    while (*p) {
        gen__weight_entry *e = *p;
        bool match = strcmp(e->model_key, key) == 0 ||
                     (strncmp(e->model_key, key, klen) == 0 && e->model_key[klen] == ':');
        if (!match) {
            p = &e->next;
            continue;
        }
        *p = e->next;
        atomic_store(&e->retired, true);
        e->next = s->retired;
        s->retired = e;
        if (atomic_load(&e->state) == ENTRY_READY)
            s->retired_bytes += e->bytes;
        count++;
    }
    pthread_rwlock_unlock(&s->lock);
    return count;
}

uint64_t gen__weight_store_bytes_in_use(gen__weight_store *s)
{
    pthread_rwlock_rdlock(&s->lock);
    uint64_t bytes = s->bytes_in_use;
    pthread_rwlock_unlock(&s->lock);
    return bytes;
}

void gen__weight_store_get_stats(gen__weight_store *s, gen__weight_store_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_rwlock_rdlock(&s->lock);
    out->bytes_in_use = s->bytes_in_use;
    out->retired_bytes = s->retired_bytes;
    out->high_water_bytes = s->high_water;
    for (gen__weight_entry *e = s->live; e; e = e->next)
        out->live_entries++;
    for (gen__weight_entry *e = s->retired; e; e = e->next)
        out->retired_entries++;
    pthread_rwlock_unlock(&s->lock);
    out->builds = atomic_load(&s->builds);
    out->shared_hits = atomic_load(&s->shared_hits);
}

void *gen__weight_entry_data(const gen__weight_entry *w)
{
    return w->data;
}

uint64_t gen__weight_entry_bytes(const gen__weight_entry *w)
{
    return w->bytes;
}

const char *gen__weight_entry_key(const gen__weight_entry *w)
{
    return w->model_key;
}

bool gen__weight_entry_retired(const gen__weight_entry *w)
{
    return atomic_load(&w->retired);
}
