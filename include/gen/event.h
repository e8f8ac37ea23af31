/* libgen — events: item status changes, model loads, progress, images.
 *
 * Events reach the application two ways, both optional:
 *  - a callback (gen_context_set_event_callback), called on the libgen thread
 *    that produced the event (a worker thread, or the caller's thread for
 *    changes made through the context); it must be quick and thread-safe, and
 *    may call gen_context_* functions except start/stop/destroy;
 *  - a pollable, thread-safe queue (gen_context_enable_event_queue, then
 *    gen_context_next_event), for bindings that prefer to read events on
 *    their own thread.
 * An event is read through accessor functions so that the ABI can grow;
 * accessors of fields an event type does not carry return 0 / -1 / NULL.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef GEN_EVENT_H
#define GEN_EVENT_H

#include <gen/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gen_event gen_event;

typedef enum gen_event_type {
    GEN_EVENT_ITEM_STATUS = 1,  /* an item changed status (claimed, finished, canceled...) */
    GEN_EVENT_MODEL_LOAD = 2,   /* a model part started / finished loading onto a device */
    GEN_EVENT_PROGRESS = 3,     /* a generation advanced (stage, step) */
    GEN_EVENT_IMAGE_READY = 4,  /* an image file was written */
    GEN_EVENT_WORKER_ERROR = 5  /* an error outside any item stopped one worker */
} gen_event_type;

typedef enum gen_stage {
    GEN_STAGE_LOAD = 0,    /* loading model parts */
    GEN_STAGE_ENCODE = 1,  /* text encoding (and init image encoding) */
    GEN_STAGE_DENOISE = 2, /* the denoising loop; step/total count UNet steps */
    GEN_STAGE_DECODE = 3   /* VAE decoding */
} gen_stage;

GEN_API int32_t gen_event_type_of(const gen_event *ev);
/* Static name of a type ("item_status", ...) / stage ("load", "encode", ...). */
GEN_API const char *gen_event_type_name(int32_t type);
GEN_API const char *gen_stage_name(int32_t stage);

/* Item and device (every type but MODEL_LOAD has an item, except WORKER_ERROR). */
GEN_API int64_t gen_event_item_id(const gen_event *ev);      /* 0 = none */
GEN_API const char *gen_event_batch_id(const gen_event *ev);
GEN_API const char *gen_event_user_id(const gen_event *ev);
GEN_API int32_t gen_event_device_index(const gen_event *ev); /* pool index; -1 = none */
GEN_API const char *gen_event_device_label(const gen_event *ev);

/* ITEM_STATUS: gen_queue_status values; error text when failed. */
GEN_API int32_t gen_event_old_status(const gen_event *ev);
GEN_API int32_t gen_event_new_status(const gen_event *ev);
GEN_API const char *gen_event_error_type(const gen_event *ev);
GEN_API const char *gen_event_message(const gen_event *ev); /* also WORKER_ERROR */

/* PROGRESS */
GEN_API int32_t gen_event_stage(const gen_event *ev);
GEN_API int32_t gen_event_step(const gen_event *ev);        /* 1..total */
GEN_API int32_t gen_event_total_steps(const gen_event *ev);
/* Optional small RGB preview of the current latents (8-bit, rows top to
 * bottom, width*height*3 bytes, owned by the event); NULL when none. */
GEN_API const uint8_t *gen_event_preview(const gen_event *ev, int32_t *width, int32_t *height);

/* MODEL_LOAD: the part ("<model>:unet"), whether it finished, how long it took. */
GEN_API const char *gen_event_model_key(const gen_event *ev);
GEN_API int32_t gen_event_model_loaded(const gen_event *ev);   /* 0 started, 1 finished */
GEN_API double gen_event_seconds(const gen_event *ev);

/* IMAGE_READY */
GEN_API const char *gen_event_image_path(const gen_event *ev);
GEN_API int32_t gen_event_image_width(const gen_event *ev);
GEN_API int32_t gen_event_image_height(const gen_event *ev);

/* Event callback: `ev` is valid only during the call. */
typedef void (*gen_event_fn)(const gen_event *ev, void *user_data);

/* Events returned by gen_context_next_event are owned by the caller. NULL accepted. */
GEN_API void gen_event_destroy(gen_event *ev);

#ifdef __cplusplus
}
#endif

#endif /* GEN_EVENT_H */
