/* gen info MODEL: what a model on disk is (gen_model_inspect).
 * gen metadata IMAGE.png: the parameters libgen stored in a PNG (waits for
 * include/gen/image.h). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char info_help[] =
    "usage: gen info MODEL [--json]\n"
    "\n"
    "Describe the model at MODEL, a diffusers folder (model_index.json, unet/,\n"
    "vae/, text_encoder/, ...) or a single .safetensors checkpoint: family,\n"
    "layout, prediction type, whether this build can run it, and per part the\n"
    "weight dtype, tensor count, parameter count and bytes. Only file headers are\n"
    "read. Pickle checkpoints (.ckpt, .pt, .bin) are refused: convert them to\n"
    ".safetensors.\n";

static int model_info_print(const gen_model_info *info, bool json)
{
    size_t parts = gen_model_info_part_count(info);
    uint64_t total = 0;
    for (size_t i = 0; i < parts; i++)
        total += gen_model_info_part_parameters(info, i);
    if (json) {
        printf("{\"path\":");
        json_put_string(stdout, gen_model_info_path(info));
        printf(",\"family\":\"%s\",\"layout\":\"%s\",\"prediction\":\"%s\",\"supported\":%s,"
               "\"parameters\":%llu,\"parts\":[",
               gen_model_family_name(gen_model_info_family(info)),
               gen_model_layout_name(gen_model_info_layout(info)),
               gen_model_prediction_name(gen_model_info_prediction(info)),
               gen_model_info_supported(info) ? "true" : "false", (unsigned long long)total);
        for (size_t i = 0; i < parts; i++) {
            printf("%s{\"name\":", i ? "," : "");
            json_put_string(stdout, gen_model_info_part_name(info, i));
            printf(",\"dtype\":\"%s\",\"tensors\":%llu,\"parameters\":%llu,\"bytes\":%llu}",
                   gen_model_info_part_dtype(info, i),
                   (unsigned long long)gen_model_info_part_tensors(info, i),
                   (unsigned long long)gen_model_info_part_parameters(info, i),
                   (unsigned long long)gen_model_info_part_bytes(info, i));
        }
        printf("]}\n");
        return EXIT_OK;
    }
    printf("model       %s\n", gen_model_info_path(info));
    printf("family      %s%s\n", gen_model_family_name(gen_model_info_family(info)),
           gen_model_info_supported(info) ? "" : " (not supported by this build)");
    printf("layout      %s\n", gen_model_layout_name(gen_model_info_layout(info)));
    printf("prediction  %s\n", gen_model_prediction_name(gen_model_info_prediction(info)));
    printf("parameters  %.1f M\n", (double)total / 1e6);
    printf("\n%-14s %-6s %8s %14s %12s\n", "PART", "DTYPE", "TENSORS", "PARAMETERS", "MiB");
    for (size_t i = 0; i < parts; i++)
        printf("%-14s %-6s %8llu %14llu %12.1f\n", gen_model_info_part_name(info, i),
               gen_model_info_part_dtype(info, i),
               (unsigned long long)gen_model_info_part_tensors(info, i),
               (unsigned long long)gen_model_info_part_parameters(info, i),
               (double)gen_model_info_part_bytes(info, i) / (1024.0 * 1024.0));
    return EXIT_OK;
}

int cmd_info(cli_env *env)
{
    const char *model = NULL;
    bool json = false;
    cli_args a;
    cli_args_init(&a, "info", env->argc, env->argv, 1);
    while (cli_args_more(&a)) {
        if (cli_help(&a)) {
            fputs(info_help, stdout);
            return EXIT_OK;
        } else if (cli_flag_to(&a, "--json", &json)) {
        } else if (!model && cli_positional(&a, &model)) {
        } else {
            cli_unknown(&a);
        }
    }
    if (a.error)
        return EXIT_USAGE;
    if (!model)
        return cli_usage_error("info", "give the path of a model folder or .safetensors file");
    gen_model_info *info = NULL;
    if (gen_model_inspect(&info, model) != GEN_OK) {
        fprintf(stderr, "gen info: %s\n", gen_last_error_message());
        return EXIT_RUNTIME;
    }
    int rc = model_info_print(info, json);
    gen_model_info_destroy(info);
    return rc;
}

static const char metadata_help[] =
    "usage: gen metadata IMAGE.png [--json]\n"
    "\n"
    "Print the generation parameters libgen stored in a PNG it wrote (model,\n"
    "prompt, seed, scheduler, ...), in the job form `gen queue add --job` takes.\n";

int cmd_metadata(cli_env *env)
{
    const char *image = NULL;
    bool json = false;
    cli_args a;
    cli_args_init(&a, "metadata", env->argc, env->argv, 1);
    while (cli_args_more(&a)) {
        if (cli_help(&a)) {
            fputs(metadata_help, stdout);
            return EXIT_OK;
        } else if (cli_flag_to(&a, "--json", &json)) {
        } else if (!image && cli_positional(&a, &image)) {
        } else {
            cli_unknown(&a);
        }
    }
    if (a.error)
        return EXIT_USAGE;
    if (!image)
        return cli_usage_error("metadata", "give the path of a PNG file");
    if (access(image, R_OK) != 0) {
        fprintf(stderr, "gen metadata: cannot read \"%s\": %s\n", image, strerror(errno));
        return EXIT_RUNTIME;
    }
    /* Plugs in here: read the metadata with the image API (include/gen/image.h,
     * not merged yet) and print it as the job JSON (json) or NAME=VALUE lines. */
    (void)json;
    fprintf(stderr, "gen metadata: not available in this build yet (PNG metadata read-back, "
                    "include/gen/image.h, is not merged)\n");
    return EXIT_RUNTIME;
}
