/* The diffusers runs of tests/fixtures/pipeline/cases.json (made by
 * tools/make_pipeline_fixtures.py) as libgen jobs, for the tests that
 * generate whole images (test_generate, the gpu suite). Needs
 * GEN_FIXTURES_DIR. Failures print why to stderr and return NULL. */
#ifndef GEN_TESTS_PIPELINE_CASES_H
#define GEN_TESTS_PIPELINE_CASES_H

#include <jansson.h>

#include <gen/gen.h>

/* The parsed file (json_decref it); its "cases" array holds one object per run. */
json_t *cases_load(void);

/* The job diffusers ran for case `c` (model path, prompt, size, steps,
 * scheduler, seed, clip_skip, init image and strength). */
gen_job *case_job(json_t *c);

/* The first timestep the UNet ran at (img2img starts part-way). */
float case_first_timestep(json_t *c);

#endif
