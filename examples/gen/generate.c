/* gen generate: one image now, synchronously, on one device, without a queue. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    "  --output FILE   the PNG to write (default: OUTPUT_DIR/gen-<seed>.png, never\n"
    "                  overwriting; output_dir is a context option)\n"
    "  --device ID     the device to run on\n"
    "\n";

/* Ctrl-C during a generation: the handler only sets a flag (it calls no
 * libgen function); the progress callback returns it, which cancels. */
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct gen_state {
    bool tty;
    int64_t start_ns, denoise_ns;
    int32_t last_stage, denoise_first;
} gen_state;

/* One progress line on stderr, redrawn in place on a terminal. */
static int32_t on_progress(int32_t stage, int32_t step, int32_t total, void *user_data)
{
    gen_state *g = user_data;
    int64_t now = cli_now_ns();
    if (stage == GEN_STAGE_DENOISE && g->denoise_ns == 0) {
        g->denoise_ns = now;
        g->denoise_first = step;
    }
    if (g->tty) {
        double rate = 0;
        if (stage == GEN_STAGE_DENOISE && step > g->denoise_first)
            rate = (double)(step - g->denoise_first) / ((double)(now - g->denoise_ns) / 1e9);
        fprintf(stderr, "\r\033[2K%-7s %3d/%-3d", gen_stage_name(stage), step, total);
        if (rate > 0)
            fprintf(stderr, "  %.2f it/s", rate);
        fflush(stderr);
    } else if (stage != g->last_stage) {
        fprintf(stderr, "%s...\n", gen_stage_name(stage));
    }
    g->last_stage = stage;
    return interrupted ? 1 : 0;
}

/* Write the image: to --output (replacing it), else as a new file
 * OUTPUT_DIR/gen-<seed>[-N].png (never overwriting an earlier image, even one
 * another gen writes at the same moment). */
static gen_status save_image(const cli_env *env, gen_job *job, const gen_image *image,
                             const char *output, char *path, size_t size)
{
    if (output) {
        snprintf(path, size, "%s", output);
        return gen_image_save_png(image, path);
    }
    const char *dir = env->options.output_dir;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "gen generate: cannot create the output folder \"%s\": %s\n", dir,
                strerror(errno));
        return GEN_EIO;
    }
    char seed[32] = "0", stem[48];
    gen_job_get(job, "seed", seed, sizeof(seed));
    snprintf(stem, sizeof(stem), "gen-%s", seed);
    return gen_image_save_png_new(image, dir, stem, path, size);
}

/* The synchronous pipeline: a context on the one device, gen_generate on
 * this thread, the PNG (with its parameters as metadata) written atomically. */
static int run_generation(cli_env *env, gen_job *job, const gen_model_info *model,
                          const char *device, const char *output)
{
    (void)model;
    gen_context_options opts = env->options;
    opts.db_path[0] = '\0'; /* no queue: LIBGEN_DB_PATH is for the queue commands */
    if (device) {
        gen_status st = gen_context_options_set(&opts, "generation_devices", device);
        if (st != GEN_OK)
            return cli_fail_input("--device", st);
    }
    char path[GEN_PATH_TEXT_MAX + 64];
    gen_context *ctx = NULL;
    if (gen_context_create(&ctx, &opts) != GEN_OK)
        return cli_fail("cannot create the context");
    gen_state g = {.tty = isatty(STDERR_FILENO) != 0, .start_ns = cli_now_ns(), .last_stage = -1};
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old);
    gen_image *image = NULL;
    gen_status st = gen_generate(&image, ctx, 0, job, on_progress, &g);
    sigaction(SIGINT, &old, NULL);
    if (g.tty)
        fputs("\r\033[2K", stderr);
    int rc = EXIT_OK;
    if (st != GEN_OK) {
        rc = st == GEN_ECANCELED && interrupted
                 ? (fprintf(stderr, "gen generate: interrupted\n"), EXIT_RUNTIME)
                 : cli_fail("generate");
    } else {
        if (save_image(env, job, image, output, path, sizeof(path)) != GEN_OK) {
            rc = cli_fail("cannot write the image");
        } else {
            char seed[32] = "?";
            gen_job_get(job, "seed", seed, sizeof(seed));
            printf("wrote %s (%dx%d, seed %s) on %s in %.1f s\n", path, gen_image_width(image),
                   gen_image_height(image), seed,
                   gen_device_pool_label(gen_context_device_pool(ctx), 0),
                   (double)(cli_now_ns() - g.start_ns) / 1e9);
        }
    }
    gen_image_destroy(image);
    gen_context_destroy(ctx);
    return rc;
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
