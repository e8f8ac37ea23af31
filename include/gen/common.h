/* libgen — common definitions: export macro, status codes, errors, logging.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef GEN_COMMON_H
#define GEN_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <gen/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* GEN_API marks every exported function. The library is compiled with hidden
 * visibility, so anything without GEN_API stays private to the shared object. */
#if defined(_WIN32)
#  if defined(GEN_BUILDING)
#    define GEN_API __declspec(dllexport)
#  else
#    define GEN_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__) || defined(__clang__)
#  define GEN_API __attribute__((visibility("default")))
#else
#  define GEN_API
#endif

/* Status of every fallible call. 0 is success, errors are negative. Values are
 * part of the ABI: they are never renumbered, new codes are only appended. */
typedef int32_t gen_status;

enum {
    GEN_OK = 0,
    GEN_EINVAL = -1,          /* an argument or option value is invalid */
    GEN_ENOMEM = -2,          /* host memory allocation failed */
    GEN_EIO = -3,             /* reading or writing a file failed */
    GEN_EFORMAT = -4,         /* a file or string is malformed */
    GEN_ENOTFOUND = -5,       /* a named thing (file, item, key, option) does not exist */
    GEN_EUNSUPPORTED = -6,    /* valid but not supported by this build or model */
    GEN_EVERSION = -7,        /* a struct, file or database is newer than this library */
    GEN_EFULL = -8,           /* a capacity limit was reached (e.g. max_queue_size) */
    GEN_EBUSY = -9,           /* a resource is in use (e.g. database locked past its timeout) */
    GEN_ECANCELED = -10,      /* the operation was canceled */
    GEN_EDEVICE = -11,        /* a device is unavailable or failed */
    GEN_EDEVICE_OOM = -12,    /* device memory is exhausted */
    GEN_EDATABASE = -13,      /* the queue database failed or is corrupt */
    GEN_EPERM = -14,          /* the caller may not do this (e.g. another user's item) */
    GEN_ESTATE = -15,         /* the object is in the wrong state for this call */
    GEN_ETIMEOUT = -16,       /* a wait ran out of time */
    GEN_EUSER = -17,          /* a user callback asked to abort */
    GEN_ENOSPC = -18,         /* no space left on the device being written */
    GEN_EINTERNAL = -19       /* a bug in libgen: please report it */
};

/* Static, never-NULL English text for a status ("invalid argument", ...). */
GEN_API const char *gen_status_string(gen_status status);

/* Detail of the last error raised on the calling thread: which file, key,
 * device or value was wrong. Thread-local and owned by the library; valid
 * until the next libgen call on this thread. Never NULL ("" when none). */
GEN_API const char *gen_last_error_message(void);

/* Status that went with gen_last_error_message() on this thread (GEN_OK if none). */
GEN_API gen_status gen_last_error_status(void);

/* Forget the calling thread's last error. */
GEN_API void gen_clear_last_error(void);

/* Version of the library actually loaded (compare with the GEN_VERSION_* macros
 * the caller was compiled against). */
GEN_API uint32_t gen_version_number(void);
GEN_API const char *gen_version_string(void);

/* Log levels, from most to least severe. A logger receives messages whose level
 * is <= the configured level. */
typedef enum gen_log_level {
    GEN_LOG_ERROR = 0,
    GEN_LOG_WARN = 1,
    GEN_LOG_INFO = 2,
    GEN_LOG_DEBUG = 3,
    GEN_LOG_TRACE = 4
} gen_log_level;

/* Log callback. May be called from any libgen thread (worker threads included),
 * possibly concurrently; it must be thread-safe and must not call back into the
 * context that logs. `message` is valid only during the call, has no trailing
 * newline, and is UTF-8. */
typedef void (*gen_log_fn)(gen_log_level level, const char *message, void *user_data);

/* Static name of a level: "error", "warn", "info", "debug", "trace". */
GEN_API const char *gen_log_level_name(gen_log_level level);

#ifdef __cplusplus
}
#endif

#endif /* GEN_COMMON_H */
