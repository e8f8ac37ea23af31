#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>

static const gen__logger stderr_logger = {NULL, NULL, GEN_LOG_WARN};

GEN_API const char *gen_log_level_name(gen_log_level level)
{
    switch (level) {
    case GEN_LOG_ERROR: return "error";
    case GEN_LOG_WARN: return "warn";
    case GEN_LOG_INFO: return "info";
    case GEN_LOG_DEBUG: return "debug";
    case GEN_LOG_TRACE: return "trace";
    }
    return "unknown";
}

int gen__log_enabled(const gen__logger *logger, gen_log_level level)
{
    if (!logger)
        logger = &stderr_logger;
    return level <= logger->level;
}

void gen__log(const gen__logger *logger, gen_log_level level, const char *fmt, ...)
{
    if (!logger)
        logger = &stderr_logger;
    if (level > logger->level)
        return;
    char message[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (logger->fn) {
        logger->fn(level, message, logger->user_data);
    } else {
        /* One fprintf call per line so concurrent workers do not interleave mid-line. */
        fprintf(stderr, "libgen [%s] %s\n", gen_log_level_name(level), message);
    }
}
