#include "worker/event.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error.h"

static char *dup_or_null(const char *s, bool *ok)
{
    if (!s)
        return NULL;
    char *d = gen__strdup(s);
    if (!d)
        *ok = false;
    return d;
}

GEN_API void gen_event_destroy(gen_event *ev)
{
    if (!ev)
        return;
    gen__free(ev->batch_id);
    gen__free(ev->user_id);
    gen__free(ev->device_label);
    gen__free(ev->error_type);
    gen__free(ev->message);
    gen__free(ev->preview);
    gen__free(ev->model_key);
    gen__free(ev->image_path);
    gen__free(ev);
}

gen_event *gen__event_new(const gen__event_fields *f)
{
    gen_event *ev = gen__calloc(1, sizeof(*ev));
    if (!ev)
        return NULL;
    bool ok = true;
    ev->type = f->type;
    ev->item_id = f->item_id;
    ev->batch_id = dup_or_null(f->batch_id, &ok);
    ev->user_id = dup_or_null(f->user_id, &ok);
    ev->device_index = f->device_index;
    ev->device_label = dup_or_null(f->device_label, &ok);
    ev->old_status = f->old_status;
    ev->new_status = f->new_status;
    ev->error_type = dup_or_null(f->error_type, &ok);
    ev->message = dup_or_null(f->message, &ok);
    ev->stage = f->stage;
    ev->step = f->step;
    ev->total = f->total;
    if (f->preview && f->preview_w > 0 && f->preview_h > 0) {
        size_t bytes = (size_t)f->preview_w * (size_t)f->preview_h * 3;
        ev->preview = gen__malloc(bytes);
        if (ev->preview) {
            memcpy(ev->preview, f->preview, bytes);
            ev->preview_w = f->preview_w;
            ev->preview_h = f->preview_h;
        } else {
            ok = false;
        }
    }
    ev->model_key = dup_or_null(f->model_key, &ok);
    ev->model_loaded = f->model_loaded;
    ev->seconds = f->seconds;
    ev->image_path = dup_or_null(f->image_path, &ok);
    ev->image_w = f->image_w;
    ev->image_h = f->image_h;
    if (!ok) {
        gen_event_destroy(ev);
        return NULL;
    }
    return ev;
}

gen_event *gen__event_clone(const gen_event *ev)
{
    gen__event_fields f = {
        ev->type, ev->item_id, ev->batch_id, ev->user_id, ev->device_index, ev->device_label,
        ev->old_status, ev->new_status, ev->error_type, ev->message, ev->stage, ev->step,
        ev->total, ev->preview, ev->preview_w, ev->preview_h, ev->model_key, ev->model_loaded,
        ev->seconds, ev->image_path, ev->image_w, ev->image_h,
    };
    return gen__event_new(&f);
}

/* --- accessors --------------------------------------------------------------------------- */

GEN_API int32_t gen_event_type_of(const gen_event *ev) { return ev ? (int32_t)ev->type : 0; }
GEN_API int64_t gen_event_item_id(const gen_event *ev) { return ev ? ev->item_id : 0; }
GEN_API const char *gen_event_batch_id(const gen_event *ev) { return ev ? ev->batch_id : NULL; }
GEN_API const char *gen_event_user_id(const gen_event *ev) { return ev ? ev->user_id : NULL; }
GEN_API int32_t gen_event_device_index(const gen_event *ev) { return ev ? ev->device_index : -1; }
GEN_API const char *gen_event_device_label(const gen_event *ev) { return ev ? ev->device_label : NULL; }
GEN_API int32_t gen_event_old_status(const gen_event *ev) { return ev ? ev->old_status : -1; }
GEN_API int32_t gen_event_new_status(const gen_event *ev) { return ev ? ev->new_status : -1; }
GEN_API const char *gen_event_error_type(const gen_event *ev) { return ev ? ev->error_type : NULL; }
GEN_API const char *gen_event_message(const gen_event *ev) { return ev ? ev->message : NULL; }
GEN_API int32_t gen_event_stage(const gen_event *ev) { return ev ? ev->stage : -1; }
GEN_API int32_t gen_event_step(const gen_event *ev) { return ev ? ev->step : 0; }
GEN_API int32_t gen_event_total_steps(const gen_event *ev) { return ev ? ev->total : 0; }
GEN_API const char *gen_event_model_key(const gen_event *ev) { return ev ? ev->model_key : NULL; }
GEN_API int32_t gen_event_model_loaded(const gen_event *ev) { return ev ? ev->model_loaded : 0; }
GEN_API double gen_event_seconds(const gen_event *ev) { return ev ? ev->seconds : 0.0; }
GEN_API const char *gen_event_image_path(const gen_event *ev) { return ev ? ev->image_path : NULL; }
GEN_API int32_t gen_event_image_width(const gen_event *ev) { return ev ? ev->image_w : 0; }
GEN_API int32_t gen_event_image_height(const gen_event *ev) { return ev ? ev->image_h : 0; }

GEN_API const uint8_t *gen_event_preview(const gen_event *ev, int32_t *width, int32_t *height)
{
    if (width)
        *width = ev && ev->preview ? ev->preview_w : 0;
    if (height)
        *height = ev && ev->preview ? ev->preview_h : 0;
    return ev ? ev->preview : NULL;
}

GEN_API const char *gen_event_type_name(int32_t type)
{
    switch (type) {
    case GEN_EVENT_ITEM_STATUS: return "item_status";
    case GEN_EVENT_MODEL_LOAD: return "model_load";
    case GEN_EVENT_PROGRESS: return "progress";
    case GEN_EVENT_IMAGE_READY: return "image_ready";
    case GEN_EVENT_WORKER_ERROR: return "worker_error";
    }
    return "unknown";
}

GEN_API const char *gen_stage_name(int32_t stage)
{
    switch (stage) {
    case GEN_STAGE_LOAD: return "load";
    case GEN_STAGE_ENCODE: return "encode";
    case GEN_STAGE_DENOISE: return "denoise";
    case GEN_STAGE_DECODE: return "decode";
    }
    return "unknown";
}

/* --- queue --------------------------------------------------------------------------------- */

gen_status gen__event_queue_init(gen__event_queue *q, size_t capacity)
{
    memset(q, 0, sizeof(*q));
    q->ring = gen__calloc(capacity ? capacity : 1, sizeof(*q->ring));
    if (!q->ring)
        return gen__error(GEN_ENOMEM, "event queue: cannot allocate %zu slots", capacity);
    q->capacity = capacity ? capacity : 1;
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &attr);
    pthread_condattr_destroy(&attr);
    return GEN_OK;
}

void gen__event_queue_destroy(gen__event_queue *q)
{
    if (!q->ring)
        return;
    for (size_t i = 0; i < q->count; i++)
        gen_event_destroy(q->ring[(q->head + i) % q->capacity]);
    gen__free(q->ring);
    q->ring = NULL;
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
}

void gen__event_queue_push(gen__event_queue *q, gen_event *ev)
{
    if (!ev)
        return;
    pthread_mutex_lock(&q->mu);
    if (q->closed) {
        pthread_mutex_unlock(&q->mu);
        gen_event_destroy(ev);
        return;
    }
    if (q->count == q->capacity) {
        gen_event_destroy(q->ring[q->head]);
        q->head = (q->head + 1) % q->capacity;
        q->count--;
        q->dropped++;
    }
    q->ring[(q->head + q->count) % q->capacity] = ev;
    q->count++;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

gen_status gen__event_queue_pop(gen__event_queue *q, gen_event **out, int32_t timeout_ms)
{
    *out = NULL;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (timeout_ms > 0) {
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&q->mu);
    while (q->count == 0 && !q->closed && timeout_ms != 0) {
        int rc = timeout_ms < 0 ? pthread_cond_wait(&q->cv, &q->mu)
                                : pthread_cond_timedwait(&q->cv, &q->mu, &deadline);
        if (rc == ETIMEDOUT)
            break;
    }
    gen_status st = GEN_OK;
    if (q->count > 0) {
        *out = q->ring[q->head];
        q->head = (q->head + 1) % q->capacity;
        q->count--;
    } else {
        st = q->closed ? GEN_ECANCELED : GEN_ETIMEOUT;
    }
    pthread_mutex_unlock(&q->mu);
    if (st == GEN_ETIMEOUT)
        return gen__error(GEN_ETIMEOUT, "no event within %d ms", (int)timeout_ms);
    if (st == GEN_ECANCELED)
        return gen__error(GEN_ECANCELED, "the event queue is closed");
    return GEN_OK;
}

void gen__event_queue_close(gen__event_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}
