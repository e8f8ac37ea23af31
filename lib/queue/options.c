/* gen_queue_options: defaults per version, the by-name setter, validation. */
#include <string.h>

#include "core/error.h"
#include "core/parse.h"
#include "core/versioned.h"
#include "queue/queue_internal.h"
#include "queue/queue_options.h"

static const size_t options_size_by_version[] = {
    0,
    sizeof(gen_queue_options), /* 1 */
};

_Static_assert(sizeof(options_size_by_version) / sizeof(options_size_by_version[0]) ==
                   GEN_QUEUE_OPTIONS_VERSION + 1,
               "one size per options version");

#define MAX_JOB_BYTES_LIMIT (64u << 20)

static const struct range {
    const char *name;
    size_t offset;
    int64_t min, max;
    bool size_units; /* accepts "1MiB" */
} ranges[] = {
    {"max_queue_size", offsetof(gen_queue_options, max_queue_size), 1, 100000000, false},
    {"max_queue_history", offsetof(gen_queue_options, max_queue_history), 0, UINT32_MAX, false},
    {"max_attempts", offsetof(gen_queue_options, max_attempts), 1, 1000, false},
    {"busy_timeout_ms", offsetof(gen_queue_options, busy_timeout_ms), 0, 3600000, false},
    {"lease_ms", offsetof(gen_queue_options, lease_ms), 100, 86400000, false},
    {"heartbeat_ms", offsetof(gen_queue_options, heartbeat_ms), 0, 86400000, false},
    {"max_job_bytes", offsetof(gen_queue_options, max_job_bytes), 2, MAX_JOB_BYTES_LIMIT, true},
};
#define RANGE_COUNT (sizeof(ranges) / sizeof(ranges[0]))

static gen_status validate(const gen_queue_options *o)
{
    if (o->mode != GEN_QUEUE_ROUND_ROBIN && o->mode != GEN_QUEUE_FIFO)
        return gen__error(GEN_EINVAL, "mode: %d is not a queue mode (0 round_robin, 1 fifo)",
                          (int)o->mode);
    for (size_t i = 0; i < RANGE_COUNT; i++) {
        uint32_t v;
        memcpy(&v, (const char *)o + ranges[i].offset, sizeof(v));
        if ((int64_t)v < ranges[i].min || (int64_t)v > ranges[i].max)
            return gen__error(GEN_EINVAL, "%s: %u is out of range [%lld, %lld]", ranges[i].name,
                              (unsigned)v, (long long)ranges[i].min, (long long)ranges[i].max);
    }
    if (o->log_level < GEN_LOG_ERROR || o->log_level > GEN_LOG_TRACE)
        return gen__error(GEN_EINVAL, "log_level: %d is out of range [0, 4]", (int)o->log_level);
    if (o->heartbeat_ms != 0 && o->heartbeat_ms >= o->lease_ms)
        return gen__error(GEN_EINVAL,
                          "heartbeat_ms: %u must be shorter than lease_ms (%u), or 0 for no "
                          "heartbeat thread",
                          (unsigned)o->heartbeat_ms, (unsigned)o->lease_ms);
    return GEN_OK;
}

GEN_API gen_status gen_queue_options_init(gen_queue_options *opts, uint32_t version)
{
    const gen_queue_options defaults = GEN_QUEUE_OPTIONS_INIT;
    return gen__versioned_init(opts, &defaults, options_size_by_version, version,
                               GEN_QUEUE_OPTIONS_VERSION, "gen_queue_options_init");
}

GEN_API gen_status gen_queue_options_set(gen_queue_options *opts, const char *name,
                                         const char *value)
{
    if (!opts || !name || !value)
        return gen__error(GEN_EINVAL, "gen_queue_options_set: NULL options, name or value");
    if (opts->version == 0 || opts->version > GEN_QUEUE_OPTIONS_VERSION)
        return gen__error(opts->version == 0 ? GEN_EINVAL : GEN_EVERSION,
                          "gen_queue_options_set: options version %u is not supported (1..%u)",
                          (unsigned)opts->version, (unsigned)GEN_QUEUE_OPTIONS_VERSION);
    gen_queue_options tmp;
    memcpy(&tmp, opts, options_size_by_version[opts->version]);
    if (strcmp(name, "mode") == 0) {
        if (strcmp(value, "round_robin") == 0)
            tmp.mode = GEN_QUEUE_ROUND_ROBIN;
        else if (strcmp(value, "fifo") == 0)
            tmp.mode = GEN_QUEUE_FIFO;
        else
            return gen__error(GEN_EINVAL, "mode: \"%s\" is not a queue mode (round_robin, fifo)",
                              value);
    } else if (strcmp(name, "log_level") == 0) {
        int32_t level = -1;
        for (int l = GEN_LOG_ERROR; l <= GEN_LOG_TRACE; l++)
            if (strcmp(value, gen_log_level_name((gen_log_level)l)) == 0)
                level = l;
        int64_t v;
        if (level < 0 && gen__parse_int64(name, value, GEN_LOG_ERROR, GEN_LOG_TRACE, &v) == GEN_OK)
            level = (int32_t)v;
        if (level < 0)
            return gen__error(GEN_EINVAL, "log_level: \"%s\" is not a log level (error, warn, "
                                          "info, debug, trace or 0..4)",
                              value);
        tmp.log_level = level;
    } else {
        const struct range *r = NULL;
        for (size_t i = 0; i < RANGE_COUNT; i++)
            if (strcmp(ranges[i].name, name) == 0)
                r = &ranges[i];
        if (!r)
            return gen__error(GEN_ENOTFOUND,
                              "unknown queue option \"%s\" (known: mode, max_queue_size, "
                              "max_queue_history, max_attempts, busy_timeout_ms, lease_ms, "
                              "heartbeat_ms, max_job_bytes, log_level)",
                              name);
        int64_t v;
        gen_status st;
        if (r->size_units) {
            uint64_t bytes;
            st = gen__parse_size(name, value, &bytes);
            if (st == GEN_OK && bytes > (uint64_t)r->max)
                st = gen__error(GEN_EINVAL, "%s: \"%s\" is more than %lld", name, value,
                                (long long)r->max);
            v = (int64_t)bytes;
        } else {
            st = gen__parse_int64(name, value, r->min, r->max, &v);
        }
        if (st != GEN_OK)
            return st;
        uint32_t u = (uint32_t)v;
        memcpy((char *)&tmp + r->offset, &u, sizeof(u));
    }
    gen_status st = validate(&tmp);
    if (st != GEN_OK)
        return st;
    memcpy(opts, &tmp, options_size_by_version[opts->version]);
    return GEN_OK;
}

gen_status gen__queue_options_import(gen_queue_options *out, const gen_queue_options *opts)
{
    gen_queue_options merged = GEN_QUEUE_OPTIONS_INIT;
    if (opts) {
        gen_status st = gen__versioned_copy(&merged, opts, options_size_by_version,
                                            GEN_QUEUE_OPTIONS_VERSION, "gen_queue_options");
        if (st != GEN_OK)
            return st;
    }
    gen_status st = validate(&merged);
    if (st != GEN_OK)
        return st;
    *out = merged;
    return GEN_OK;
}
