#include "context/options.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/parse.h"
#include "core/versioned.h"
#include "device/device_spec.h"
#include "pipeline/engine.h"

/* Size of gen_context_options at each version (index = version). When fields
 * are appended, the previous entry becomes offsetof(first new field). */
static const size_t options_size_by_version[] = {
    0,
    offsetof(gen_context_options, gpu_dtype), /* 1 */
    sizeof(gen_context_options),              /* 2: gpu_dtype */
};

_Static_assert(sizeof(options_size_by_version) / sizeof(options_size_by_version[0]) ==
                   GEN_CONTEXT_OPTIONS_VERSION + 1,
               "one size per options version");

/* --- one setter and getter per option ---------------------------------------------------- */

typedef gen_status (*option_setter)(gen_context_options *opts, const char *name,
                                    const char *value);
typedef void (*option_getter)(const gen_context_options *opts, char *buf, size_t size);

static gen_status set_text(char *field, size_t field_size, const char *name, const char *value)
{
    size_t len = strlen(value);
    if (len >= field_size)
        return gen__error(GEN_EINVAL, "%s: value is %zu bytes long, at most %zu are allowed",
                          name, len, field_size - 1);
    memcpy(field, value, len + 1);
    return GEN_OK;
}

static gen_status set_devices(gen_context_options *o, const char *name, const char *value)
{
    gen__device_spec spec;
    gen_status st = gen__device_spec_parse(value, &spec);
    if (st != GEN_OK)
        return st;
    char canonical[GEN_DEVICES_TEXT_MAX];
    st = gen__device_spec_format(&spec, canonical, sizeof(canonical));
    if (st != GEN_OK)
        return st;
    return set_text(o->generation_devices, sizeof(o->generation_devices), name, canonical);
}

static gen_status set_db_path(gen_context_options *o, const char *name, const char *value)
{
    return set_text(o->db_path, sizeof(o->db_path), name, value);
}

static gen_status set_output_dir(gen_context_options *o, const char *name, const char *value)
{
    if (value[0] == '\0')
        return gen__error(GEN_EINVAL, "%s: must not be empty (use \".\" for the current directory)",
                          name);
    return set_text(o->output_dir, sizeof(o->output_dir), name, value);
}

static gen_status set_max_cache_ram(gen_context_options *o, const char *name, const char *value)
{
    if (strcmp(value, "auto") == 0) {
        o->max_cache_ram = 0;
        return GEN_OK;
    }
    return gen__parse_size(name, value, &o->max_cache_ram);
}

static gen_status set_working_mem(gen_context_options *o, const char *name, const char *value)
{
    return gen__parse_size(name, value, &o->device_working_mem);
}

static gen_status set_log_level(gen_context_options *o, const char *name, const char *value)
{
    for (int level = GEN_LOG_ERROR; level <= GEN_LOG_TRACE; level++) {
        if (strcmp(value, gen_log_level_name((gen_log_level)level)) == 0) {
            o->log_level = level;
            return GEN_OK;
        }
    }
    if (strcmp(value, "warning") == 0) {
        o->log_level = GEN_LOG_WARN;
        return GEN_OK;
    }
    int64_t level;
    if (gen__parse_int64(name, value, GEN_LOG_ERROR, GEN_LOG_TRACE, &level) != GEN_OK)
        return gen__error(GEN_EINVAL,
                          "%s: \"%s\" is not a log level (use error, warn, info, debug, trace "
                          "or 0..4)",
                          name, value);
    o->log_level = (int32_t)level;
    return GEN_OK;
}

static gen_status set_gpu_dtype(gen_context_options *o, const char *name, const char *value)
{
    gen__gpu_dtype parsed;
    gen_status st = gen__gpu_dtype_parse(name, value, &parsed);
    if (st != GEN_OK)
        return st;
    return set_text(o->gpu_dtype, sizeof(o->gpu_dtype), name, value);
}

static void get_devices(const gen_context_options *o, char *buf, size_t size)
{
    snprintf(buf, size, "%s", o->generation_devices);
}
static void get_db_path(const gen_context_options *o, char *buf, size_t size)
{
    snprintf(buf, size, "%s", o->db_path);
}
static void get_output_dir(const gen_context_options *o, char *buf, size_t size)
{
    snprintf(buf, size, "%s", o->output_dir);
}
static void get_max_cache_ram(const gen_context_options *o, char *buf, size_t size)
{
    if (o->max_cache_ram == 0)
        snprintf(buf, size, "auto");
    else
        snprintf(buf, size, "%" PRIu64, o->max_cache_ram);
}
static void get_working_mem(const gen_context_options *o, char *buf, size_t size)
{
    snprintf(buf, size, "%" PRIu64, o->device_working_mem);
}
static void get_log_level(const gen_context_options *o, char *buf, size_t size)
{
    snprintf(buf, size, "%s", gen_log_level_name((gen_log_level)o->log_level));
}

static void get_gpu_dtype(const gen_context_options *o, char *buf, size_t size)
{
    snprintf(buf, size, "%s", o->gpu_dtype);
}

static const struct option_def {
    const char *name;
    uint32_t since_version; /* first options version that has the field */
    option_setter set;
    option_getter get;
} option_defs[] = {
    {"generation_devices", 1, set_devices, get_devices},
    {"db_path", 1, set_db_path, get_db_path},
    {"output_dir", 1, set_output_dir, get_output_dir},
    {"max_cache_ram", 1, set_max_cache_ram, get_max_cache_ram},
    {"device_working_mem", 1, set_working_mem, get_working_mem},
    {"log_level", 1, set_log_level, get_log_level},
    {"gpu_dtype", 2, set_gpu_dtype, get_gpu_dtype},
};

#define OPTION_COUNT (sizeof(option_defs) / sizeof(option_defs[0]))

static const struct option_def *find_option(const char *name)
{
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        if (strcmp(option_defs[i].name, name) == 0)
            return &option_defs[i];
    }
    return NULL;
}

static gen_status unknown_option(const char *name)
{
    char known[512];
    size_t used = 0;
    known[0] = '\0';
    for (size_t i = 0; i < OPTION_COUNT && used < sizeof(known); i++)
        used += (size_t)snprintf(known + used, sizeof(known) - used, "%s%s", i ? ", " : "",
                                 option_defs[i].name);
    return gen__error(GEN_ENOTFOUND, "unknown option \"%s\" (known: %s)", name, known);
}

static gen_status check_opts(const gen_context_options *opts, const char *fn)
{
    if (!opts)
        return gen__error(GEN_EINVAL, "%s: options pointer is NULL", fn);
    if (opts->version == 0 || opts->version > GEN_CONTEXT_OPTIONS_VERSION)
        return gen__error(opts->version == 0 ? GEN_EINVAL : GEN_EVERSION,
                          "%s: options version %u is not supported (1..%u)", fn,
                          (unsigned)opts->version, (unsigned)GEN_CONTEXT_OPTIONS_VERSION);
    return GEN_OK;
}

/* --- public ------------------------------------------------------------------------------- */

GEN_API gen_status gen_context_options_init(gen_context_options *opts, uint32_t version)
{
    const gen_context_options defaults = GEN_CONTEXT_OPTIONS_INIT;
    return gen__versioned_init(opts, &defaults, options_size_by_version, version,
                               GEN_CONTEXT_OPTIONS_VERSION, "gen_context_options_init");
}

GEN_API gen_status gen_context_options_set(gen_context_options *opts, const char *name,
                                           const char *value)
{
    gen_status st = check_opts(opts, "gen_context_options_set");
    if (st != GEN_OK)
        return st;
    if (!name)
        return gen__error(GEN_EINVAL, "gen_context_options_set: option name is NULL");
    if (!value)
        return gen__error(GEN_EINVAL, "%s: value is NULL", name);
    const struct option_def *def = find_option(name);
    if (!def)
        return unknown_option(name);
    if (def->since_version > opts->version)
        return gen__error(GEN_EVERSION, "%s: needs options version %u, the struct has %u", name,
                          (unsigned)def->since_version, (unsigned)opts->version);
    /* Work on a copy so a failed set leaves the caller's struct untouched. */
    gen_context_options tmp;
    memcpy(&tmp, opts, options_size_by_version[opts->version]);
    st = def->set(&tmp, name, value);
    if (st != GEN_OK)
        return st;
    memcpy(opts, &tmp, options_size_by_version[opts->version]);
    return GEN_OK;
}

GEN_API gen_status gen_context_options_set_from_env(gen_context_options *opts)
{
    gen_status st = check_opts(opts, "gen_context_options_set_from_env");
    if (st != GEN_OK)
        return st;
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        char var[64] = "LIBGEN_";
        size_t n = strlen(var);
        for (const char *c = option_defs[i].name; *c && n + 1 < sizeof(var); c++)
            var[n++] = (char)(*c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c);
        var[n] = '\0';
        const char *value = getenv(var);
        if (!value || option_defs[i].since_version > opts->version)
            continue;
        st = gen_context_options_set(opts, option_defs[i].name, value);
        if (st != GEN_OK)
            return gen__error_prefix("environment variable %s: ", var);
    }
    return GEN_OK;
}

GEN_API gen_status gen_context_options_get(const gen_context_options *opts, const char *name,
                                           char *buf, size_t buf_size)
{
    gen_status st = check_opts(opts, "gen_context_options_get");
    if (st != GEN_OK)
        return st;
    if (!name || !buf || buf_size == 0)
        return gen__error(GEN_EINVAL, "gen_context_options_get: NULL name or empty buffer");
    const struct option_def *def = find_option(name);
    if (!def)
        return unknown_option(name);
    /* An option newer than the caller's struct is past its end: report the
     * default, which is what a context made from that struct uses. */
    const gen_context_options defaults = GEN_CONTEXT_OPTIONS_INIT;
    if (def->since_version > opts->version)
        opts = &defaults;
    char text[GEN_PATH_TEXT_MAX];
    def->get(opts, text, sizeof(text));
    size_t len = strlen(text);
    if (len >= buf_size)
        return gen__error(GEN_EINVAL, "%s: value needs %zu bytes, buffer has %zu", name, len + 1,
                          buf_size);
    memcpy(buf, text, len + 1);
    return GEN_OK;
}

GEN_API size_t gen_context_option_count(void)
{
    return OPTION_COUNT;
}

GEN_API const char *gen_context_option_name(size_t index)
{
    return index < OPTION_COUNT ? option_defs[index].name : NULL;
}

static gen_status check_string_field(const char *field, size_t size, const char *name)
{
    if (memchr(field, '\0', size) == NULL)
        return gen__error(GEN_EINVAL, "%s: the text is not NUL-terminated within %zu bytes",
                          name, size);
    return GEN_OK;
}

gen_status gen__context_options_import(gen_context_options *out, const gen_context_options *opts)
{
    gen_context_options merged = GEN_CONTEXT_OPTIONS_INIT;
    if (opts) {
        gen_status st = gen__versioned_copy(&merged, opts, options_size_by_version,
                                            GEN_CONTEXT_OPTIONS_VERSION, "gen_context_options");
        if (st != GEN_OK)
            return st;
    }
    /* Fields may have been written directly: re-validate each one through its setter. */
    gen_status st;
    if ((st = check_string_field(merged.generation_devices, sizeof(merged.generation_devices),
                                 "generation_devices")) != GEN_OK ||
        (st = check_string_field(merged.db_path, sizeof(merged.db_path), "db_path")) != GEN_OK ||
        (st = check_string_field(merged.output_dir, sizeof(merged.output_dir), "output_dir")) !=
            GEN_OK ||
        (st = check_string_field(merged.gpu_dtype, sizeof(merged.gpu_dtype), "gpu_dtype")) !=
            GEN_OK)
        return st;
    gen__gpu_dtype gpu_dtype;
    if ((st = gen__gpu_dtype_parse("gpu_dtype", merged.gpu_dtype, &gpu_dtype)) != GEN_OK)
        return st;
    char devices[GEN_DEVICES_TEXT_MAX];
    memcpy(devices, merged.generation_devices, sizeof(devices));
    if ((st = set_devices(&merged, "generation_devices", devices)) != GEN_OK)
        return st;
    if (merged.output_dir[0] == '\0')
        return gen__error(GEN_EINVAL, "output_dir: must not be empty");
    if (merged.log_level < GEN_LOG_ERROR || merged.log_level > GEN_LOG_TRACE)
        return gen__error(GEN_EINVAL, "log_level: %d is out of range [0, 4]",
                          (int)merged.log_level);
    *out = merged;
    return GEN_OK;
}
