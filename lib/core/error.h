/* Thread-local last error: every failing path records a status and a message
 * that names what was wrong, then returns the status. */
#ifndef GEN_CORE_ERROR_H
#define GEN_CORE_ERROR_H

#include <gen/common.h>

#if defined(__GNUC__) || defined(__clang__)
#define GEN__PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define GEN__PRINTF(fmt_index, first_arg)
#endif

/* Record `status` with a printf-style message on this thread; returns `status`
 * so callers can write `return gen__error(GEN_EINVAL, "...")`. */
gen_status gen__error(gen_status status, const char *fmt, ...) GEN__PRINTF(2, 3);

/* Prepend context to the current message ("loading unet: " + old message),
 * keeping its status; returns that status. */
gen_status gen__error_prefix(const char *fmt, ...) GEN__PRINTF(1, 2);

/* Longest message kept; longer ones are cut at a UTF-8 boundary with "...". */
#define GEN__ERROR_MESSAGE_MAX 1024

#endif
