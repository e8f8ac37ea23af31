#include "model/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"

typedef struct st_meta {
    char *key;
    char *value;
} st_meta;

struct gen__st_file {
    char *path;
    const unsigned char *base; /* whole file image */
    size_t size;
    bool mapped;                /* base is our mmap (unmap on close) */
    gen__st_view *tensors; /* sorted by name */
    size_t count;
    char *names;                /* one block holding every tensor name */
    st_meta *meta;              /* sorted by key */
    size_t meta_count;
};

void gen__shape_format(const gen__st_view *view, char *buf, size_t buf_size)
{
    size_t used = 0;
    if (buf_size == 0)
        return;
    buf[0] = '\0';
    int n = snprintf(buf, buf_size, "[");
    for (int i = 0; n >= 0 && i < view->ndim; i++) {
        used += (size_t)n;
        if (used >= buf_size)
            return;
        n = snprintf(buf + used, buf_size - used, "%s%lld", i ? ", " : "",
                     (long long)view->shape[i]);
    }
    if (n >= 0 && used + (size_t)n < buf_size)
        snprintf(buf + used + (size_t)n, buf_size - used - (size_t)n, "]");
}

/* ---------------------------------------------------------------- parsing */

typedef struct parse_entry {
    const char *name;  /* jansson's key, alive while the root is */
    gen__st_view view;
    uint64_t begin, end; /* within the data buffer */
} parse_entry;

static int cmp_entry_offset(const void *a, const void *b)
{
    const parse_entry *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_view_name(const void *a, const void *b)
{
    return strcmp(((const gen__st_view *)a)->name, ((const gen__st_view *)b)->name);
}

static int cmp_meta_key(const void *a, const void *b)
{
    return strcmp(((const st_meta *)a)->key, ((const st_meta *)b)->key);
}

/* jansson reports a duplicate key just after the key's closing quote; recover
 * the key text for the message (best effort, escapes left as written). */
static void duplicate_key_name(const char *header, size_t len, int position, char *buf,
                               size_t buf_size)
{
    buf[0] = '\0';
    if (position <= 1 || (size_t)position > len)
        return;
    size_t close = (size_t)position - 1;
    while (close > 0 && header[close] != '"')
        close--;
    if (header[close] != '"' || close == 0)
        return;
    size_t open = close;
    while (open > 0) {
        open--;
        if (header[open] == '"' && (open == 0 || header[open - 1] != '\\'))
            break;
    }
    if (header[open] != '"')
        return;
    size_t n = close - open - 1;
    if (n >= buf_size)
        n = buf_size - 1;
    memcpy(buf, header + open + 1, n);
    buf[n] = '\0';
}

static gen_status parse_u64(const char *label, const char *tensor, const char *what, json_t *v,
                            uint64_t *out)
{
    if (!json_is_integer(v))
        return gen__error(GEN_EFORMAT, "%s: tensor '%s': %s must be a whole number", label, tensor,
                          what);
    json_int_t i = json_integer_value(v);
    if (i < 0)
        return gen__error(GEN_EFORMAT, "%s: tensor '%s': %s is negative (%lld)", label, tensor,
                          what, (long long)i);
    *out = (uint64_t)i;
    return GEN_OK;
}

static gen_status parse_tensor(const char *label, const char *name, json_t *obj, uint64_t buf_size,
                               parse_entry *e)
{
    if (name[0] == '\0')
        return gen__error(GEN_EFORMAT, "%s: a tensor has an empty name", label);
    if (!json_is_object(obj))
        return gen__error(GEN_EFORMAT, "%s: tensor '%s': entry is not a JSON object", label, name);
    json_t *jd = json_object_get(obj, "dtype");
    json_t *js = json_object_get(obj, "shape");
    json_t *jo = json_object_get(obj, "data_offsets");
    if (!jd || !js || !jo)
        return gen__error(GEN_EFORMAT, "%s: tensor '%s': missing \"%s\"", label, name,
                          !jd ? "dtype" : !js ? "shape" : "data_offsets");
    if (!json_is_string(jd))
        return gen__error(GEN_EFORMAT, "%s: tensor '%s': dtype is not a string", label, name);
    gen__st_dtype dt = gen__st_dtype_from_name(json_string_value(jd));
    if (dt == GEN__ST_INVALID)
        return gen__error(GEN_EFORMAT, "%s: tensor '%s': unknown dtype \"%.40s\"", label, name,
                          json_string_value(jd));
    if (!json_is_array(js))
        return gen__error(GEN_EFORMAT, "%s: tensor '%s': shape is not an array", label, name);
    size_t ndim = json_array_size(js);
    if (ndim > GEN__ST_MAX_DIMS)
        return gen__error(GEN_EFORMAT, "%s: tensor '%s': shape has %zu dimensions (at most %d)",
                          label, name, ndim, GEN__ST_MAX_DIMS);
    memset(e, 0, sizeof(*e));
    e->name = name;
    e->view.dtype = dt;
    e->view.ndim = (int)ndim;
    /* numel and nbytes in 64 bits with overflow checks: a hostile shape must
     * not wrap around to match a small span. */
    uint64_t numel = 1;
    bool overflow = false;
    for (size_t i = 0; i < ndim; i++) {
        uint64_t d;
        char what[32];
        snprintf(what, sizeof(what), "shape[%zu]", i);
        gen_status st = parse_u64(label, name, what, json_array_get(js, i), &d);
        if (st != GEN_OK)
            return st;
        e->view.shape[i] = (int64_t)d;
        if (!overflow && __builtin_mul_overflow(numel, d, &numel))
            overflow = true;
    }
    uint64_t nbytes = 0;
    if (overflow || __builtin_mul_overflow(numel, (uint64_t)gen__st_dtype_size(dt), &nbytes)) {
        char shape[160];
        gen__shape_format(&e->view, shape, sizeof(shape));
        return gen__error(GEN_EFORMAT, "%s: tensor '%s': shape %s x %s overflows 64 bits", label,
                          name, shape, gen__st_dtype_name(dt));
    }
    if (!json_is_array(jo) || json_array_size(jo) != 2)
        return gen__error(GEN_EFORMAT, "%s: tensor '%s': data_offsets is not an array of 2 numbers",
                          label, name);
    gen_status st = parse_u64(label, name, "data_offsets[0]", json_array_get(jo, 0), &e->begin);
    if (st == GEN_OK)
        st = parse_u64(label, name, "data_offsets[1]", json_array_get(jo, 1), &e->end);
    if (st != GEN_OK)
        return st;
    if (e->begin > e->end)
        return gen__error(GEN_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin",
                          label, name, (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end > buf_size)
        return gen__error(GEN_EFORMAT,
                          "%s: tensor '%s': data_offsets [%llu, %llu] run past the end of the data "
                          "(%llu bytes): file truncated?",
                          label, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                          (unsigned long long)buf_size);
    if (e->end - e->begin != nbytes) {
        char shape[160];
        gen__shape_format(&e->view, shape, sizeof(shape));
        return gen__error(GEN_EFORMAT,
                          "%s: tensor '%s': shape %s x %s needs %llu bytes but data_offsets [%llu, "
                          "%llu] span %llu",
                          label, name, shape, gen__st_dtype_name(dt), (unsigned long long)nbytes,
                          (unsigned long long)e->begin, (unsigned long long)e->end,
                          (unsigned long long)(e->end - e->begin));
    }
    e->view.numel = numel;
    e->view.nbytes = (size_t)nbytes;
    return GEN_OK;
}

static gen_status parse_metadata(gen__st_file *f, json_t *obj)
{
    if (!json_is_object(obj))
        return gen__error(GEN_EFORMAT, "%s: __metadata__ is not a JSON object", f->path);
    size_t n = json_object_size(obj);
    f->meta = gen__calloc(n ? n : 1, sizeof(*f->meta));
    if (!f->meta)
        return gen__error(GEN_ENOMEM, "%s: out of memory reading __metadata__", f->path);
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        if (!json_is_string(v))
            return gen__error(GEN_EFORMAT, "%s: __metadata__ value of \"%.80s\" is not a string",
                              f->path, key);
        st_meta *m = &f->meta[f->meta_count];
        m->key = gen__strdup(key);
        m->value = m->key ? gen__strdup(json_string_value(v)) : NULL;
        if (!m->key || !m->value) {
            gen__free(m->key);
            m->key = NULL;
            return gen__error(GEN_ENOMEM, "%s: out of memory reading __metadata__", f->path);
        }
        f->meta_count++;
    }
    qsort(f->meta, f->meta_count, sizeof(*f->meta), cmp_meta_key);
    return GEN_OK;
}

/* Spans sorted by offset must tile the data buffer exactly: each starts where
 * the previous one ended, the last ends at the end of the file. */
static gen_status check_layout(const char *label, parse_entry *e, size_t n, uint64_t buf_size)
{
    qsort(e, n, sizeof(*e), cmp_entry_offset);
    uint64_t pos = 0;
    const char *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        if (e[i].begin < pos)
            return gen__error(GEN_EFORMAT,
                              "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s' (which "
                              "ends at %llu)",
                              label, e[i].name, (unsigned long long)e[i].begin,
                              (unsigned long long)e[i].end, prev, (unsigned long long)pos);
        if (e[i].begin > pos)
            return gen__error(GEN_EFORMAT,
                              "%s: tensor '%s': gap of %llu bytes before its data_offsets [%llu, %llu]",
                              label, e[i].name, (unsigned long long)(e[i].begin - pos),
                              (unsigned long long)e[i].begin, (unsigned long long)e[i].end);
        pos = e[i].end;
        prev = e[i].name;
    }
    if (pos != buf_size)
        return gen__error(GEN_EFORMAT, "%s: %llu bytes after the last tensor's data (%s)", label,
                          (unsigned long long)(buf_size - pos), n ? "trailing garbage" : "no tensors");
    return GEN_OK;
}

static gen_status parse_file(gen__st_file *f)
{
    const char *label = f->path;
    if (f->size < 8)
        return gen__error(GEN_EFORMAT,
                          "%s: file is %zu bytes, too short for the 8-byte header length: truncated",
                          label, f->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | f->base[i];
    if (hlen > GEN__ST_MAX_HEADER)
        return gen__error(GEN_EFORMAT, "%s: header length %llu exceeds the %llu-byte limit", label,
                          (unsigned long long)hlen, (unsigned long long)GEN__ST_MAX_HEADER);
    if (hlen > f->size - 8)
        return gen__error(GEN_EFORMAT,
                          "%s: header length %llu runs past the end of the file (%zu bytes): "
                          "truncated",
                          label, (unsigned long long)hlen, f->size);
    const char *header = (const char *)f->base + 8;
    if (hlen < 2 || header[0] != '{')
        return gen__error(GEN_EFORMAT, "%s: header does not start with '{': not a safetensors file",
                          label);
    uint64_t buf_size = f->size - 8 - hlen;
    const unsigned char *buf = f->base + 8 + hlen;

    json_error_t jerr;
    json_t *root = json_loadb(header, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_duplicate_key) {
            char key[128];
            duplicate_key_name(header, (size_t)hlen, jerr.position, key, sizeof(key));
            return gen__error(GEN_EFORMAT, "%s: header key \"%s\" appears twice (at byte %d)", label,
                              key, jerr.position);
        }
        if (json_error_code(&jerr) == json_error_out_of_memory)
            return gen__error(GEN_ENOMEM, "%s: out of memory parsing the header", label);
        return gen__error(GEN_EFORMAT, "%s: header is not valid JSON (byte %d): %s", label,
                          jerr.position, jerr.text);
    }
    gen_status st = GEN_OK;
    parse_entry *entries = NULL;
    size_t n = 0, names_len = 0;
    if (!json_is_object(root)) {
        st = gen__error(GEN_EFORMAT, "%s: header is not a JSON object", label);
        goto out;
    }
    size_t cap = json_object_size(root);
    entries = gen__calloc(cap ? cap : 1, sizeof(*entries));
    if (!entries) {
        st = gen__error(GEN_ENOMEM, "%s: out of memory reading the header", label);
        goto out;
    }
    const char *key;
    json_t *v;
    bool saw_meta = false;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            saw_meta = true;
            st = parse_metadata(f, v);
        } else {
            st = parse_tensor(label, key, v, buf_size, &entries[n]);
            if (st == GEN_OK) {
                names_len += strlen(key) + 1;
                n++;
            }
        }
        if (st != GEN_OK)
            goto out;
    }
    (void)saw_meta;
    st = check_layout(label, entries, n, buf_size);
    if (st != GEN_OK)
        goto out;

    f->tensors = gen__calloc(n ? n : 1, sizeof(*f->tensors));
    f->names = gen__malloc(names_len ? names_len : 1);
    if (!f->tensors || !f->names) {
        st = gen__error(GEN_ENOMEM, "%s: out of memory reading the header", label);
        goto out;
    }
    char *p = f->names;
    for (size_t i = 0; i < n; i++) {
        gen__st_view *t = &f->tensors[i];
        *t = entries[i].view;
        size_t len = strlen(entries[i].name) + 1;
        memcpy(p, entries[i].name, len);
        t->name = p;
        p += len;
        t->data = buf + entries[i].begin;
        size_t es = gen__st_dtype_size(t->dtype);
        t->aligned = ((uintptr_t)t->data % es) == 0;
    }
    f->count = n;
    qsort(f->tensors, n, sizeof(*f->tensors), cmp_view_name);
out:
    gen__free(entries);
    json_decref(root);
    return st;
}

/* ---------------------------------------------------------------- open/close */

static gen_status new_file(gen__st_file **out, const char *label)
{
    gen__st_file *f = gen__calloc(1, sizeof(*f));
    char *path = gen__strdup(label);
    if (!f || !path) {
        gen__free(f);
        gen__free(path);
        return gen__error(GEN_ENOMEM, "%s: out of memory", label);
    }
    f->path = path;
    *out = f;
    return GEN_OK;
}

gen_status gen__st_open_memory(gen__st_file **out, const void *data, size_t size,
                               const char *label)
{
    *out = NULL;
    if (!label)
        label = "<memory>";
    if (!data && size)
        return gen__error(GEN_EINVAL, "%s: NULL data", label);
    gen__st_file *f;
    gen_status st = new_file(&f, label);
    if (st != GEN_OK)
        return st;
    f->base = data;
    f->size = size;
    st = parse_file(f);
    if (st != GEN_OK) {
        gen__st_close(f);
        return st;
    }
    *out = f;
    return GEN_OK;
}

gen_status gen__st_open(gen__st_file **out, const char *path)
{
    *out = NULL;
    if (!path)
        return gen__error(GEN_EINVAL, "safetensors path is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return gen__error(errno == ENOENT ? GEN_ENOTFOUND : GEN_EIO, "%s: cannot open: %s", path,
                          strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return gen__error(GEN_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return gen__error(GEN_EIO, "%s: not a regular file", path);
    }
    gen__st_file *f;
    gen_status st = new_file(&f, path);
    if (st != GEN_OK) {
        close(fd);
        return st;
    }
    f->size = (size_t)sb.st_size;
    if (f->size > 0) {
        void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            gen__st_close(f);
            return gen__error(e == ENOMEM ? GEN_ENOMEM : GEN_EIO, "%s: cannot map %zu bytes: %s",
                              path, (size_t)sb.st_size, strerror(e));
        }
        f->base = m;
        f->mapped = true;
    }
    close(fd); /* the mapping keeps the file alive */
    st = parse_file(f);
    if (st != GEN_OK) {
        gen__st_close(f);
        return st;
    }
    *out = f;
    return GEN_OK;
}

void gen__st_close(gen__st_file *f)
{
    if (!f)
        return;
    if (f->mapped)
        munmap((void *)f->base, f->size);
    for (size_t i = 0; i < f->meta_count; i++) {
        gen__free(f->meta[i].key);
        gen__free(f->meta[i].value);
    }
    gen__free(f->meta);
    gen__free(f->tensors);
    gen__free(f->names);
    gen__free(f->path);
    gen__free(f);
}

const char *gen__st_path(const gen__st_file *f)
{
    return f->path;
}

uint64_t gen__st_file_size(const gen__st_file *f)
{
    return f->size;
}

size_t gen__st_count(const gen__st_file *f)
{
    return f->count;
}

const gen__st_view *gen__st_at(const gen__st_file *f, size_t i)
{
    return i < f->count ? &f->tensors[i] : NULL;
}

const gen__st_view *gen__st_find(const gen__st_file *f, const char *name)
{
    gen__st_view key = {.name = name};
    return bsearch(&key, f->tensors, f->count, sizeof(*f->tensors), cmp_view_name);
}

size_t gen__st_metadata_count(const gen__st_file *f)
{
    return f->meta_count;
}

const char *gen__st_metadata_key(const gen__st_file *f, size_t i)
{
    return i < f->meta_count ? f->meta[i].key : NULL;
}

const char *gen__st_metadata_get(const gen__st_file *f, const char *key)
{
    st_meta k = {.key = (char *)key};
    st_meta *m = bsearch(&k, f->meta, f->meta_count, sizeof(*f->meta), cmp_meta_key);
    return m ? m->value : NULL;
}

uint64_t gen__st_file_offset(const gen__st_file *f, const gen__st_view *t)
{
    return (uint64_t)((const unsigned char *)t->data - f->base);
}
