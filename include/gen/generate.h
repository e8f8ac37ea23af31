/* libgen — synchronous generation: one job, one image, on the calling thread.
 *
 * For a service, enqueue jobs and let the workers run them
 * (gen_context_start); gen_generate is for simple embedding, tools and tests.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef GEN_GENERATE_H
#define GEN_GENERATE_H

#include <gen/common.h>
#include <gen/context.h>
#include <gen/job.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A generated image: 8-bit RGB, rows top to bottom, with its parameters. */
typedef struct gen_image gen_image;

/* Progress of a synchronous generation (stage: gen_stage; step 1..total during
 * denoising). Runs on the calling thread. Return nonzero to cancel: the call
 * then returns GEN_ECANCELED. */
typedef int32_t (*gen_progress_fn)(int32_t stage, int32_t step, int32_t total, void *user_data);

/* Validate `job` (choosing its seed if none is set), then generate it on
 * device `device_index` of the context's pool, on the calling thread. Waits
 * while a worker of the context is using that device. `progress` may be NULL.
 * *out is NULL on failure; errors name the problem (model path, size, init
 * image, device memory...). */
GEN_API gen_status gen_generate(gen_image **out, gen_context *ctx, size_t device_index,
                                gen_job *job, gen_progress_fn progress, void *user_data);

GEN_API int32_t gen_image_width(const gen_image *image);
GEN_API int32_t gen_image_height(const gen_image *image);
/* width * height * 3 bytes, owned by the image. */
GEN_API const uint8_t *gen_image_pixels(const gen_image *image);
/* The generation parameters as JSON (model, prompt, negative_prompt, seed,
 * steps, scheduler, guidance, size, strength, libgen_version). */
GEN_API const char *gen_image_metadata(const gen_image *image);

/* Write the image as PNG with its metadata, atomically: to a temporary file in
 * the same directory, flushed, then renamed over `path`. GEN_EIO / GEN_ENOSPC
 * naming the path; nothing half-written is left behind. */
GEN_API gen_status gen_image_save_png(const gen_image *image, const char *path);

/* Write the image as a NEW file `dir`/`stem`.png, or `stem`-1.png, -2, ...
 * whichever is free, atomically and never overwriting (also against other
 * processes writing there at the same time). The chosen path is copied into
 * path_out (path_out_size bytes, NUL included). GEN_EINVAL when path_out is
 * too small, GEN_EIO / GEN_ENOSPC naming the folder. */
GEN_API gen_status gen_image_save_png_new(const gen_image *image, const char *dir,
                                          const char *stem, char *path_out,
                                          size_t path_out_size);

GEN_API void gen_image_destroy(gen_image *image);

#ifdef __cplusplus
}
#endif

#endif /* GEN_GENERATE_H */
