/* Private state of a scheduler, shared by its source files. */
#ifndef GEN_PIPELINE_SCHEDULER_INTERNAL_H
#define GEN_PIPELINE_SCHEDULER_INTERNAL_H

#include "pipeline/scheduler.h"

struct gen__scheduler {
    gen__sched_kind kind;
    gen__sched_params cfg;
    int32_t steps;              /* requested num_inference_steps */
    float eta;                  /* DDIM */
    size_t nt;                  /* number of timesteps */
    double *timesteps;          /* nt (integers for DDIM / DPM++, float32 values for Euler) */
    float *sigmas;              /* nt + 1 (Euler kinds, DPM++) */
    float *alphas_cumprod;      /* num_train_timesteps */
    float final_alpha_cumprod;  /* DDIM */
    float init_noise_sigma;
    /* Multistep state (DPM++) and scratch. */
    size_t n;                   /* element count fixed by the first step */
    float *prev_x0;
    float *cur_x0;
    float *noise;
    int lower_order_nums;
};

#endif
