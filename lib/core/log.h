/* Logging to the application's callback (or stderr) with a level filter. */
#ifndef GEN_CORE_LOG_H
#define GEN_CORE_LOG_H

#include <gen/common.h>

#include "core/error.h"

typedef struct gen__logger {
    gen_log_fn fn;          /* NULL = stderr */
    void *user_data;
    gen_log_level level;    /* messages above this level are dropped */
} gen__logger;

/* Log through `logger`; a NULL logger writes warnings and errors to stderr. */
void gen__log(const gen__logger *logger, gen_log_level level, const char *fmt, ...)
    GEN__PRINTF(3, 4);

/* Whether a message at `level` would be delivered (to skip expensive formatting). */
int gen__log_enabled(const gen__logger *logger, gen_log_level level);

#define GEN__LOG_ERROR(lg, ...) gen__log((lg), GEN_LOG_ERROR, __VA_ARGS__)
#define GEN__LOG_WARN(lg, ...) gen__log((lg), GEN_LOG_WARN, __VA_ARGS__)
#define GEN__LOG_INFO(lg, ...) gen__log((lg), GEN_LOG_INFO, __VA_ARGS__)
#define GEN__LOG_DEBUG(lg, ...) gen__log((lg), GEN_LOG_DEBUG, __VA_ARGS__)

#endif
