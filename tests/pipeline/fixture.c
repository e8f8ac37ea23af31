#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

#ifndef GEN_FIXTURES_DIR
#error "GEN_FIXTURES_DIR must be defined by the build"
#endif

const char *fixture_path(char *buf, size_t size, const char *rel)
{
    snprintf(buf, size, "%s/%s", GEN_FIXTURES_DIR, rel);
    return buf;
}

char *fixture_read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = sz >= 0 ? malloc((size_t)sz + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)sz, fp) != (size_t)sz) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    if (buf) {
        buf[sz] = '\0';
        *len = (size_t)sz;
    }
    return buf;
}

int st_open(st_file *f, const char *path)
{
    memset(f, 0, sizeof *f);
    f->data = fixture_read_file(path, &f->len);
    if (!f->data || f->len < 8)
        return -1;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = (hl << 8) | (unsigned char)f->data[i];
    if (hl > f->len - 8)
        return -1;
    f->header_len = (size_t)hl;
    f->header = json_loadb(f->data + 8, (size_t)hl, 0, NULL);
    return f->header ? 0 : -1;
}

void st_close(st_file *f)
{
    free(f->data);
    if (f->header)
        json_decref(f->header);
    memset(f, 0, sizeof *f);
}

double *st_get(const st_file *f, const char *name, size_t *n)
{
    json_t *t = json_object_get(f->header, name);
    if (!t)
        return NULL;
    const char *dtype = json_string_value(json_object_get(t, "dtype"));
    json_t *off = json_object_get(t, "data_offsets");
    size_t b = (size_t)json_integer_value(json_array_get(off, 0));
    size_t e = (size_t)json_integer_value(json_array_get(off, 1));
    const char *p = f->data + 8 + f->header_len + b;
    size_t esize = strcmp(dtype, "F32") == 0 ? 4 : 8;
    size_t count = (e - b) / esize;
    double *out = malloc((count ? count : 1) * sizeof *out);
    for (size_t i = 0; i < count; i++) {
        if (strcmp(dtype, "F32") == 0) {
            float v;
            memcpy(&v, p + 4 * i, 4);
            out[i] = v;
        } else if (strcmp(dtype, "F64") == 0) {
            double v;
            memcpy(&v, p + 8 * i, 8);
            out[i] = v;
        } else {
            int64_t v;
            memcpy(&v, p + 8 * i, 8);
            out[i] = (double)v;
        }
    }
    *n = count;
    return out;
}

double rel_l2(const double *a, const double *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return sqrt(num) / (den > 1e-300 ? sqrt(den) : 1.0);
}

double max_abs_diff(const double *a, const double *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(a[i] - b[i]));
    return m;
}
