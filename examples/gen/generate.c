/* gen generate: one image now, synchronously, on one device, without a queue. */
#include <string.h>

#include "cli.h"

static const char generate_help_head[] =
    "usage: gen [--set NAME=VALUE]... generate --model PATH --prompt TEXT [JOB FIELDS]\n"
    "                                        [--output FILE.png] [--device ID]\n"
    "\n"
    "Make one image now on one device (the first of generation_devices, or\n"
    "--device ID such as cuda:1 or cpu:0) and write it as PNG with its parameters\n"
    "as metadata. The model is a diffusers folder or a .safetensors checkpoint\n"
    "(see `gen info`).\n"
    "\n"
    "  --output FILE   the PNG to write (default: OUTPUT_DIR/<seed>.png)\n"
    "  --device ID     the device to run on\n"
    "\n";

/* Plugs in here: the synchronous pipeline (gen_generate + the image accessors
 * and PNG writer). Everything before this call (arguments, job validation,
 * model inspection) already runs. */
static int run_generation(cli_env *env, gen_job *job, const gen_model_info *model,
                          const char *device, const char *output)
{
    (void)env, (void)job, (void)model, (void)device, (void)output;
    fprintf(stderr, "gen generate: not available in this build yet (the generation pipeline, "
                    "gen_generate, is not merged); the job and the model were checked and are "
                    "valid\n");
    return EXIT_RUNTIME;
}

int cmd_generate(cli_env *env)
{
    cli_job_args job_args;
    memset(&job_args, 0, sizeof(job_args));
    const char *output = NULL, *device = NULL;
    cli_args a;
    cli_args_init(&a, "generate", env->argc, env->argv, 1);
    while (cli_args_more(&a)) {
        if (cli_help(&a)) {
            fputs(generate_help_head, stdout);
            fputs(cli_job_help, stdout);
            return EXIT_OK;
        } else if (cli_job_arg(&a, &job_args) || cli_opt(&a, "--output", &output) ||
                   cli_opt(&a, "--device", &device)) {
        } else {
            cli_unknown(&a);
        }
    }
    if (a.error)
        return EXIT_USAGE;
    gen_job *job = NULL;
    int rc = cli_job_build(&job_args, "generate", &job);
    if (rc != EXIT_OK)
        return rc;
    char model_path[GEN_PATH_TEXT_MAX];
    gen_model_info *info = NULL;
    if (gen_job_get(job, "model", model_path, sizeof(model_path)) != GEN_OK) {
        rc = cli_fail("generate");
    } else if (gen_model_inspect(&info, model_path) != GEN_OK) {
        fprintf(stderr, "gen generate: model \"%s\": %s\n", model_path, gen_last_error_message());
        rc = EXIT_RUNTIME;
    } else if (!gen_model_info_supported(info)) {
        fprintf(stderr, "gen generate: model \"%s\" is %s, which this build cannot run yet\n",
                model_path, gen_model_family_name(gen_model_info_family(info)));
        rc = EXIT_RUNTIME;
    } else {
        rc = run_generation(env, job, info, device, output);
    }
    gen_model_info_destroy(info);
    gen_job_destroy(job);
    return rc;
}
