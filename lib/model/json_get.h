/* Typed reads of config.json values with messages that name the file and key.
 * A missing key or a JSON null leaves *out unchanged (the caller's default)
 * and returns GEN_OK; a value of the wrong type or out of range is
 * GEN_EFORMAT. `*present` (when not NULL) says whether a value was read. */
#ifndef GEN_MODEL_JSON_GET_H
#define GEN_MODEL_JSON_GET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include <gen/common.h>

/* Parse a whole JSON document (object at the top, duplicate keys refused). */
gen_status gen__json_parse_object(const char *label, const char *text, size_t len, json_t **out);

gen_status gen__json_get_int(const char *label, json_t *obj, const char *key, long long min,
                             long long max, int *out, bool *present);
gen_status gen__json_get_double(const char *label, json_t *obj, const char *key, double min,
                                double max, double *out, bool *present);
gen_status gen__json_get_bool(const char *label, json_t *obj, const char *key, bool *out,
                              bool *present);
/* String value copied into buf (GEN_EFORMAT if it does not fit). */
gen_status gen__json_get_string(const char *label, json_t *obj, const char *key, char *buf,
                                size_t buf_size, bool *present);
/* String that must be one of names[0..] (NULL-terminated list); *out = its index. */
gen_status gen__json_get_enum(const char *label, json_t *obj, const char *key,
                              const char *const *names, int *out, bool *present);
/* Either one integer (copied to all n slots) or a list of exactly n integers. */
gen_status gen__json_get_int_or_list(const char *label, json_t *obj, const char *key, int n,
                                     long long min, long long max, int *out, bool *present);
/* Same for booleans. */
gen_status gen__json_get_bool_or_list(const char *label, json_t *obj, const char *key, int n,
                                      bool *out, bool *present);
/* List of 1..max integers; *count = its length. */
gen_status gen__json_get_int_list(const char *label, json_t *obj, const char *key, int max,
                                  long long min, long long max_value, int *out, int *count,
                                  bool *present);
/* List of 1..max strings, each one of names[]: out[i] = index. */
gen_status gen__json_get_enum_list(const char *label, json_t *obj, const char *key, int max,
                                   const char *const *names, int *out, int *count, bool *present);

#endif
