/* gen_job: fields set from text or JSON, each validated as it is set. */
#include "pipeline/job.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/parse.h"
#include "core/utf8.h"

static const char *const tiled_names[] = {"auto", "on", "off"};

static void job_init_defaults(gen_job *job)
{
    memset(job, 0, sizeof(*job));
    job->width = 512;
    job->height = 512;
    job->steps = 20;
    job->guidance = 7.5;
    job->scheduler = GEN__SCHED_EULER_A;
    job->strength = 0.75;
    job->tiled_vae = GEN__TILED_AUTO;
    job->timestep_spacing = -1;
}

static void free_loras(gen_job *job)
{
    for (int i = 0; i < job->lora_count; i++)
        gen__free(job->loras[i].path);
    job->lora_count = 0;
}

static void job_free_fields(gen_job *job)
{
    gen__free(job->model);
    gen__free(job->prompt);
    gen__free(job->negative_prompt);
    gen__free(job->init_image);
    free_loras(job);
}

GEN_API gen_status gen_job_create(gen_job **out)
{
    if (!out)
        return gen__error(GEN_EINVAL, "gen_job_create: out pointer is NULL");
    *out = gen__malloc(sizeof(gen_job));
    if (!*out)
        return gen__error(GEN_ENOMEM, "gen_job_create: cannot allocate");
    job_init_defaults(*out);
    return GEN_OK;
}

GEN_API void gen_job_destroy(gen_job *job)
{
    if (!job)
        return;
    job_free_fields(job);
    gen__free(job);
}

/* Duplicate an optional string; *ok is cleared on allocation failure. */
static char *dup_opt(const char *s, bool *ok)
{
    if (!s)
        return NULL;
    char *d = gen__strdup(s);
    if (!d)
        *ok = false;
    return d;
}

GEN_API gen_status gen_job_clone(gen_job **out, const gen_job *job)
{
    if (!out || !job)
        return gen__error(GEN_EINVAL, "gen_job_clone: NULL argument");
    *out = NULL;
    gen_job *c = gen__malloc(sizeof(*c));
    if (!c)
        return gen__error(GEN_ENOMEM, "gen_job_clone: cannot allocate");
    *c = *job;
    bool ok = true;
    c->model = dup_opt(job->model, &ok);
    c->prompt = dup_opt(job->prompt, &ok);
    c->negative_prompt = dup_opt(job->negative_prompt, &ok);
    c->init_image = dup_opt(job->init_image, &ok);
    for (int i = 0; i < job->lora_count; i++)
        c->loras[i].path = dup_opt(job->loras[i].path, &ok);
    if (!ok) {
        gen_job_destroy(c);
        return gen__error(GEN_ENOMEM, "gen_job_clone: cannot allocate");
    }
    *out = c;
    return GEN_OK;
}

/* --- field setters: parse `value`, store into `job` (a scratch copy) ---------------------- */

typedef gen_status (*field_setter)(gen_job *job, const char *name, const char *value);

static gen_status replace_text(char **field, const char *name, const char *value, size_t max_len,
                               bool empty_ok)
{
    size_t len = strlen(value);
    if (!empty_ok && len == 0)
        return gen__error(GEN_EINVAL, "%s: must not be empty", name);
    if (len > max_len)
        return gen__error(GEN_EINVAL, "%s: %zu bytes long, at most %zu are allowed", name, len,
                          max_len);
    if (!gen__utf8_valid(value, len))
        return gen__error(GEN_EINVAL, "%s: not valid UTF-8", name);
    char *copy = gen__strdup(value);
    if (!copy)
        return gen__error(GEN_ENOMEM, "%s: cannot allocate", name);
    gen__free(*field);
    *field = copy;
    return GEN_OK;
}

static gen_status set_model(gen_job *j, const char *n, const char *v)
{
    return replace_text(&j->model, n, v, 4095, false);
}
static gen_status set_prompt(gen_job *j, const char *n, const char *v)
{
    return replace_text(&j->prompt, n, v, GEN__JOB_MAX_PROMPT, false);
}
static gen_status set_negative(gen_job *j, const char *n, const char *v)
{
    return replace_text(&j->negative_prompt, n, v, GEN__JOB_MAX_PROMPT, true);
}
static gen_status set_init_image(gen_job *j, const char *n, const char *v)
{
    if (v[0] == '\0') {
        gen__free(j->init_image);
        j->init_image = NULL;
        return GEN_OK;
    }
    return replace_text(&j->init_image, n, v, 4095, false);
}

static gen_status set_int_range(int *field, const char *name, const char *value, int min, int max)
{
    int64_t v;
    gen_status st = gen__parse_int64(name, value, min, max, &v);
    if (st != GEN_OK)
        return st;
    *field = (int)v;
    return GEN_OK;
}

static gen_status set_size(int *field, const char *name, const char *value)
{
    gen_status st = set_int_range(field, name, value, 64, 4096);
    if (st == GEN_OK && *field % 8 != 0)
        return gen__error(GEN_EINVAL, "%s: %d is not a multiple of 8", name, *field);
    return st;
}

static gen_status set_width(gen_job *j, const char *n, const char *v)
{
    int w = j->width;
    gen_status st = set_size(&w, n, v);
    if (st == GEN_OK)
        j->width = w;
    return st;
}
static gen_status set_height(gen_job *j, const char *n, const char *v)
{
    int h = j->height;
    gen_status st = set_size(&h, n, v);
    if (st == GEN_OK)
        j->height = h;
    return st;
}
static gen_status set_steps(gen_job *j, const char *n, const char *v)
{
    return set_int_range(&j->steps, n, v, 1, 1000);
}
static gen_status set_clip_skip(gen_job *j, const char *n, const char *v)
{
    return set_int_range(&j->clip_skip, n, v, 0, 11);
}

static gen_status parse_double(const char *name, const char *value, double min, double max,
                               bool min_exclusive, double *out)
{
    return gen__parse_double(name, value, min, max, min_exclusive, out);
}

static gen_status set_guidance(gen_job *j, const char *n, const char *v)
{
    return parse_double(n, v, 0.0, 100.0, false, &j->guidance);
}
static gen_status set_strength(gen_job *j, const char *n, const char *v)
{
    return parse_double(n, v, 0.0, 1.0, true, &j->strength);
}

static gen_status set_seed(gen_job *j, const char *n, const char *v)
{
    if (strcmp(v, "random") == 0) {
        j->has_seed = false;
        return GEN_OK;
    }
    const char *p = v;
    if (*p < '0' || *p > '9')
        return gen__error(GEN_EINVAL, "%s: \"%s\" is not a seed (0..4294967295 or \"random\")",
                          n, v);
    errno = 0;
    char *end;
    unsigned long long s = strtoull(p, &end, 10);
    if (*end != '\0' || errno == ERANGE || s > UINT32_MAX)
        return gen__error(GEN_EINVAL, "%s: \"%s\" is not a seed (0..4294967295 or \"random\")",
                          n, v);
    j->seed = s;
    j->has_seed = true;
    return GEN_OK;
}

static gen_status set_scheduler(gen_job *j, const char *n, const char *v)
{
    gen_status st = gen__sched_kind_from_name(v, &j->scheduler);
    return st == GEN_OK ? GEN_OK : gen__error_prefix("%s: ", n);
}

static gen_status set_karras(gen_job *j, const char *n, const char *v)
{
    return gen__parse_bool(n, v, &j->karras);
}

static gen_status set_tiled(gen_job *j, const char *n, const char *v)
{
    for (int i = 0; i < 3; i++) {
        if (strcmp(v, tiled_names[i]) == 0) {
            j->tiled_vae = (gen__tiled_mode)i;
            return GEN_OK;
        }
    }
    return gen__error(GEN_EINVAL, "%s: \"%s\" is not auto, on or off", n, v);
}

static const struct {
    const char *name;
    int value;
} spacing_names[] = {{"model", -1},
                     {"leading", GEN__SPACING_LEADING},
                     {"trailing", GEN__SPACING_TRAILING},
                     {"linspace", GEN__SPACING_LINSPACE}};

static gen_status set_spacing(gen_job *j, const char *n, const char *v)
{
    for (size_t i = 0; i < sizeof(spacing_names) / sizeof(spacing_names[0]); i++) {
        if (strcmp(v, spacing_names[i].name) == 0) {
            j->timestep_spacing = spacing_names[i].value;
            return GEN_OK;
        }
    }
    return gen__error(GEN_EINVAL, "%s: \"%s\" is not model, leading, trailing or linspace", n, v);
}

static void get_spacing(const gen_job *j, char *b, size_t s)
{
    for (size_t i = 0; i < sizeof(spacing_names) / sizeof(spacing_names[0]); i++)
        if (spacing_names[i].value == j->timestep_spacing)
            snprintf(b, s, "%s", spacing_names[i].name);
}

static gen_status add_lora(gen_job *j, const char *path, size_t path_len, double weight)
{
    if (j->lora_count == GEN__JOB_MAX_LORAS)
        return gen__error(GEN_EINVAL, "loras: at most %d LoRAs", GEN__JOB_MAX_LORAS);
    if (path_len == 0)
        return gen__error(GEN_EINVAL, "loras: empty path");
    if (!isfinite(weight) || weight < -10.0 || weight > 10.0)
        return gen__error(GEN_EINVAL, "loras: weight %g is out of range [-10, 10]", weight);
    char *copy = gen__strndup(path, path_len);
    if (!copy)
        return gen__error(GEN_ENOMEM, "loras: cannot allocate");
    j->loras[j->lora_count].path = copy;
    j->loras[j->lora_count].weight = weight;
    j->lora_count++;
    return GEN_OK;
}

/* "a.safetensors:0.8,b.safetensors" (weight 1 when omitted). The text after
 * the last ':' is the weight when it is a number, so paths may contain ':'. */
static gen_status set_loras(gen_job *j, const char *n, const char *v)
{
    free_loras(j);
    const char *p = v;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *colon = NULL;
        for (size_t i = 0; i < len; i++)
            if (p[i] == ':')
                colon = p + i;
        double weight = 1.0;
        size_t path_len = len;
        if (colon) {
            char num[64];
            size_t nlen = len - (size_t)(colon - p) - 1;
            if (nlen < sizeof(num)) {
                memcpy(num, colon + 1, nlen);
                num[nlen] = '\0';
            }
            bool numeric = nlen > 0 && nlen < sizeof(num) && strpbrk(num, "/\\") == NULL &&
                           strspn(num, "+-.0123456789eE") == nlen &&
                           strpbrk(num, "0123456789") != NULL;
            if (numeric) {
                gen_status st = parse_double(n, num, -10.0, 10.0, false, &weight);
                if (st != GEN_OK)
                    return st;
                path_len = (size_t)(colon - p);
            }
        }
        gen_status st = add_lora(j, p, path_len, weight);
        if (st != GEN_OK)
            return st;
        p += len + (comma ? 1 : 0);
    }
    return GEN_OK;
}

/* --- getters -------------------------------------------------------------------------------- */

typedef void (*field_getter)(const gen_job *job, char *buf, size_t size);

static void get_str(const char *s, char *buf, size_t size)
{
    snprintf(buf, size, "%s", s ? s : "");
}
static void get_model(const gen_job *j, char *b, size_t s) { get_str(j->model, b, s); }
static void get_prompt(const gen_job *j, char *b, size_t s) { get_str(j->prompt, b, s); }
static void get_negative(const gen_job *j, char *b, size_t s) { get_str(j->negative_prompt, b, s); }
static void get_init_image(const gen_job *j, char *b, size_t s) { get_str(j->init_image, b, s); }
static void get_width(const gen_job *j, char *b, size_t s) { snprintf(b, s, "%d", j->width); }
static void get_height(const gen_job *j, char *b, size_t s) { snprintf(b, s, "%d", j->height); }
static void get_steps(const gen_job *j, char *b, size_t s) { snprintf(b, s, "%d", j->steps); }
static void get_clip_skip(const gen_job *j, char *b, size_t s) { snprintf(b, s, "%d", j->clip_skip); }
static void get_guidance(const gen_job *j, char *b, size_t s) { snprintf(b, s, "%.17g", j->guidance); }
static void get_strength(const gen_job *j, char *b, size_t s) { snprintf(b, s, "%.17g", j->strength); }
static void get_seed(const gen_job *j, char *b, size_t s)
{
    if (j->has_seed)
        snprintf(b, s, "%" PRIu64, j->seed);
    else
        snprintf(b, s, "random");
}
static void get_scheduler(const gen_job *j, char *b, size_t s) { get_str(gen__sched_kind_name(j->scheduler), b, s); }
static void get_karras(const gen_job *j, char *b, size_t s) { get_str(j->karras ? "true" : "false", b, s); }
static void get_tiled(const gen_job *j, char *b, size_t s) { get_str(tiled_names[j->tiled_vae], b, s); }
static void get_loras(const gen_job *j, char *b, size_t s)
{
    size_t used = 0;
    b[0] = '\0';
    for (int i = 0; i < j->lora_count && used < s; i++)
        used += (size_t)snprintf(b + used, s - used, "%s%s:%.17g", i ? "," : "", j->loras[i].path,
                                 j->loras[i].weight);
}

/* Text needed for the largest field (a prompt) plus room. */
#define FIELD_TEXT_MAX (GEN__JOB_MAX_PROMPT + 1)

enum field_kind { FIELD_STRING, FIELD_INT, FIELD_NUMBER, FIELD_BOOL, FIELD_SEED, FIELD_LORAS };

static const struct field_def {
    const char *name;
    enum field_kind kind;
    field_setter set;
    field_getter get;
} fields[] = {
    {"model", FIELD_STRING, set_model, get_model},
    {"prompt", FIELD_STRING, set_prompt, get_prompt},
    {"negative_prompt", FIELD_STRING, set_negative, get_negative},
    {"width", FIELD_INT, set_width, get_width},
    {"height", FIELD_INT, set_height, get_height},
    {"steps", FIELD_INT, set_steps, get_steps},
    {"guidance", FIELD_NUMBER, set_guidance, get_guidance},
    {"seed", FIELD_SEED, set_seed, get_seed},
    {"scheduler", FIELD_STRING, set_scheduler, get_scheduler},
    {"karras", FIELD_BOOL, set_karras, get_karras},
    {"clip_skip", FIELD_INT, set_clip_skip, get_clip_skip},
    {"init_image", FIELD_STRING, set_init_image, get_init_image},
    {"strength", FIELD_NUMBER, set_strength, get_strength},
    {"tiled_vae", FIELD_STRING, set_tiled, get_tiled},
    {"timestep_spacing", FIELD_STRING, set_spacing, get_spacing},
    {"loras", FIELD_LORAS, set_loras, get_loras},
};
#define FIELD_COUNT (sizeof(fields) / sizeof(fields[0]))

static const struct field_def *find_field(const char *name)
{
    for (size_t i = 0; i < FIELD_COUNT; i++)
        if (strcmp(fields[i].name, name) == 0)
            return &fields[i];
    return NULL;
}

static gen_status unknown_field(const char *name)
{
    char known[512];
    size_t used = 0;
    for (size_t i = 0; i < FIELD_COUNT && used < sizeof(known); i++)
        used += (size_t)snprintf(known + used, sizeof(known) - used, "%s%s", i ? ", " : "",
                                 fields[i].name);
    return gen__error(GEN_ENOTFOUND, "unknown job field \"%s\" (known: %s)", name, known);
}

GEN_API gen_status gen_job_set(gen_job *job, const char *name, const char *value)
{
    if (!job || !name || !value)
        return gen__error(GEN_EINVAL, "gen_job_set: NULL argument");
    const struct field_def *f = find_field(name);
    if (!f)
        return unknown_field(name);
    /* Set on a clone so that a failure leaves the job as it was. */
    gen_job *scratch = NULL;
    gen_status st = gen_job_clone(&scratch, job);
    if (st != GEN_OK)
        return st;
    st = f->set(scratch, name, value);
    if (st != GEN_OK) {
        gen_job_destroy(scratch);
        return st;
    }
    job_free_fields(job);
    *job = *scratch;
    gen__free(scratch);
    return GEN_OK;
}

GEN_API gen_status gen_job_get(const gen_job *job, const char *name, char *buf, size_t buf_size)
{
    if (!job || !name || !buf || buf_size == 0)
        return gen__error(GEN_EINVAL, "gen_job_get: NULL argument or empty buffer");
    const struct field_def *f = find_field(name);
    if (!f)
        return unknown_field(name);
    char *text = gen__malloc(FIELD_TEXT_MAX + 64 * GEN__JOB_MAX_LORAS * 4);
    if (!text)
        return gen__error(GEN_ENOMEM, "gen_job_get: cannot allocate");
    size_t cap = FIELD_TEXT_MAX + 64 * GEN__JOB_MAX_LORAS * 4;
    f->get(job, text, cap);
    size_t len = strlen(text);
    gen_status st = GEN_OK;
    if (len >= buf_size)
        st = gen__error(GEN_EINVAL, "%s: value needs %zu bytes, buffer has %zu", name, len + 1,
                        buf_size);
    else
        memcpy(buf, text, len + 1);
    gen__free(text);
    return st;
}

GEN_API gen_status gen_job_add_lora(gen_job *job, const char *path, double weight)
{
    if (!job || !path)
        return gen__error(GEN_EINVAL, "gen_job_add_lora: NULL argument");
    return add_lora(job, path, strlen(path), weight);
}

GEN_API gen_status gen_job_validate(gen_job *job)
{
    if (!job)
        return gen__error(GEN_EINVAL, "gen_job_validate: job is NULL");
    if (!job->model)
        return gen__error(GEN_EINVAL, "job: \"model\" is not set");
    if (!job->prompt)
        return gen__error(GEN_EINVAL, "job: \"prompt\" is not set");
    if (job->karras && (job->scheduler == GEN__SCHED_DDIM || job->scheduler == GEN__SCHED_EULER_A))
        return gen__error(GEN_EINVAL, "job: karras sigmas are not available with scheduler %s "
                                      "(use euler or dpmpp_2m)",
                          gen__sched_kind_name(job->scheduler));
    if (job->init_image) {
        /* diffusers runs int(steps * strength) denoising steps: at least one. */
        if ((int)(job->steps * job->strength) < 1)
            return gen__error(GEN_EINVAL,
                              "job: steps %d x strength %g leaves no denoising step (raise one "
                              "of them)",
                              job->steps, job->strength);
    }
    if (!job->has_seed) {
        uint64_t seed = 0;
        if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
            seed = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull;
        /* 32 bits: torch seeds its mt19937 with the low 32 bits anyway, and the
         * queue and most front ends keep seeds in that range. */
        job->seed = seed & 0xFFFFFFFFu;
        job->has_seed = true;
    }
    return GEN_OK;
}

/* --- JSON ----------------------------------------------------------------------------------- */

static gen_status json_value_text(const struct field_def *f, json_t *v, char *text, size_t size)
{
    switch (f->kind) {
    case FIELD_STRING:
        if (!json_is_string(v))
            return gen__error(GEN_EINVAL, "job JSON: \"%s\" must be a string", f->name);
        if (json_string_length(v) >= size || strlen(json_string_value(v)) != json_string_length(v))
            return gen__error(GEN_EINVAL, "job JSON: \"%s\" is too long or contains NUL",
                              f->name);
        snprintf(text, size, "%s", json_string_value(v));
        return GEN_OK;
    case FIELD_INT:
        if (!json_is_integer(v))
            return gen__error(GEN_EINVAL, "job JSON: \"%s\" must be an integer", f->name);
        snprintf(text, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return GEN_OK;
    case FIELD_NUMBER:
        if (!json_is_number(v))
            return gen__error(GEN_EINVAL, "job JSON: \"%s\" must be a number", f->name);
        snprintf(text, size, "%.17g", json_number_value(v));
        return GEN_OK;
    case FIELD_BOOL:
        if (!json_is_boolean(v))
            return gen__error(GEN_EINVAL, "job JSON: \"%s\" must be true or false", f->name);
        snprintf(text, size, "%s", json_is_true(v) ? "true" : "false");
        return GEN_OK;
    case FIELD_SEED:
        if (json_is_string(v) && strcmp(json_string_value(v), "random") == 0) {
            snprintf(text, size, "random");
            return GEN_OK;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return gen__error(GEN_EINVAL, "job JSON: \"seed\" must be a non-negative integer or "
                                          "\"random\"");
        snprintf(text, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return GEN_OK;
    case FIELD_LORAS:
        break;
    }
    return gen__error(GEN_EINTERNAL, "job JSON: field kind of %s", f->name);
}

static gen_status loras_from_json(gen_job *job, json_t *v)
{
    if (!json_is_array(v))
        return gen__error(GEN_EINVAL, "job JSON: \"loras\" must be an array of {\"path\", "
                                      "\"weight\"}");
    free_loras(job);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        json_t *path = json_object_get(e, "path");
        json_t *weight = json_object_get(e, "weight");
        if (!json_is_object(e) || !json_is_string(path) || (weight && !json_is_number(weight)) ||
            json_object_size(e) > (weight ? 2u : 1u))
            return gen__error(GEN_EINVAL, "job JSON: loras[%zu] must be {\"path\": string, "
                                          "\"weight\": number}",
                              i);
        gen_status st = add_lora(job, json_string_value(path), strlen(json_string_value(path)),
                                 weight ? json_number_value(weight) : 1.0);
        if (st != GEN_OK)
            return gen__error_prefix("job JSON: loras[%zu]: ", i);
    }
    return GEN_OK;
}

GEN_API gen_status gen_job_from_json(gen_job **out, const char *json)
{
    if (!out || !json)
        return gen__error(GEN_EINVAL, "gen_job_from_json: NULL argument");
    *out = NULL;
    json_error_t err;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return gen__error(GEN_EFORMAT, "job JSON: %s (line %d, column %d)", err.text, err.line,
                          err.column);
    if (!json_is_object(root)) {
        json_decref(root);
        return gen__error(GEN_EFORMAT, "job JSON: not an object");
    }
    gen_job *job = NULL;
    gen_status st = gen_job_create(&job);
    char *text = st == GEN_OK ? gen__malloc(FIELD_TEXT_MAX) : NULL;
    if (st == GEN_OK && !text)
        st = gen__error(GEN_ENOMEM, "job JSON: cannot allocate");
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (st != GEN_OK)
            break;
        const struct field_def *f = find_field(key);
        if (!f) {
            st = unknown_field(key);
            break;
        }
        if (f->kind == FIELD_LORAS) {
            st = loras_from_json(job, value);
            continue;
        }
        st = json_value_text(f, value, text, FIELD_TEXT_MAX);
        if (st == GEN_OK)
            st = f->set(job, key, text);
    }
    gen__free(text);
    json_decref(root);
    if (st != GEN_OK) {
        gen_job_destroy(job);
        return st;
    }
    *out = job;
    return GEN_OK;
}

static int set_str(json_t *o, const char *key, const char *s)
{
    return s ? json_object_set_new(o, key, json_string(s)) : 0;
}

GEN_API gen_status gen_job_to_json(const gen_job *job, char *buf, size_t buf_size, size_t *needed)
{
    if (!job)
        return gen__error(GEN_EINVAL, "gen_job_to_json: job is NULL");
    json_t *o = json_object();
    int bad = !o;
    bad |= set_str(o, "model", job->model);
    bad |= set_str(o, "prompt", job->prompt);
    bad |= set_str(o, "negative_prompt", job->negative_prompt);
    bad |= json_object_set_new(o, "width", json_integer(job->width));
    bad |= json_object_set_new(o, "height", json_integer(job->height));
    bad |= json_object_set_new(o, "steps", json_integer(job->steps));
    bad |= json_object_set_new(o, "guidance", json_real(job->guidance));
    if (job->has_seed)
        bad |= json_object_set_new(o, "seed", json_integer((json_int_t)job->seed));
    bad |= set_str(o, "scheduler", gen__sched_kind_name(job->scheduler));
    bad |= json_object_set_new(o, "karras", json_boolean(job->karras));
    bad |= json_object_set_new(o, "clip_skip", json_integer(job->clip_skip));
    if (job->init_image) {
        bad |= set_str(o, "init_image", job->init_image);
        bad |= json_object_set_new(o, "strength", json_real(job->strength));
    }
    bad |= set_str(o, "tiled_vae", tiled_names[job->tiled_vae]);
    if (job->timestep_spacing >= 0) {
        char spacing[16];
        get_spacing(job, spacing, sizeof(spacing));
        bad |= set_str(o, "timestep_spacing", spacing);
    }
    if (job->lora_count) {
        json_t *arr = json_array();
        bad |= !arr;
        for (int i = 0; arr && i < job->lora_count; i++) {
            json_t *l = json_pack("{s:s, s:f}", "path", job->loras[i].path, "weight",
                                  job->loras[i].weight);
            bad |= !l || json_array_append_new(arr, l);
        }
        bad |= json_object_set_new(o, "loras", arr);
    }
    char *text = bad ? NULL : json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!text)
        return gen__error(GEN_ENOMEM, "gen_job_to_json: cannot build the JSON");
    size_t len = strlen(text);
    if (needed)
        *needed = len + 1;
    gen_status st = GEN_OK;
    if (!buf || buf_size <= len)
        st = gen__error(GEN_EINVAL, "gen_job_to_json: needs %zu bytes, buffer has %zu", len + 1,
                        buf ? buf_size : 0);
    else
        memcpy(buf, text, len + 1);
    free(text);
    return st;
}
