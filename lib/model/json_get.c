#include "model/json_get.h"

#include <math.h>
#include <string.h>

#include "core/error.h"

gen_status gen__json_parse_object(const char *label, const char *text, size_t len, json_t **out)
{
    *out = NULL;
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        if (json_error_code(&err) == json_error_out_of_memory)
            return gen__error(GEN_ENOMEM, "%s: out of memory parsing JSON", label);
        if (json_error_code(&err) == json_error_duplicate_key)
            return gen__error(GEN_EFORMAT, "%s: a key appears twice (line %d, column %d)", label,
                              err.line, err.column);
        return gen__error(GEN_EFORMAT, "%s: not valid JSON (line %d, column %d): %s", label,
                          err.line, err.column, err.text);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return gen__error(GEN_EFORMAT, "%s: the top level is not a JSON object", label);
    }
    *out = root;
    return GEN_OK;
}

static json_t *lookup(json_t *obj, const char *key, bool *present)
{
    json_t *v = json_object_get(obj, key);
    if (v && json_is_null(v))
        v = NULL;
    if (present)
        *present = v != NULL;
    return v;
}

static gen_status int_value(const char *label, const char *key, json_t *v, long long min,
                            long long max, int *out)
{
    long long i;
    if (json_is_integer(v)) {
        i = json_integer_value(v);
    } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
               fabs(json_real_value(v)) < 9e15) {
        i = (long long)json_real_value(v); /* 64.0 written by some tools */
    } else {
        return gen__error(GEN_EFORMAT, "%s: \"%s\" must be an integer", label, key);
    }
    if (i < min || i > max)
        return gen__error(GEN_EFORMAT, "%s: \"%s\" is %lld, outside [%lld, %lld]", label, key, i,
                          min, max);
    *out = (int)i;
    return GEN_OK;
}

gen_status gen__json_get_int(const char *label, json_t *obj, const char *key, long long min,
                             long long max, int *out, bool *present)
{
    json_t *v = lookup(obj, key, present);
    return v ? int_value(label, key, v, min, max, out) : GEN_OK;
}

gen_status gen__json_get_double(const char *label, json_t *obj, const char *key, double min,
                                double max, double *out, bool *present)
{
    json_t *v = lookup(obj, key, present);
    if (!v)
        return GEN_OK;
    if (!json_is_number(v))
        return gen__error(GEN_EFORMAT, "%s: \"%s\" must be a number", label, key);
    double d = json_number_value(v);
    if (!isfinite(d) || d < min || d > max)
        return gen__error(GEN_EFORMAT, "%s: \"%s\" is %g, outside [%g, %g]", label, key, d, min,
                          max);
    *out = d;
    return GEN_OK;
}

gen_status gen__json_get_bool(const char *label, json_t *obj, const char *key, bool *out,
                              bool *present)
{
    json_t *v = lookup(obj, key, present);
    if (!v)
        return GEN_OK;
    if (!json_is_boolean(v))
        return gen__error(GEN_EFORMAT, "%s: \"%s\" must be true or false", label, key);
    *out = json_is_true(v);
    return GEN_OK;
}

gen_status gen__json_get_string(const char *label, json_t *obj, const char *key, char *buf,
                                size_t buf_size, bool *present)
{
    json_t *v = lookup(obj, key, present);
    if (!v)
        return GEN_OK;
    if (!json_is_string(v))
        return gen__error(GEN_EFORMAT, "%s: \"%s\" must be a string", label, key);
    size_t len = json_string_length(v);
    if (len >= buf_size)
        return gen__error(GEN_EFORMAT, "%s: \"%s\" is too long (%zu bytes, at most %zu)", label,
                          key, len, buf_size - 1);
    memcpy(buf, json_string_value(v), len + 1);
    return GEN_OK;
}

static gen_status enum_value(const char *label, const char *key, json_t *v,
                             const char *const *names, int *out)
{
    if (!json_is_string(v))
        return gen__error(GEN_EFORMAT, "%s: \"%s\" must be a string", label, key);
    const char *s = json_string_value(v);
    for (int i = 0; names[i]; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return GEN_OK;
        }
    }
    char known[256] = "";
    size_t used = 0;
    for (int i = 0; names[i] && used < sizeof(known); i++) {
        int n = snprintf(known + used, sizeof(known) - used, "%s%s", i ? ", " : "", names[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return gen__error(GEN_EUNSUPPORTED, "%s: \"%s\" is \"%.64s\"; supported: %s", label, key, s,
                      known);
}

gen_status gen__json_get_enum(const char *label, json_t *obj, const char *key,
                              const char *const *names, int *out, bool *present)
{
    json_t *v = lookup(obj, key, present);
    return v ? enum_value(label, key, v, names, out) : GEN_OK;
}

gen_status gen__json_get_int_or_list(const char *label, json_t *obj, const char *key, int n,
                                     long long min, long long max, int *out, bool *present)
{
    json_t *v = lookup(obj, key, present);
    if (!v)
        return GEN_OK;
    if (json_is_array(v)) {
        if (json_array_size(v) != (size_t)n)
            return gen__error(GEN_EFORMAT, "%s: \"%s\" has %zu entries, expected %d (one per block)",
                              label, key, json_array_size(v), n);
        for (int i = 0; i < n; i++) {
            char what[96];
            snprintf(what, sizeof(what), "%s[%d]", key, i);
            gen_status st = int_value(label, what, json_array_get(v, (size_t)i), min, max, &out[i]);
            if (st != GEN_OK)
                return st;
        }
        return GEN_OK;
    }
    int one;
    gen_status st = int_value(label, key, v, min, max, &one);
    if (st != GEN_OK)
        return st;
    for (int i = 0; i < n; i++)
        out[i] = one;
    return GEN_OK;
}

gen_status gen__json_get_bool_or_list(const char *label, json_t *obj, const char *key, int n,
                                      bool *out, bool *present)
{
    json_t *v = lookup(obj, key, present);
    if (!v)
        return GEN_OK;
    if (json_is_array(v)) {
        if (json_array_size(v) != (size_t)n)
            return gen__error(GEN_EFORMAT, "%s: \"%s\" has %zu entries, expected %d (one per block)",
                              label, key, json_array_size(v), n);
        for (int i = 0; i < n; i++) {
            json_t *e = json_array_get(v, (size_t)i);
            if (!json_is_boolean(e))
                return gen__error(GEN_EFORMAT, "%s: \"%s[%d]\" must be true or false", label, key,
                                  i);
            out[i] = json_is_true(e);
        }
        return GEN_OK;
    }
    if (!json_is_boolean(v))
        return gen__error(GEN_EFORMAT, "%s: \"%s\" must be true, false or a list of them", label,
                          key);
    for (int i = 0; i < n; i++)
        out[i] = json_is_true(v);
    return GEN_OK;
}

static gen_status list_value(const char *label, const char *key, json_t *v, int max, int *count)
{
    if (!json_is_array(v))
        return gen__error(GEN_EFORMAT, "%s: \"%s\" must be a list", label, key);
    size_t n = json_array_size(v);
    if (n < 1 || n > (size_t)max)
        return gen__error(GEN_EFORMAT, "%s: \"%s\" has %zu entries (1 to %d supported)", label, key,
                          n, max);
    *count = (int)n;
    return GEN_OK;
}

gen_status gen__json_get_int_list(const char *label, json_t *obj, const char *key, int max,
                                  long long min, long long max_value, int *out, int *count,
                                  bool *present)
{
    json_t *v = lookup(obj, key, present);
    if (!v)
        return GEN_OK;
    int n;
    gen_status st = list_value(label, key, v, max, &n);
    int tmp[64];
    for (int i = 0; st == GEN_OK && i < n && i < 64; i++) {
        char what[96];
        snprintf(what, sizeof(what), "%s[%d]", key, i);
        st = int_value(label, what, json_array_get(v, (size_t)i), min, max_value, &tmp[i]);
    }
    if (st != GEN_OK)
        return st;
    memcpy(out, tmp, (size_t)n * sizeof(int));
    *count = n;
    return GEN_OK;
}

gen_status gen__json_get_enum_list(const char *label, json_t *obj, const char *key, int max,
                                   const char *const *names, int *out, int *count, bool *present)
{
    json_t *v = lookup(obj, key, present);
    if (!v)
        return GEN_OK;
    int n;
    gen_status st = list_value(label, key, v, max, &n);
    int tmp[64];
    for (int i = 0; st == GEN_OK && i < n && i < 64; i++) {
        char what[96];
        snprintf(what, sizeof(what), "%s[%d]", key, i);
        st = enum_value(label, what, json_array_get(v, (size_t)i), names, &tmp[i]);
    }
    if (st != GEN_OK)
        return st;
    memcpy(out, tmp, (size_t)n * sizeof(int));
    *count = n;
    return GEN_OK;
}
