#include "cases.h"

#include <stdio.h>
#include <string.h>

#ifndef GEN_FIXTURES_DIR
#error GEN_FIXTURES_DIR must be defined by the build
#endif

json_t *cases_load(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/pipeline/cases.json", GEN_FIXTURES_DIR);
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (!root)
        fprintf(stderr, "%s: %s\n", path, err.text);
    return root;
}

static int set(gen_job *job, const char *name, const char *value)
{
    if (gen_job_set(job, name, value) == GEN_OK)
        return 0;
    fprintf(stderr, "job %s=%s: %s\n", name, value, gen_last_error_message());
    return -1;
}

static int set_int(gen_job *job, const char *name, json_t *value)
{
    char text[32];
    snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(value));
    return set(job, name, text);
}

static int set_number(gen_job *job, const char *name, json_t *value)
{
    char text[32];
    snprintf(text, sizeof(text), "%.17g", json_number_value(value));
    return set(job, name, text);
}

/* The scheduler names diffusers' runs used, as job fields. */
static int set_scheduler(gen_job *job, const char *sched)
{
    if (strcmp(sched, "dpmpp_2m_karras") == 0)
        return set(job, "scheduler", "dpmpp_2m") | set(job, "karras", "true");
    if (strcmp(sched, "ddim_trailing") == 0)
        return set(job, "scheduler", "ddim") | set(job, "timestep_spacing", "trailing");
    return set(job, "scheduler", sched);
}

gen_job *case_job(json_t *c)
{
    gen_job *job = NULL;
    if (gen_job_create(&job) != GEN_OK)
        return NULL;
    char text[512];
    snprintf(text, sizeof(text), "%s/%s", GEN_FIXTURES_DIR,
             json_string_value(json_object_get(c, "model")));
    int bad = set(job, "model", text) |
              set(job, "prompt", json_string_value(json_object_get(c, "prompt"))) |
              set_int(job, "width", json_object_get(c, "width")) |
              set_int(job, "height", json_object_get(c, "height")) |
              set_int(job, "steps", json_object_get(c, "steps")) |
              set_number(job, "guidance", json_object_get(c, "guidance")) |
              set_int(job, "seed", json_object_get(c, "seed")) |
              set_scheduler(job, json_string_value(json_object_get(c, "sched")));
    if (json_object_get(c, "negative"))
        bad |= set(job, "negative_prompt", json_string_value(json_object_get(c, "negative")));
    if (json_object_get(c, "clip_skip"))
        bad |= set_int(job, "clip_skip", json_object_get(c, "clip_skip"));
    if (json_object_get(c, "strength")) {
        snprintf(text, sizeof(text), "%s/pipeline/init_64.png", GEN_FIXTURES_DIR);
        bad |= set(job, "init_image", text) |
               set_number(job, "strength", json_object_get(c, "strength"));
    }
    if (bad) {
        gen_job_destroy(job);
        return NULL;
    }
    return job;
}

float case_first_timestep(json_t *c)
{
    json_t *ts = json_object_get(c, "timesteps");
    size_t steps = json_array_size(ts);
    size_t calls = (size_t)json_integer_value(json_object_get(c, "unet_calls"));
    if (calls < 1 || calls > steps)
        return -1.0f;
    return (float)json_number_value(json_array_get(ts, steps - calls));
}
