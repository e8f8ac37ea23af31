/* Private to lib/model/model*.c: the model struct and the helpers the two
 * layout loaders share. */
#ifndef GEN_MODEL_MODEL_INTERNAL_H
#define GEN_MODEL_MODEL_INTERNAL_H

#include "model/model.h"

typedef struct gen__model_part {
    gen__st_view *tensors; /* sorted by name after load; names owned */
    size_t count, cap;
    bool present;
} gen__model_part;

struct gen__model {
    char *path;
    char *tokenizer_dir; /* NULL when none */
    gen__layout layout;
    gen__family family;
    gen__prediction prediction;
    bool supported;
    bool configs_from_files;
    gen__st_file **files;
    size_t n_files, cap_files;
    gen__model_part parts[GEN__PART_COUNT];
    gen__unet_config unet;
    gen__vae_config vae;
    gen__text_config text;
    gen__scheduler_config scheduler;
    gen__model_index index;
    bool has_index;
};

/* Keep an open file for the model's lifetime (closed with it, even on failure). */
gen_status gen__model_keep_file(gen__model *m, gen__st_file *f);
/* Add a view under `name` (copied) to a part. */
gen_status gen__model_add(gen__model *m, gen__part part, const gen__st_view *view,
                          const char *name);
/* Sort every part and refuse two tensors with one name. */
gen_status gen__model_finish_parts(gen__model *m);

gen_status gen__model_load_folder(gen__model *m, const gen__model_open_options *opts);
gen_status gen__model_load_single(gen__model *m, const gen__model_open_options *opts);

/* Read <dir>/<sub>/<file> configs (scheduler optional) into m. */
gen_status gen__model_read_configs(gen__model *m, const char *dir, bool need_scheduler);
/* Default scheduler config of a family (the one its reference repository ships). */
gen_status gen__model_default_scheduler(gen__model *m);

/* Remember <dir>/tokenizer when it holds vocab.json. */
gen_status gen__model_find_tokenizer(gen__model *m, const char *dir);

bool gen__path_is_dir(const char *path);
bool gen__path_is_file(const char *path);

#endif
