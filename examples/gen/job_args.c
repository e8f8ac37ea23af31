/* Job arguments shared by `gen queue add` and `gen generate`. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

const char cli_job_help[] =
    "job fields (applied in order, after --job FILE):\n"
    "  --job FILE          a JSON object with job fields (see docs/api.md, gen_job)\n"
    "  --set NAME=VALUE    one field: model, prompt, negative_prompt, width, height,\n"
    "                      steps, guidance, seed, scheduler (ddim, euler, euler_a,\n"
    "                      dpmpp_2m), karras, clip_skip, init_image, strength,\n"
    "                      tiled_vae, loras\n"
    "  --model PATH        same as --set model=PATH (diffusers folder or .safetensors)\n"
    "  --prompt TEXT       same as --set prompt=TEXT\n"
    "  --negative TEXT     same as --set negative_prompt=TEXT\n"
    "  --seed N            same as --set seed=N\n"
    "  --steps N           same as --set steps=N\n";

static bool add(cli_args *a, cli_job_args *j, const char *name, const char *value)
{
    if (!value)
        return true; /* missing value: cli_opt printed the error */
    if (j->count >= CLI_MAX_SETS) {
        cli_usage_error(a->cmd, "too many job settings (at most %d)", CLI_MAX_SETS);
        a->error = true;
        return true;
    }
    j->names[j->count] = name;
    j->sets[j->count] = value;
    j->count++;
    return true;
}

bool cli_job_arg(cli_args *a, cli_job_args *j)
{
    const char *v = NULL;
    if (cli_opt(a, "--job", &v)) {
        j->file = v;
        return true;
    }
    if (cli_opt(a, "--set", &v))
        return add(a, j, NULL, v);
    if (cli_opt(a, "--model", &v))
        return add(a, j, "model", v);
    if (cli_opt(a, "--prompt", &v))
        return add(a, j, "prompt", v);
    if (cli_opt(a, "--negative", &v))
        return add(a, j, "negative_prompt", v);
    if (cli_opt(a, "--seed", &v))
        return add(a, j, "seed", v);
    if (cli_opt(a, "--steps", &v))
        return add(a, j, "steps", v);
    return false;
}

static unsigned random_seed(void)
{
    unsigned v = 0;
    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
        v = (unsigned)time(NULL) * 2654435761u;
    return v >> 1;
}

int cli_job_build(const cli_job_args *j, const char *cmd, gen_job **out)
{
    *out = NULL;
    gen_job *job = NULL;
    gen_status st;
    if (j->file) {
        char *text = cli_read_file(j->file, 1u << 20);
        if (!text) {
            fprintf(stderr, "gen %s: cannot read job file \"%s\": %s\n", cmd, j->file,
                    strerror(errno));
            return EXIT_RUNTIME;
        }
        st = gen_job_from_json(&job, text);
        free(text);
        if (st != GEN_OK) {
            fprintf(stderr, "gen %s: job file \"%s\": %s\n", cmd, j->file,
                    gen_last_error_message());
            return EXIT_USAGE;
        }
    } else if (gen_job_create(&job) != GEN_OK) {
        return cli_fail("cannot create a job");
    }
    for (int i = 0; i < j->count; i++) {
        char field[64];
        const char *name = j->names[i], *value = j->sets[i];
        if (!name) {
            const char *eq = strchr(value, '=');
            if (!eq || eq == value || (size_t)(eq - value) >= sizeof(field)) {
                gen_job_destroy(job);
                return cli_usage_error(cmd, "--set expects NAME=VALUE, got \"%s\"", value);
            }
            memcpy(field, value, (size_t)(eq - value));
            field[eq - value] = '\0';
            name = field;
            value = eq + 1;
        }
        st = gen_job_set(job, name, value);
        if (st != GEN_OK) {
            fprintf(stderr, "gen %s: %s\n", cmd, gen_last_error_message());
            gen_job_destroy(job);
            return st == GEN_EINVAL || st == GEN_ENOTFOUND ? EXIT_USAGE : EXIT_RUNTIME;
        }
    }
    /* Without a seed, the CLI draws one below 2^31, so that the seeds of the
     * runs (seed + i) stay distinct within the 32-bit range the queue wraps in,
     * and the seed is visible in the job before it is enqueued. */
    char seed[32];
    if (gen_job_get(job, "seed", seed, sizeof(seed)) == GEN_OK && strcmp(seed, "random") == 0) {
        snprintf(seed, sizeof(seed), "%u", random_seed());
        gen_job_set(job, "seed", seed);
    }
    st = gen_job_validate(job);
    if (st != GEN_OK) {
        fprintf(stderr, "gen %s: %s\n", cmd, gen_last_error_message());
        gen_job_destroy(job);
        return st == GEN_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
    }
    *out = job;
    return EXIT_OK;
}

int cli_open_queue(const cli_env *env, const char *path, bool must_exist, gen_queue **out)
{
    *out = NULL;
    if (must_exist && access(path, F_OK) != 0) {
        fprintf(stderr, "gen: queue file \"%s\" does not exist (`gen queue add` creates it)\n",
                path);
        return EXIT_RUNTIME;
    }
    if (gen_queue_open(out, path, &env->queue_options) != GEN_OK) {
        fprintf(stderr, "gen: cannot open the queue file \"%s\": %s\n", path,
                gen_last_error_message());
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}
