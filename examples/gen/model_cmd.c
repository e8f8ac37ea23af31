/* gen info MODEL: what a model on disk is (gen_model_inspect).
 * gen metadata IMAGE.png: the parameters libgen stored in a PNG
 * (gen_image_read_metadata, include/gen/image.h: wired as soon as that header
 * is in the tree, a stub saying so until then). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"

#if defined(__has_include)
#if __has_include(<gen/image.h>)
#include <gen/image.h>
#define CLI_HAVE_IMAGE_METADATA 1
#endif
#endif

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
    "prompt, negative_prompt, seed, steps, scheduler, guidance, width, height,\n"
    "strength, libgen_version): NAME=VALUE lines, or the JSON object with --json.\n"
    "Exit code 1 when the file is missing, not a PNG, or has no libgen metadata.\n";

#ifdef CLI_HAVE_IMAGE_METADATA
static int print_metadata(const char *image, bool json)
{
    size_t needed = 0;
    gen_status st = gen_image_read_metadata(image, NULL, 0, &needed);
    char *buf = st == GEN_OK ? malloc(needed ? needed : 1) : NULL;
    if (st == GEN_OK && !buf)
        st = GEN_ENOMEM;
    if (st == GEN_OK)
        st = gen_image_read_metadata(image, buf, needed, NULL);
    if (st != GEN_OK) {
        fprintf(stderr, "gen metadata: %s\n", gen_last_error_message());
        free(buf);
        return EXIT_RUNTIME;
    }
    int rc = EXIT_OK;
    if (json) {
        printf("%s\n", buf);
    } else {
        json_t *root = json_loads(buf, 0, NULL);
        if (!json_is_object(root)) {
            fprintf(stderr, "gen metadata: %s: the metadata is not a JSON object\n", image);
            rc = EXIT_RUNTIME;
        } else {
            const char *key;
            json_t *value;
            json_object_foreach(root, key, value)
            {
                if (json_is_string(value)) {
                    printf("%s=%s\n", key, json_string_value(value));
                } else if (json_is_null(value)) {
                    printf("%s=\n", key);
                } else {
                    char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
                    printf("%s=%s\n", key, text ? text : "");
                    free(text);
                }
            }
        }
        json_decref(root);
    }
    free(buf);
    return rc;
}
#endif

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
#ifdef CLI_HAVE_IMAGE_METADATA
    return print_metadata(image, json);
#else
    if (access(image, R_OK) != 0) {
        fprintf(stderr, "gen metadata: cannot read \"%s\": %s\n", image, strerror(errno));
        return EXIT_RUNTIME;
    }
    fprintf(stderr, "gen metadata: not available in this build yet (PNG metadata read-back, "
                    "include/gen/image.h, is not merged)\n");
    return EXIT_RUNTIME;
#endif
}
