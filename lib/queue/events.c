/* Status-change events: recorded while a transaction is open, delivered after
 * it commits, on the calling thread, with the queue lock released (so that the
 * callback may call back into the queue). */
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "queue/queue_internal.h"

static void rec_free(gen__queue_event_rec *r)
{
    gen__free(r->queue_id);
    gen__free(r->batch_id);
    gen__free(r->user_id);
    gen__free(r->device);
    gen__free(r->error_message);
}

static char *dup_or_null(const char *s, bool *ok)
{
    if (!s)
        return NULL;
    char *c = gen__strdup(s);
    if (!c)
        *ok = false;
    return c;
}

gen_status gen__queue_event_add(gen_queue *q, int64_t item_id, int32_t old_status,
                                int32_t new_status, const char *queue_id, const char *batch_id,
                                const char *user_id, const char *device, const char *error_message)
{
    if (q->event_count == q->event_cap) {
        size_t cap = q->event_cap ? q->event_cap * 2 : 16;
        gen__queue_event_rec *grown = gen__realloc(q->events, cap * sizeof(*grown));
        if (!grown)
            return gen__error(GEN_ENOMEM, "queue: cannot allocate %zu events", cap);
        q->events = grown;
        q->event_cap = cap;
    }
    gen__queue_event_rec r = {item_id, old_status, new_status, NULL, NULL, NULL, NULL, NULL};
    bool ok = true;
    r.queue_id = dup_or_null(queue_id, &ok);
    r.batch_id = dup_or_null(batch_id, &ok);
    r.user_id = dup_or_null(user_id, &ok);
    r.device = dup_or_null(device, &ok);
    r.error_message = dup_or_null(error_message, &ok);
    if (!ok) {
        rec_free(&r);
        return gen__error(GEN_ENOMEM, "queue: cannot allocate an event");
    }
    q->events[q->event_count++] = r;
    return GEN_OK;
}

void gen__queue_events_drop(gen_queue *q)
{
    for (size_t i = 0; i < q->event_count; i++)
        rec_free(&q->events[i]);
    q->event_count = 0;
}

void gen__queue_unlock_and_dispatch(gen_queue *q)
{
    gen__queue_event_rec *recs = q->events;
    size_t count = q->event_count;
    gen_queue_event_fn fn = q->event_fn;
    void *ud = q->event_user_data;
    /* Take the batch so that a callback re-entering the queue starts afresh. */
    q->events = NULL;
    q->event_count = 0;
    q->event_cap = 0;
    pthread_mutex_unlock(&q->lock);
    for (size_t i = 0; i < count; i++) {
        if (fn) {
            gen_queue_event ev;
            memset(&ev, 0, sizeof(ev));
            ev.version = GEN_QUEUE_EVENT_VERSION;
            ev.item_id = recs[i].item_id;
            ev.old_status = recs[i].old_status;
            ev.new_status = recs[i].new_status;
            ev.queue_id = recs[i].queue_id;
            ev.batch_id = recs[i].batch_id;
            ev.user_id = recs[i].user_id;
            ev.device = recs[i].device;
            ev.error_message = recs[i].error_message;
            fn(&ev, ud);
        }
        rec_free(&recs[i]);
    }
    gen__free(recs);
}

GEN_API gen_status gen_queue_set_event_callback(gen_queue *q, gen_queue_event_fn fn,
                                                void *user_data)
{
    if (!q)
        return gen__error(GEN_EINVAL, "gen_queue_set_event_callback: queue is NULL");
    pthread_mutex_lock(&q->lock);
    q->event_fn = fn;
    q->event_user_data = user_data;
    pthread_mutex_unlock(&q->lock);
    return GEN_OK;
}
