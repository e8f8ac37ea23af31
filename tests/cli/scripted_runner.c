/* A scripted item runner for the CLI tests: `gen serve` built with this file
 * processes items without the pipeline. Each item runs an encode step, the
 * job's "steps" denoising steps of GEN_TEST_STEP_MS (default 40) ms each,
 * checking for cancellation before every step, and a decode step; a prompt
 * containing "fail" fails the item. It writes no image. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "context/context_internal.h"
#include "core/error.h"

static gen_status scripted_runner(void *p, size_t device, const gen_queue_item *item,
                                  const gen__run_hooks *hooks, gen__run_result *result)
{
    (void)p, (void)device;
    gen_job *job = NULL;
    char steps_text[16] = "4", prompt[256] = "";
    if (gen_job_from_json(&job, gen_queue_item_job(item)) == GEN_OK) {
        gen_job_get(job, "steps", steps_text, sizeof(steps_text));
        gen_job_get(job, "prompt", prompt, sizeof(prompt));
        gen_job_destroy(job);
    }
    const char *ms_env = getenv("GEN_TEST_STEP_MS");
    long step_ms = ms_env ? atol(ms_env) : 40;
    int steps = atoi(steps_text);
    if (strstr(prompt, "fail"))
        return gen__error(GEN_EIO, "scripted failure (prompt \"%s\")", prompt);
    hooks->progress(hooks->hook_ctx, GEN_STAGE_ENCODE, 1, 1, NULL, 0, 0);
    for (int step = 1; step <= steps; step++) {
        if (hooks->should_cancel(hooks->hook_ctx))
            return gen__error(GEN_ECANCELED, "canceled at step %d", step);
        struct timespec ts = {step_ms / 1000, (step_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        hooks->progress(hooks->hook_ctx, GEN_STAGE_DENOISE, step, steps, NULL, 0, 0);
    }
    hooks->progress(hooks->hook_ctx, GEN_STAGE_DECODE, 1, 1, NULL, 0, 0);
    /* No file is written, so no image path is reported (no IMAGE_READY). */
    result->image_path[0] = '\0';
    return GEN_OK;
}

static void install(gen_context *ctx)
{
    gen__context_set_runner(ctx, scripted_runner, NULL);
}

__attribute__((constructor)) static void set_hook(void)
{
    gen_cli_context_hook = install;
}
