/* Job JSON as the queue sees it: one JSON object, bounded in size. The full
 * schema (prompt, size, steps, ...) is validated by the pipeline; the queue
 * only needs "model" (affinity) and "seed" (run increments). */
#include <jansson.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "queue/queue_internal.h"

#define MODEL_KEY_MAX 1024
#define SEED_MAX 0xFFFFFFFFll /* seeds are 32-bit, as in the reference server */

static gen_status load(const char *text, size_t len, size_t max_bytes, json_t **out)
{
    *out = NULL;
    if (!text)
        return gen__error(GEN_EINVAL, "job: the JSON text is NULL");
    if (len > max_bytes)
        return gen__error(GEN_EINVAL, "job: %zu bytes of JSON, more than max_job_bytes (%zu)", len,
                          max_bytes);
    if (len == 0)
        return gen__error(GEN_EFORMAT, "job: the JSON text is empty");
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return gen__error(GEN_EFORMAT, "job: malformed JSON at line %d column %d: %s", err.line,
                          err.column, err.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return gen__error(GEN_EFORMAT, "job: the JSON must be an object ({...})");
    }
    *out = root;
    return GEN_OK;
}

static gen_status extract(json_t *root, gen__queue_job_info *out)
{
    json_t *model = json_object_get(root, "model");
    if (model) {
        if (!json_is_string(model))
            return gen__error(GEN_EFORMAT, "job: \"model\" must be a string");
        size_t n = json_string_length(model);
        const char *s = json_string_value(model);
        if (n == 0 || n > MODEL_KEY_MAX || memchr(s, '\0', n))
            return gen__error(GEN_EFORMAT,
                              "job: \"model\" must be 1..%d bytes of text without NUL (got %zu)",
                              MODEL_KEY_MAX, n);
        out->model = gen__strndup(s, n);
        if (!out->model)
            return gen__error(GEN_ENOMEM, "job: cannot allocate the model key");
    }
    json_t *seed = json_object_get(root, "seed");
    if (seed && !json_is_null(seed)) {
        if (!json_is_integer(seed) || json_integer_value(seed) < 0 ||
            json_integer_value(seed) > SEED_MAX)
            return gen__error(GEN_EFORMAT, "job: \"seed\" must be an integer in 0..%lld",
                              (long long)SEED_MAX);
        out->has_seed = true;
        out->seed = (int64_t)json_integer_value(seed);
    }
    return GEN_OK;
}

gen_status gen__queue_job_parse(const char *text, size_t len, size_t max_bytes,
                                gen__queue_job_info *out)
{
    memset(out, 0, sizeof(*out));
    json_t *root;
    gen_status st = load(text, len, max_bytes, &root);
    if (st != GEN_OK)
        return st;
    st = extract(root, out);
    json_decref(root);
    if (st != GEN_OK)
        gen__queue_job_info_free(out);
    return st;
}

void gen__queue_job_info_free(gen__queue_job_info *info)
{
    gen__free(info->model);
    memset(info, 0, sizeof(*info));
}

struct gen__queue_reseeder {
    json_t *root;
};

gen_status gen__queue_reseeder_new(const char *text, size_t len, gen__queue_reseeder **out)
{
    *out = NULL;
    gen__queue_reseeder *r = gen__calloc(1, sizeof(*r));
    if (!r)
        return gen__error(GEN_ENOMEM, "job: cannot allocate a reseeder");
    gen_status st = load(text, len, len, &r->root);
    if (st != GEN_OK) {
        gen__free(r);
        return st;
    }
    *out = r;
    return GEN_OK;
}

void gen__queue_reseeder_free(gen__queue_reseeder *r)
{
    if (!r)
        return;
    json_decref(r->root);
    gen__free(r);
}

gen_status gen__queue_reseed(gen__queue_reseeder *r, int64_t seed, char **buf, size_t *cap)
{
    json_t *value = json_integer((json_int_t)(seed & SEED_MAX));
    if (!value || json_object_set_new(r->root, "seed", value) != 0)
        return gen__error(GEN_ENOMEM, "job: cannot set \"seed\"");
    size_t need = json_dumpb(r->root, NULL, 0, JSON_COMPACT);
    if (need == 0)
        return gen__error(GEN_ENOMEM, "job: cannot serialise the job");
    if (need + 1 > *cap) {
        char *grown = gen__realloc(*buf, need + 1);
        if (!grown)
            return gen__error(GEN_ENOMEM, "job: cannot allocate %zu bytes for the job", need + 1);
        *buf = grown;
        *cap = need + 1;
    }
    json_dumpb(r->root, *buf, need, JSON_COMPACT);
    (*buf)[need] = '\0';
    return GEN_OK;
}

gen_status gen__queue_job_with_seed(const char *text, size_t len, int64_t seed, char **out)
{
    *out = NULL;
    gen__queue_reseeder *r;
    gen_status st = gen__queue_reseeder_new(text, len, &r);
    if (st != GEN_OK)
        return st;
    size_t cap = 0;
    st = gen__queue_reseed(r, seed, out, &cap);
    gen__queue_reseeder_free(r);
    if (st != GEN_OK) {
        gen__free(*out);
        *out = NULL;
    }
    return st;
}
