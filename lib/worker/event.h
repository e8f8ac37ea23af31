/* The event object behind gen_event, and a bounded thread-safe queue of them. */
#ifndef GEN_WORKER_EVENT_H
#define GEN_WORKER_EVENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <gen/event.h>

struct gen_event {
    gen_event_type type;
    int64_t item_id;
    char *batch_id;
    char *user_id;
    int32_t device_index;
    char *device_label;
    int32_t old_status, new_status;
    char *error_type;
    char *message;
    int32_t stage, step, total;
    uint8_t *preview;
    int32_t preview_w, preview_h;
    char *model_key;
    int32_t model_loaded;
    double seconds;
    char *image_path;
    int32_t image_w, image_h;
};

/* Field values for gen__event_new; strings and the preview are copied. */
typedef struct gen__event_fields {
    gen_event_type type;
    int64_t item_id;
    const char *batch_id;
    const char *user_id;
    int32_t device_index;       /* -1 = none */
    const char *device_label;
    int32_t old_status, new_status;
    const char *error_type;
    const char *message;
    int32_t stage, step, total;
    const uint8_t *preview;
    int32_t preview_w, preview_h;
    const char *model_key;
    int32_t model_loaded;
    double seconds;
    const char *image_path;
    int32_t image_w, image_h;
} gen__event_fields;

/* NULL when out of memory (events are best effort: a failure to report never
 * fails the job). */
gen_event *gen__event_new(const gen__event_fields *fields);
gen_event *gen__event_clone(const gen_event *ev);

/* Bounded FIFO. When full, the oldest event is dropped (and counted): a
 * binding that stops polling must not make the service run out of memory. */
typedef struct gen__event_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    gen_event **ring;
    size_t capacity, head, count;
    uint64_t dropped;
    bool closed;
} gen__event_queue;

gen_status gen__event_queue_init(gen__event_queue *q, size_t capacity);
void gen__event_queue_destroy(gen__event_queue *q);
/* Takes ownership of ev. */
void gen__event_queue_push(gen__event_queue *q, gen_event *ev);
/* Waits up to timeout_ms (-1 = forever, 0 = poll). GEN_ETIMEOUT when none;
 * GEN_ECANCELED once closed and drained. */
gen_status gen__event_queue_pop(gen__event_queue *q, gen_event **out, int32_t timeout_ms);
/* Wake every waiter; later pops return what is left, then GEN_ECANCELED. */
void gen__event_queue_close(gen__event_queue *q);

#endif
