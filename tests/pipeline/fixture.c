#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

#include "model/safetensors.h"

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
    return gen__st_open(&f->st, path) == GEN_OK ? 0 : -1;
}

void st_close(st_file *f)
{
    gen__st_close(f->st);
    f->st = NULL;
}

double *st_get(const st_file *f, const char *name, size_t *n)
{
    const gen__st_view *v = gen__st_find(f->st, name);
    if (!v || (v->dtype != GEN__ST_F32 && v->dtype != GEN__ST_F64 && v->dtype != GEN__ST_I64))
        return NULL;
    size_t count = (size_t)v->numel;
    double *out = malloc((count ? count : 1) * sizeof *out);
    const char *p = v->data;
    for (size_t i = 0; out && i < count; i++) {
        if (v->dtype == GEN__ST_F32) {
            float x;
            memcpy(&x, p + 4 * i, 4);
            out[i] = x;
        } else if (v->dtype == GEN__ST_F64) {
            memcpy(&out[i], p + 8 * i, 8);
        } else {
            int64_t x;
            memcpy(&x, p + 8 * i, 8);
            out[i] = (double)x;
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
