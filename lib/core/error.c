#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/utf8.h"

static _Thread_local gen_status tls_status = GEN_OK;
static _Thread_local char tls_message[GEN__ERROR_MESSAGE_MAX];

/* Cut a message that did not fit at a character boundary and mark it. */
static void mark_truncated(char *buf, size_t size)
{
    static const char ellipsis[] = "...";
    size_t keep = size - sizeof(ellipsis);
    keep = gen__utf8_floor(buf, keep);
    memcpy(buf + keep, ellipsis, sizeof(ellipsis));
}

gen_status gen__error(gen_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tls_message, sizeof(tls_message), fmt, ap);
    va_end(ap);
    if (n < 0)
        tls_message[0] = '\0';
    else if ((size_t)n >= sizeof(tls_message))
        mark_truncated(tls_message, sizeof(tls_message));
    tls_status = status;
    return status;
}

gen_status gen__error_prefix(const char *fmt, ...)
{
    char prefix[256];
    char old[GEN__ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    if (n < 0)
        return tls_status;
    memcpy(old, tls_message, sizeof(old));
    n = snprintf(tls_message, sizeof(tls_message), "%s%s", prefix, old);
    if (n >= 0 && (size_t)n >= sizeof(tls_message))
        mark_truncated(tls_message, sizeof(tls_message));
    return tls_status;
}

GEN_API const char *gen_last_error_message(void)
{
    return tls_message;
}

GEN_API gen_status gen_last_error_status(void)
{
    return tls_status;
}

GEN_API void gen_clear_last_error(void)
{
    tls_status = GEN_OK;
    tls_message[0] = '\0';
}
