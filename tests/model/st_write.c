#include "st_write.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

size_t st_dtype_size(const char *d)
{
    if (!strcmp(d, "F64") || !strcmp(d, "I64") || !strcmp(d, "U64"))
        return 8;
    if (!strcmp(d, "F32") || !strcmp(d, "I32") || !strcmp(d, "U32"))
        return 4;
    if (!strcmp(d, "F16") || !strcmp(d, "BF16") || !strcmp(d, "I16") || !strcmp(d, "U16"))
        return 2;
    return 1;
}

static uint64_t spec_bytes(const st_spec *s)
{
    uint64_t n = st_dtype_size(s->dtype);
    for (int i = 0; i < s->ndim; i++)
        n *= (uint64_t)s->shape[i];
    return n;
}

int st_write(const char *path, const st_spec *specs, size_t n, const char *metadata)
{
    size_t cap = 4096 + n * 512 + (metadata ? strlen(metadata) : 0);
    char *h = malloc(cap);
    if (!h)
        return -1;
    size_t len = 0;
    len += (size_t)snprintf(h + len, cap - len, "{");
    if (metadata)
        len += (size_t)snprintf(h + len, cap - len, "\"__metadata__\":%s%s", metadata,
                                n ? "," : "");
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(h + len, cap - len, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                                i ? "," : "", specs[i].name, specs[i].dtype);
        for (int d = 0; d < specs[i].ndim; d++)
            len += (size_t)snprintf(h + len, cap - len, "%s%lld", d ? "," : "",
                                    (long long)specs[i].shape[d]);
        uint64_t b = spec_bytes(&specs[i]);
        len += (size_t)snprintf(h + len, cap - len, "],\"data_offsets\":[%llu,%llu]}",
                                (unsigned long long)off, (unsigned long long)(off + b));
        off += b;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8)
        h[len++] = ' ';
    unsigned char *data = malloc(off ? off : 1);
    if (!data) {
        free(h);
        return -1;
    }
    uint64_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t b = spec_bytes(&specs[i]);
        if (specs[i].data)
            memcpy(data + pos, specs[i].data, b);
        else
            for (uint64_t k = 0; k < b; k++)
                data[pos + k] = (unsigned char)((pos + k) % 251);
        pos += b;
    }
    int rc = st_write_raw(path, len, h, len, data, off);
    free(h);
    free(data);
    return rc;
}

int st_write_raw(const char *path, uint64_t header_len, const char *header, size_t header_bytes,
                 const void *data, size_t data_len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(header_len >> (8 * i));
    int ok = fwrite(le, 1, 8, f) == 8;
    if (header_bytes)
        ok = ok && fwrite(header, 1, header_bytes, f) == header_bytes;
    if (data_len)
        ok = ok && fwrite(data, 1, data_len, f) == data_len;
    ok = (fclose(f) == 0) && ok;
    return ok ? 0 : -1;
}

char *st_tempdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof(tmpl), "%s/libgen-model-XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void st_rmtree(const char *dir)
{
    if (dir)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *st_path(const char *dir, const char *name)
{
    static char bufs[8][4096];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 4096, "%s/%s", dir, name);
    return b;
}
