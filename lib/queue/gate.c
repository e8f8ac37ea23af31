/* In-process write gate per database file. Handles of one process that share
 * a file take their write transactions in arrival order (a ticket lock)
 * instead of racing for SQLite's lock through sleep-and-retry, which starves
 * unlucky claimers. Other processes still meet at SQLite's lock (busy
 * handler). Gates are keyed by device and inode and shared by refcount. */
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/error.h"
#include "queue/queue_internal.h"

struct gen__queue_gate {
    dev_t dev;
    ino_t ino;
    int refs;
    pthread_mutex_t lock;
    pthread_cond_t turn;
    uint64_t next, serving;
    struct gen__queue_gate *link;
};

static pthread_mutex_t gates_lock = PTHREAD_MUTEX_INITIALIZER;
static gen__queue_gate *gates;

gen_status gen__queue_gate_get(const char *path, gen__queue_gate **out)
{
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return GEN_OK; /* no gate: SQLite's lock alone still serialises */
    pthread_mutex_lock(&gates_lock);
    gen__queue_gate *g = gates;
    while (g && !(g->dev == sb.st_dev && g->ino == sb.st_ino))
        g = g->link;
    if (!g) {
        g = gen__calloc(1, sizeof(*g));
        if (!g) {
            pthread_mutex_unlock(&gates_lock);
            return gen__error(GEN_ENOMEM, "queue %s: cannot allocate the write gate", path);
        }
        g->dev = sb.st_dev;
        g->ino = sb.st_ino;
        pthread_mutex_init(&g->lock, NULL);
        pthread_cond_init(&g->turn, NULL);
        g->link = gates;
        gates = g;
    }
    g->refs++;
    pthread_mutex_unlock(&gates_lock);
    *out = g;
    return GEN_OK;
}

void gen__queue_gate_put(gen__queue_gate *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&gates_lock);
    if (--g->refs == 0) {
        gen__queue_gate **p = &gates;
        while (*p != g)
            p = &(*p)->link;
        *p = g->link;
        pthread_mutex_destroy(&g->lock);
        pthread_cond_destroy(&g->turn);
        gen__free(g);
    }
    pthread_mutex_unlock(&gates_lock);
}

void gen__queue_gate_enter(gen__queue_gate *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->lock);
    uint64_t ticket = g->next++;
    while (g->serving != ticket)
        pthread_cond_wait(&g->turn, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

void gen__queue_gate_leave(gen__queue_gate *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->lock);
    g->serving++;
    pthread_cond_broadcast(&g->turn);
    pthread_mutex_unlock(&g->lock);
}
