/* The job struct behind the public gen_job: the pipeline reads fields directly. */
#ifndef GEN_PIPELINE_JOB_H
#define GEN_PIPELINE_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include <gen/job.h>

#include "pipeline/scheduler.h"

#define GEN__JOB_MAX_LORAS 16
#define GEN__JOB_MAX_PROMPT 16384

typedef enum gen__tiled_mode {
    GEN__TILED_AUTO = 0,
    GEN__TILED_ON = 1,
    GEN__TILED_OFF = 2
} gen__tiled_mode;

typedef struct gen__job_lora {
    char *path;
    double weight;
} gen__job_lora;

struct gen_job {
    char *model;
    char *prompt;
    char *negative_prompt;
    char *init_image;          /* NULL = txt2img */
    int width, height;
    int steps;
    double guidance;
    uint64_t seed;
    bool has_seed;
    gen__sched_kind scheduler;
    bool karras;
    int clip_skip;
    double strength;
    gen__tiled_mode tiled_vae;
    int timestep_spacing;      /* -1 = the model's scheduler config, else a gen__spacing */
    int lora_count;
    gen__job_lora loras[GEN__JOB_MAX_LORAS];
};

#endif
