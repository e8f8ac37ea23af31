/* Fork-join pool: the caller publishes a job, wakes the helpers, takes chunks
 * itself, then waits for the helpers to finish theirs. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "backend/cpu/pool.h"
#include "core/alloc.h"
#include "core/error.h"

struct gen__pool {
    int threads;
    pthread_t *helpers;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_cond_t done;
    uint64_t generation; /* bumped per job */
    int busy;            /* helpers still working on the current job */
    bool stop;
    /* current job */
    gen__pool_fn fn;
    void *arg;
    int64_t n, chunk, chunks;
    atomic_llong next;
};

struct helper_arg {
    gen__pool *pool;
    int index;
};

static void take_chunks(gen__pool *p, int thread)
{
    for (;;) {
        long long c = atomic_fetch_add(&p->next, 1);
        if (c >= p->chunks)
            break;
        int64_t b = (int64_t)c * p->chunk;
        int64_t e = b + p->chunk < p->n ? b + p->chunk : p->n;
        p->fn(p->arg, b, e, thread);
    }
}

static void *helper_main(void *raw)
{
    struct helper_arg ha = *(struct helper_arg *)raw;
    gen__free(raw);
    gen__pool *p = ha.pool;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->generation == seen)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        take_chunks(p, ha.index);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

gen_status gen__pool_create(gen__pool **out, int threads)
{
    *out = NULL;
    if (threads < 1)
        return gen__error(GEN_EINVAL, "cpu pool: %d threads", threads);
    gen__pool *p = gen__calloc(1, sizeof(*p));
    if (!p)
        return gen__error(GEN_ENOMEM, "cpu pool: out of memory");
    p->threads = threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->next, 0);
    if (threads > 1) {
        p->helpers = gen__calloc((size_t)threads - 1, sizeof(pthread_t));
        if (!p->helpers) {
            p->threads = 1;
            gen__pool_destroy(p);
            return gen__error(GEN_ENOMEM, "cpu pool: out of memory");
        }
        for (int i = 1; i < threads; i++) {
            struct helper_arg *ha = gen__malloc(sizeof(*ha));
            if (ha) {
                ha->pool = p;
                ha->index = i;
            }
            int rc = ha ? pthread_create(&p->helpers[i - 1], NULL, helper_main, ha) : -1;
            if (rc != 0) {
                gen__free(ha);
                p->threads = i; /* destroy joins the ones started */
                gen__pool_destroy(p);
                return gen__error(GEN_ENOMEM, "cpu pool: cannot start thread %d of %d", i, threads);
            }
        }
    }
    *out = p;
    return GEN_OK;
}

void gen__pool_destroy(gen__pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->threads; i++)
        pthread_join(p->helpers[i - 1], NULL);
    gen__free(p->helpers);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    gen__free(p);
}

int gen__pool_threads(const gen__pool *p)
{
    return p->threads;
}

void gen__pool_run(gen__pool *p, int64_t n, int64_t grain, gen__pool_fn fn, void *arg)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    /* about 4 chunks per thread for balance, never below the grain */
    int64_t chunk = (n + (int64_t)p->threads * 4 - 1) / ((int64_t)p->threads * 4);
    if (chunk < grain)
        chunk = grain;
    int64_t chunks = (n + chunk - 1) / chunk;
    if (p->threads == 1 || chunks == 1) {
        for (int64_t b = 0; b < n; b += chunk)
            fn(arg, b, b + chunk < n ? b + chunk : n, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->chunk = chunk;
    p->chunks = chunks;
    atomic_store(&p->next, 0);
    p->busy = p->threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    take_chunks(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
