/* libgen — job parameters: what one image generation needs.
 *
 * A job is an opaque object set field by field from text (the same style as
 * options: config files, command lines and FFI all use it) or read from JSON,
 * the form the queue stores. Every value is checked when it is set; checks
 * that involve several fields (an init image needs a strength) run in
 * gen_job_validate, which gen_generate and the queue's workers call too.
 *
 * Threads: a job may be read from several threads at once but written by one.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef GEN_JOB_H
#define GEN_JOB_H

#include <gen/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gen_job gen_job;

/* A job with the defaults: 512x512, 20 steps, guidance 7.5, scheduler
 * "euler_a", no seed (gen_job_validate picks one), strength 0.75 for img2img. */
GEN_API gen_status gen_job_create(gen_job **out);
GEN_API void gen_job_destroy(gen_job *job);
/* Deep copy. */
GEN_API gen_status gen_job_clone(gen_job **out, const gen_job *job);

/* Set one field from text. Fields:
 *   model            path of a diffusers folder or a .safetensors file
 *   prompt           UTF-8 text, 1..16384 bytes
 *   negative_prompt  UTF-8 text, 0..16384 bytes
 *   width, height    pixels, multiples of 8, 64..4096
 *   steps            1..1000
 *   guidance         classifier-free guidance scale, finite, 0..100 (<= 1: no CFG)
 *   seed             0..4294967295, or "random" (torch seeds its generator with 32 bits)
 *   scheduler        ddim, euler, euler_a, dpmpp_2m
 *   karras           true/false: Karras sigmas (euler, dpmpp_2m)
 *   clip_skip        0..11 (diffusers' clip_skip: 1 = penultimate layer)
 *   init_image       path of a PNG for img2img ("" = txt2img)
 *   strength         img2img strength, (0, 1]
 *   tiled_vae        auto, on, off
 *   timestep_spacing model (the model's scheduler config), leading, trailing, linspace
 *   loras            "path:weight[,path:weight...]" (replaces the list)
 * GEN_ENOTFOUND for an unknown name, GEN_EINVAL naming the field and the bad
 * value otherwise; the job is unchanged on failure. */
GEN_API gen_status gen_job_set(gen_job *job, const char *name, const char *value);

/* A field's value as text (the form gen_job_set accepts). GEN_EINVAL when buf
 * is too small (the size needed is in the message). */
GEN_API gen_status gen_job_get(const gen_job *job, const char *name, char *buf, size_t buf_size);

/* Append a LoRA (safetensors path, strength in -10..10). At most 16. */
GEN_API gen_status gen_job_add_lora(gen_job *job, const char *path, double weight);

/* Cross-field checks, and a random seed when none was set (the chosen seed is
 * then part of the job, so the image can be made again). */
GEN_API gen_status gen_job_validate(gen_job *job);

/* Parse a job from a JSON object with the field names above (numbers as JSON
 * numbers, booleans as JSON booleans, loras as [{"path": ..., "weight": ...}]).
 * Unknown keys are refused (a typo must not be silently ignored).
 * GEN_EFORMAT for malformed JSON, GEN_EINVAL / GEN_ENOTFOUND for a bad field. */
GEN_API gen_status gen_job_from_json(gen_job **out, const char *json);

/* Write the job as a JSON object into buf. *needed (may be NULL) receives the
 * size including the NUL; with buf = NULL or a short buffer the call returns
 * GEN_EINVAL and only sets *needed. */
GEN_API gen_status gen_job_to_json(const gen_job *job, char *buf, size_t buf_size, size_t *needed);

#ifdef __cplusplus
}
#endif

#endif /* GEN_JOB_H */
