#include "core/parse.h"

#include <ctype.h>
#include <locale.h>
#include <pthread.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"

static const char *skip_space(const char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    return s;
}

/* Whether s[0..n) is only whitespace. */
static bool blank_tail(const char *s)
{
    return *skip_space(s) == '\0';
}

struct unit {
    const char *name;
    uint64_t factor;
};

static const struct unit units[] = {
    {"", 1}, {"b", 1},
    {"k", 1ull << 10}, {"kib", 1ull << 10}, {"kb", 1000ull},
    {"m", 1ull << 20}, {"mib", 1ull << 20}, {"mb", 1000000ull},
    {"g", 1ull << 30}, {"gib", 1ull << 30}, {"gb", 1000000000ull},
    {"t", 1ull << 40}, {"tib", 1ull << 40}, {"tb", 1000000000000ull},
};

gen_status gen__parse_size(const char *what, const char *text, uint64_t *out)
{
    if (!text)
        return gen__error(GEN_EINVAL, "%s: missing size", what);
    const char *p = skip_space(text);
    if (!isdigit((unsigned char)*p) && *p != '.')
        return gen__error(GEN_EINVAL,
                          "%s: \"%s\" is not a size (expected e.g. \"8GiB\", \"512MiB\", \"4096\")",
                          what, text);
    /* Integer part exactly (sizes beyond 2^53 must not lose bytes), fraction as double. */
    errno = 0;
    char *end;
    unsigned long long whole = strtoull(p, &end, 10);
    if (errno == ERANGE)
        return gen__error(GEN_EINVAL, "%s: \"%s\" is too large", what, text);
    /* Fraction digits by hand: strtod would follow the host's LC_NUMERIC. */
    double frac = 0.0;
    bool has_frac = false;
    if (*end == '.') {
        double scale = 0.1;
        const char *d = end + 1;
        while (isdigit((unsigned char)*d)) {
            frac += (*d - '0') * scale;
            scale *= 0.1;
            d++;
        }
        if (d == end + 1 && end == p)
            return gen__error(GEN_EINVAL, "%s: \"%s\" is not a size", what, text);
        has_frac = d > end + 1;
        end = (char *)d;
    }
    const char *u = skip_space(end);
    size_t ulen = 0;
    while (isalpha((unsigned char)u[ulen]))
        ulen++;
    if (!blank_tail(u + ulen))
        return gen__error(GEN_EINVAL, "%s: \"%s\" has trailing characters after the size", what,
                          text);
    const struct unit *unit = NULL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strlen(units[i].name) == ulen && strncasecmp(units[i].name, u, ulen) == 0) {
            unit = &units[i];
            break;
        }
    }
    if (!unit)
        return gen__error(GEN_EINVAL,
                          "%s: unknown unit \"%.*s\" in \"%s\" (use B, KiB, MiB, GiB, TiB, KB, MB, "
                          "GB, TB)",
                          what, (int)ulen, u, text);
    if (has_frac && unit->factor == 1)
        return gen__error(GEN_EINVAL, "%s: \"%s\": a byte count must be a whole number", what,
                          text);
    if (whole > UINT64_MAX / unit->factor)
        return gen__error(GEN_EINVAL, "%s: \"%s\" is too large", what, text);
    uint64_t bytes = (uint64_t)whole * unit->factor;
    if (has_frac) {
        double extra = floor(frac * (double)unit->factor);
        if (extra >= (double)(UINT64_MAX - bytes))
            return gen__error(GEN_EINVAL, "%s: \"%s\" is too large", what, text);
        bytes += (uint64_t)extra;
    }
    *out = bytes;
    return GEN_OK;
}

gen_status gen__parse_int64(const char *what, const char *text, int64_t min, int64_t max,
                            int64_t *out)
{
    if (!text)
        return gen__error(GEN_EINVAL, "%s: missing value", what);
    const char *p = skip_space(text);
    errno = 0;
    char *end;
    long long v = strtoll(p, &end, 10);
    if (end == p || !blank_tail(end))
        return gen__error(GEN_EINVAL, "%s: \"%s\" is not an integer", what, text);
    if (errno == ERANGE || v < min || v > max)
        return gen__error(GEN_EINVAL, "%s: %s is out of range [%lld, %lld]", what, text,
                          (long long)min, (long long)max);
    *out = v;
    return GEN_OK;
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void make_c_locale(void)
{
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

gen_status gen__parse_double(const char *what, const char *text, double min, double max,
                             bool min_exclusive, double *out)
{
    if (!text)
        return gen__error(GEN_EINVAL, "%s: missing value", what);
    const char *p = skip_space(text);
    const char *digits = p + (*p == '-' || *p == '+');
    /* Only plain decimal notation: no "nan", "inf" or hex floats. */
    if (!isdigit((unsigned char)*digits) && !(*digits == '.' && isdigit((unsigned char)digits[1])))
        return gen__error(GEN_EINVAL, "%s: \"%s\" is not a number", what, text);
    for (const char *c = digits; *c && !isspace((unsigned char)*c); c++) {
        if (!isdigit((unsigned char)*c) && *c != '.' && *c != 'e' && *c != 'E' && *c != '-' &&
            *c != '+')
            return gen__error(GEN_EINVAL, "%s: \"%s\" is not a number", what, text);
    }
    pthread_once(&c_locale_once, make_c_locale);
    char *end;
    errno = 0;
    double v = c_locale ? strtod_l(p, &end, c_locale) : strtod(p, &end);
    if (end == p || !blank_tail(end))
        return gen__error(GEN_EINVAL, "%s: \"%s\" is not a number", what, text);
    if (!isfinite(v) || v > max || v < min || (min_exclusive && v == min))
        return gen__error(GEN_EINVAL, "%s: %s is out of range %s%g, %g]", what, text,
                          min_exclusive ? "(" : "[", min, max);
    *out = v;
    return GEN_OK;
}

gen_status gen__parse_bool(const char *what, const char *text, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    if (!text)
        return gen__error(GEN_EINVAL, "%s: missing value", what);
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return GEN_OK;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return GEN_OK;
        }
    }
    return gen__error(GEN_EINVAL, "%s: \"%s\" is not a boolean (use true/false)", what, text);
}

void gen__format_size(uint64_t bytes, char *buf, size_t buf_size)
{
    static const char *const names[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t i = 0;
    double v = (double)bytes;
    while (v >= 1024.0 && i + 1 < sizeof(names) / sizeof(names[0])) {
        v /= 1024.0;
        i++;
    }
    if (i == 0 || v == floor(v))
        snprintf(buf, buf_size, "%.0f %s", v, names[i]);
    else
        snprintf(buf, buf_size, "%.2f %s", v, names[i]);
}
