/* One image from one job on one device: text encoding, the denoising loop with
 * classifier-free guidance, VAE decoding; txt2img and img2img. Numerically the
 * diffusers StableDiffusion(Img2Img)Pipeline for the same model, prompt, seed
 * and scheduler. */
#ifndef GEN_PIPELINE_GENERATE_H
#define GEN_PIPELINE_GENERATE_H

#include <stdbool.h>
#include <stdint.h>

#include <gen/event.h>

#include "image/png.h"
#include "pipeline/engine.h"
#include "pipeline/job.h"

/* Reporting and cancellation, called on the generating thread. Any function
 * may be NULL. */
typedef struct gen__gen_hooks {
    /* true: stop now (the generation returns GEN_ECANCELED) */
    bool (*should_cancel)(void *hook_ctx);
    void (*progress)(void *hook_ctx, gen_stage stage, int step, int total,
                     const uint8_t *preview_rgb, int preview_w, int preview_h);
    void (*model_load)(void *hook_ctx, const char *model_key, bool finished, double seconds);
    void *hook_ctx;
} gen__gen_hooks;


/* Generate `job` (validated: a seed is set) on device `device_index`, on the
 * calling thread (which must be that device's thread). *out (free with
 * gen__rgb_image_free) is filled on success. Errors: the job's model cannot be opened or used, the size does not
 * suit the model, the init image is unreadable or of the wrong size, device
 * out of memory, GEN_ECANCELED when the hooks asked to stop. */
gen_status gen__generate(gen__engine *engine, size_t device_index, const gen_job *job,
                         const gen__gen_hooks *hooks, gen__rgb_image *out);

/* Tests: pretend every device has `bytes` free when tiled_vae=auto decides
 * (0 = ask the device, the default). Process-wide. */
void gen__generate_test_set_available(uint64_t bytes);

/* The generation parameters as the metadata JSON stored in the image
 * (gen__malloc'ed). */
gen_status gen__generate_metadata_json(const gen_job *job, char **json_out);

#endif
