/* A CPU device's own threads. Each CPU device owns one pool sized to its core
 * budget, so two devices computing at once never wait on each other (and never
 * share OpenBLAS's global thread pool: BLAS runs single-threaded inside our
 * threads). */
#ifndef GEN_BACKEND_CPU_POOL_H
#define GEN_BACKEND_CPU_POOL_H

#include <stdint.h>

#include <gen/common.h>

typedef struct gen__pool gen__pool;

/* Runs items [begin, end) of a job on pool thread `thread` (0..threads-1; 0 is
 * the calling thread). */
typedef void (*gen__pool_fn)(void *arg, int64_t begin, int64_t end, int thread);

/* threads >= 1 (threads - 1 helper threads are started). */
gen_status gen__pool_create(gen__pool **out, int threads);
void gen__pool_destroy(gen__pool *pool);
int gen__pool_threads(const gen__pool *pool);

/* Split [0, n) into chunks of at least `grain` items (a fixed split that depends
 * only on n, grain and the thread count, so results are reproducible) and run
 * them on the pool; returns when all are done. Called by one thread at a time. */
void gen__pool_run(gen__pool *pool, int64_t n, int64_t grain, gen__pool_fn fn, void *arg);

#endif
