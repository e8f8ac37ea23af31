/* Diffusion schedulers as diffusers implements them: DDIM, Euler, Euler
 * ancestral and DPM-Solver++ (2M), with Karras sigmas where diffusers has
 * them, epsilon / v-prediction, leading / trailing / linspace spacing.
 * Schedules are computed with the dtypes diffusers uses (float32 torch
 * tensors, float64 numpy) and steps run in float32 on host arrays, in the
 * order diffusers evaluates them. One scheduler per job (it holds the
 * multistep state); not thread-safe. */
#ifndef GEN_PIPELINE_SCHEDULER_H
#define GEN_PIPELINE_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gen/common.h>

#include "model/config.h"
#include "pipeline/rng.h"

typedef enum gen__sched_kind {
    GEN__SCHED_DDIM = 0,
    GEN__SCHED_EULER = 1,
    GEN__SCHED_EULER_A = 2,
    GEN__SCHED_DPMPP_2M = 3,
} gen__sched_kind;
#define GEN__SCHED_KIND_COUNT 4

/* What the four schedulers need from scheduler_config.json, as the target
 * class reads it (diffusers' from_config); made from the model's parsed
 * config (model/config.h) by gen__sched_params_from_config. */
typedef struct gen__sched_params {
    int32_t num_train_timesteps;
    double beta_start, beta_end;
    gen__beta_schedule beta_schedule;
    gen__prediction prediction_type;
    gen__spacing timestep_spacing;
    int32_t steps_offset;
    bool set_alpha_to_one;          /* DDIM */
    bool clip_sample;               /* DDIM */
    double clip_sample_range;       /* DDIM */
    bool use_karras_sigmas;         /* Euler, DPM++ */
    double sigma_min, sigma_max;    /* Karras range override; NaN = from the schedule */
    bool final_sigma_min;           /* final_sigmas_type "sigma_min" instead of "zero" */
    int32_t solver_order;           /* DPM++: 1 or 2 */
    bool solver_heun;               /* DPM++ solver_type "heun" (else "midpoint") */
    bool lower_order_final;         /* DPM++ */
    bool euler_at_final;            /* DPM++ */
    double lambda_min_clipped;      /* DPM++; -inf = none */
} gen__sched_params;

/* The parameters of scheduler `kind` from a model's scheduler config (the
 * class's defaults for every key the file did not set). karras: -1 keeps the
 * file's use_karras_sigmas, 0/1 overrides it (the job's choice). Values the
 * schedulers cannot honour (trained_betas, thresholding,
 * rescale_betas_zero_snr, other algorithm types, continuous timesteps...)
 * are GEN_EUNSUPPORTED naming the key; `label` names the file. */
gen_status gen__sched_params_from_config(gen__sched_params *out, gen__sched_kind kind,
                                         const gen__scheduler_config *file, int karras,
                                         const char *label);

/* timestep_spacing override (a gen__spacing), or -1 to keep the config's. */
void gen__sched_params_set_spacing(gen__sched_params *params, int spacing);

/* "ddim", "euler", "euler_a" (or "euler_ancestral"), "dpmpp_2m" (or "dpm++_2m"). */
gen_status gen__sched_kind_from_name(const char *name, gen__sched_kind *out);
const char *gen__sched_kind_name(gen__sched_kind kind);

typedef struct gen__scheduler gen__scheduler;

/* set_timesteps(steps): 1 <= steps <= num_train_timesteps. `eta` is DDIM's
 * eta (0 = deterministic); other kinds ignore it. */
gen_status gen__scheduler_create(gen__scheduler **out, gen__sched_kind kind,
                                 const gen__sched_params *cfg, int32_t steps, float eta);
void gen__scheduler_destroy(gen__scheduler *s);

/* Number of entries of the timestep list (== steps except for odd trailing
 * ratios, where diffusers' arange yields one more). */
size_t gen__scheduler_num_timesteps(const gen__scheduler *s);
/* The timestep given to the UNet at index i (float for Euler's interpolated ones). */
double gen__scheduler_timestep(const gen__scheduler *s, size_t i);
/* Sigma at index i (Euler, Euler a, DPM++; 0 for DDIM), i <= num_timesteps. */
double gen__scheduler_sigma(const gen__scheduler *s, size_t i);
/* Scale of the initial noise (multiply torch.randn latents by it). */
float gen__scheduler_init_noise_sigma(const gen__scheduler *s);

/* scale_model_input for index i: out = in / sqrt(sigma^2 + 1) for the Euler
 * kinds, a copy otherwise. in and out may alias. */
void gen__scheduler_scale_model_input(const gen__scheduler *s, size_t i, const float *in, float *out,
                                      size_t n);

/* One step at index i (0, 1, ... in order; a scheduler started at an img2img
 * start index begins there): sample[0..n) <- previous sample. model_output
 * is the UNet's (guided) output for scale_model_input(sample). Ancestral and
 * DDIM eta > 0 noise come from rng (torch.randn(n) on that generator); rng
 * may be NULL when no noise is drawn. The first call fixes n. */
gen_status gen__scheduler_step(gen__scheduler *s, size_t i, const float *model_output, float *sample,
                               size_t n, gen__rng *rng);

/* img2img (StableDiffusionImg2ImgPipeline.get_timesteps): index of the first
 * timestep kept for `strength` in [0, 1] with `steps` requested steps;
 * == num_timesteps when nothing is left to do. */
size_t gen__scheduler_img2img_start(const gen__scheduler *s, double strength);

/* add_noise(original, noise, timesteps[start]): the img2img initial latents. */
void gen__scheduler_add_noise(const gen__scheduler *s, size_t start, const float *original,
                              const float *noise, float *out, size_t n);

#endif
