/* Host weight maps and their device copies (see weights.h). Both keep their
 * entries sorted by name (strcmp) so lookups are binary searches. */
#include "pipeline/weights.h"
#include "pipeline/weights_share.h"

#include <inttypes.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

struct gen__host_weights {
    char label[32];
    gen__host_tensor *items;
    size_t count, cap;
    void *owner;
    void (*release)(void *);
};

typedef struct device_entry {
    char *name;
    gen__tensor t;
} device_entry;

struct gen__device_weights {
    char label[32];
    gen__backend *be;
    gen__dtype dtype;
    device_entry *items; /* sorted by name; an overlay's own replacements */
    size_t count;
    uint64_t bytes;
    const gen__device_weights *base; /* non-NULL: a job-local overlay (weights.h) */
    size_t cap;                      /* overlays grow items */
};

gen_status gen__host_weights_create(gen__host_weights **out, const char *label)
{
    *out = NULL;
    gen__host_weights *hw = gen__calloc(1, sizeof *hw);
    if (!hw)
        return gen__error(GEN_ENOMEM, "%s weights: out of memory", label ? label : "model");
    snprintf(hw->label, sizeof hw->label, "%s", label ? label : "model");
    *out = hw;
    return GEN_OK;
}

void gen__host_weights_destroy(gen__host_weights *hw)
{
    if (!hw)
        return;
    for (size_t i = 0; i < hw->count; i++)
        gen__free(hw->items[i].name);
    gen__free(hw->items);
    if (hw->release)
        hw->release(hw->owner);
    gen__free(hw);
}

void gen__host_weights_set_owner(gen__host_weights *hw, void *owner, void (*release)(void *))
{
    hw->owner = owner;
    hw->release = release;
}

/* Index of the first entry whose name is >= name. */
static size_t host_lower_bound(const gen__host_weights *hw, const char *name)
{
    size_t lo = 0, hi = hw->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(hw->items[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

gen_status gen__host_weights_add(gen__host_weights *hw, const char *name, gen__dtype dtype,
                                 int ndim, const int64_t *shape, const void *data)
{
    gen__tensor desc;
    gen_status st = gen__tensor_describe(&desc, dtype, ndim, shape);
    if (st != GEN_OK)
        return gen__error_prefix("%s weight '%s': ", hw->label, name);
    if (!data)
        return gen__error(GEN_EINVAL, "%s weight '%s': no data", hw->label, name);
    size_t pos = host_lower_bound(hw, name);
    if (pos < hw->count && strcmp(hw->items[pos].name, name) == 0)
        return gen__error(GEN_EINVAL, "%s weight '%s' is given twice", hw->label, name);
    if (hw->count == hw->cap) {
        size_t cap = hw->cap ? hw->cap * 2 : 64;
        gen__host_tensor *items = gen__realloc(hw->items, cap * sizeof *items);
        if (!items)
            return gen__error(GEN_ENOMEM, "%s weights: out of memory", hw->label);
        hw->items = items;
        hw->cap = cap;
    }
    char *copy = gen__strdup(name);
    if (!copy)
        return gen__error(GEN_ENOMEM, "%s weights: out of memory", hw->label);
    memmove(&hw->items[pos + 1], &hw->items[pos], (hw->count - pos) * sizeof *hw->items);
    gen__host_tensor *t = &hw->items[pos];
    t->name = copy;
    t->dtype = dtype;
    t->ndim = ndim;
    memcpy(t->shape, desc.shape, sizeof t->shape);
    t->data = data;
    hw->count++;
    return GEN_OK;
}

const char *gen__host_weights_label(const gen__host_weights *hw)
{
    return hw->label;
}
size_t gen__host_weights_count(const gen__host_weights *hw)
{
    return hw->count;
}

const gen__host_tensor *gen__host_weights_at(const gen__host_weights *hw, size_t index)
{
    return index < hw->count ? &hw->items[index] : NULL;
}

const gen__host_tensor *gen__host_weights_find(const gen__host_weights *hw, const char *name)
{
    size_t pos = host_lower_bound(hw, name);
    return pos < hw->count && strcmp(hw->items[pos].name, name) == 0 ? &hw->items[pos] : NULL;
}

static int64_t host_numel(const gen__host_tensor *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= t->shape[d];
    return n;
}

uint64_t gen__host_weights_bytes(const gen__host_weights *hw, gen__dtype dtype)
{
    uint64_t total = 0;
    for (size_t i = 0; i < hw->count; i++)
        total += (uint64_t)host_numel(&hw->items[i]) * gen__dtype_size(dtype);
    return total;
}

/* ---- device copies -------------------------------------------------------- */

/* Host conversion goes through a bounded staging buffer so a 1 GB part never
 * needs a second full host copy. */
#define STAGE_ELEMS ((size_t)1 << 20)

/* stage: STAGE_ELEMS converted elements, raw: STAGE_ELEMS source elements
 * (an aligned copy: mapped files need not align their tensors). */
static gen_status upload_one(gen__tensor *dst, const gen__host_tensor *src, void *stage, void *raw)
{
    if (src->dtype == dst->dtype)
        return gen__tensor_upload(dst, src->data, gen__tensor_nbytes(dst));
    size_t n = (size_t)gen__tensor_numel(dst);
    size_t in_size = gen__dtype_size(src->dtype);
    gen__tensor flat;
    gen_status st = gen__tensor_view(&flat, dst, 1, (int64_t[]){(int64_t)n}, 0);
    for (size_t off = 0; st == GEN_OK && off < n; off += STAGE_ELEMS) {
        size_t len = n - off < STAGE_ELEMS ? n - off : STAGE_ELEMS;
        gen__tensor part;
        st = gen__tensor_view(&part, &flat, 1, (int64_t[]){(int64_t)len}, (int64_t)off);
        if (st != GEN_OK)
            break;
        const char *from = (const char *)src->data + off * in_size;
        if ((uintptr_t)from % in_size) { /* misaligned in the file: copy first */
            memcpy(raw, from, len * in_size);
            from = raw;
        }
        gen__convert_host(stage, dst->dtype, from, src->dtype, len);
        st = gen__tensor_upload(&part, stage, gen__tensor_nbytes(&part));
    }
    return st;
}

gen_status gen__device_weights_upload(gen__device_weights **out, const gen__host_weights *hw,
                                      gen__backend *be, gen__dtype dtype)
{
    *out = NULL;
    if (!be || (int)dtype < 0 || dtype >= GEN__DTYPE_COUNT)
        return gen__error(GEN_EINVAL, "%s weights: no device or invalid dtype", hw->label);
    if (!(be->compute_dtypes & (1u << dtype)))
        return gen__error(GEN_EUNSUPPORTED, "%s weights: %s cannot compute in %s", hw->label,
                          be->name, gen__dtype_name(dtype));
    gen__device_weights *dw = gen__calloc(1, sizeof *dw);
    void *stage = gen__malloc(STAGE_ELEMS * sizeof(float));
    void *raw = gen__malloc(STAGE_ELEMS * sizeof(float));
    if (!dw || !stage || !raw) {
        gen__free(dw);
        gen__free(stage);
        gen__free(raw);
        return gen__error(GEN_ENOMEM, "%s weights: out of memory", hw->label);
    }
    memcpy(dw->label, hw->label, sizeof dw->label);
    dw->be = be;
    dw->dtype = dtype;
    gen_status st = GEN_OK;
    if (hw->count) {
        dw->items = gen__calloc(hw->count, sizeof *dw->items);
        if (!dw->items)
            st = gen__error(GEN_ENOMEM, "%s weights: out of memory", hw->label);
    }
    for (size_t i = 0; st == GEN_OK && i < hw->count; i++) {
        const gen__host_tensor *src = &hw->items[i];
        device_entry *e = &dw->items[i];
        e->name = gen__strdup(src->name);
        if (!e->name) {
            st = gen__error(GEN_ENOMEM, "%s weights: out of memory", hw->label);
            break;
        }
        dw->count = i + 1;
        st = gen__tensor_alloc(&e->t, be, dtype, src->ndim, src->shape);
        if (st == GEN_OK)
            st = upload_one(&e->t, src, stage, raw);
        if (st != GEN_OK) {
            gen__error_prefix("%s weight '%s' on %s: ", hw->label, src->name, be->name);
            break;
        }
        dw->bytes += gen__tensor_nbytes(&e->t);
    }
    gen__free(stage);
    gen__free(raw);
    if (st == GEN_OK)
        st = gen__backend_synchronize(be);
    if (st != GEN_OK) {
        gen__device_weights_release(dw);
        return st;
    }
    *out = dw;
    return GEN_OK;
}

void gen__device_weights_release(gen__device_weights *dw)
{
    if (!dw)
        return;
    for (size_t i = 0; i < dw->count; i++) {
        gen__tensor_free(&dw->items[i].t);
        gen__free(dw->items[i].name);
    }
    gen__free(dw->items);
    gen__free(dw);
}

gen__backend *gen__device_weights_backend(const gen__device_weights *dw)
{
    return dw->be;
}
gen__dtype gen__device_weights_dtype(const gen__device_weights *dw)
{
    return dw->dtype;
}
const char *gen__device_weights_label(const gen__device_weights *dw)
{
    return dw->label;
}
uint64_t gen__device_weights_bytes(const gen__device_weights *dw)
{
    return dw->bytes;
}

/* Index of the first own entry whose name is >= name. */
static size_t device_lower_bound(const gen__device_weights *dw, const char *name)
{
    size_t lo = 0, hi = dw->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(dw->items[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* An overlay's own replacement first, then its base's tensor. */
static const device_entry *device_find(const gen__device_weights *dw, const char *name)
{
    for (; dw; dw = dw->base) {
        size_t pos = device_lower_bound(dw, name);
        if (pos < dw->count && strcmp(dw->items[pos].name, name) == 0)
            return &dw->items[pos];
    }
    return NULL;
}

size_t gen__device_weights_count(const gen__device_weights *dw)
{
    while (dw->base)
        dw = dw->base;
    return dw->count;
}

const char *gen__device_weights_name_at(const gen__device_weights *dw, size_t index)
{
    while (dw->base)
        dw = dw->base;
    return index < dw->count ? dw->items[index].name : NULL;
}

/* ---- overlays ------------------------------------------------------------------ */

gen_status gen__device_weights_overlay(gen__device_weights **out, const gen__device_weights *base)
{
    *out = NULL;
    gen__device_weights *ov = gen__calloc(1, sizeof *ov);
    if (!ov)
        return gen__error(GEN_ENOMEM, "%s weights: out of memory", base->label);
    memcpy(ov->label, base->label, sizeof ov->label);
    ov->be = base->be;
    ov->dtype = base->dtype;
    ov->base = base;
    *out = ov;
    return GEN_OK;
}

gen_status gen__device_weights_overlay_put(gen__device_weights *ov, const char *name,
                                           gen__tensor *t)
{
    if (!ov->base)
        return gen__error(GEN_EINVAL, "%s weights: not an overlay", ov->label);
    const device_entry *orig = device_find(ov->base, name);
    if (!orig)
        return gen__error(GEN_EINVAL, "%s: no weight '%s' to replace", ov->label, name);
    bool same = t->owned && t->backend == ov->be && t->dtype == orig->t.dtype &&
                t->ndim == orig->t.ndim;
    for (int d = 0; same && d < t->ndim; d++)
        same = t->shape[d] == orig->t.shape[d];
    if (!same) {
        char have[GEN__SHAPE_STR_MAX], want[GEN__SHAPE_STR_MAX];
        return gen__error(GEN_EINVAL, "%s: replacement of weight '%s' is %s%s, expected %s",
                          ov->label, name, gen__tensor_str(t, have, sizeof have),
                          t->owned ? "" : " (not owned)",
                          gen__tensor_str(&orig->t, want, sizeof want));
    }
    size_t pos = device_lower_bound(ov, name);
    if (pos < ov->count && strcmp(ov->items[pos].name, name) == 0)
        return gen__error(GEN_EINVAL, "%s: weight '%s' is replaced twice", ov->label, name);
    if (ov->count == ov->cap) {
        size_t cap = ov->cap ? ov->cap * 2 : 16;
        device_entry *items = gen__realloc(ov->items, cap * sizeof *items);
        if (!items)
            return gen__error(GEN_ENOMEM, "%s weights: out of memory", ov->label);
        ov->items = items;
        ov->cap = cap;
    }
    char *copy = gen__strdup(name);
    if (!copy)
        return gen__error(GEN_ENOMEM, "%s weights: out of memory", ov->label);
    memmove(&ov->items[pos + 1], &ov->items[pos], (ov->count - pos) * sizeof *ov->items);
    ov->items[pos].name = copy;
    ov->items[pos].t = *t;
    ov->count++;
    ov->bytes += gen__tensor_nbytes(t);
    *t = (gen__tensor)GEN__TENSOR_EMPTY;
    return GEN_OK;
}

const gen__device_weights *gen__device_weights_base(const gen__device_weights *dw)
{
    return dw->base;
}

size_t gen__device_weights_overlay_count(const gen__device_weights *dw)
{
    return dw->base ? dw->count : 0;
}

bool gen__weights_has(const gen__device_weights *dw, const char *name)
{
    return device_find(dw, name) != NULL;
}

const gen__tensor *gen__weights_peek(const gen__device_weights *dw, const char *name)
{
    const device_entry *e = device_find(dw, name);
    return e ? &e->t : NULL;
}

static void format_expected(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < ndim && n < size; d++) {
        if (shape[d] < 0)
            n += (size_t)snprintf(buf + n, size - n, "%s*", d ? "," : "");
        else
            n += (size_t)snprintf(buf + n, size - n, "%s%" PRId64, d ? "," : "", shape[d]);
    }
    if (n < size)
        snprintf(buf + n, size - n, "]");
}

gen_status gen__weights_get_opt(const gen__device_weights *dw, const char *name, int ndim,
                                const int64_t *shape, gen__tensor *out, bool *found)
{
    gen__tensor empty = GEN__TENSOR_EMPTY;
    *out = empty;
    *found = false;
    const device_entry *e = device_find(dw, name);
    if (!e)
        return GEN_OK;
    bool ok = e->t.ndim == ndim;
    for (int d = 0; ok && d < ndim; d++)
        ok = shape[d] < 0 || e->t.shape[d] == shape[d];
    if (!ok) {
        char have[GEN__SHAPE_STR_MAX], want[GEN__SHAPE_STR_MAX];
        format_expected(want, sizeof want, ndim, shape);
        return gen__error(GEN_EINVAL, "%s: weight '%s' is %s, expected %s", dw->label, name,
                          gen__tensor_str(&e->t, have, sizeof have), want);
    }
    gen_status st = gen__tensor_view(out, &e->t, e->t.ndim, e->t.shape, 0);
    if (st != GEN_OK)
        return st;
    *found = true;
    return GEN_OK;
}

gen_status gen__weights_view(const gen__device_weights *dw, const char *name, gen__tensor *out)
{
    gen__tensor empty = GEN__TENSOR_EMPTY;
    *out = empty;
    const device_entry *e = device_find(dw, name);
    if (!e)
        return gen__error(GEN_ENOTFOUND, "%s: weight '%s' is missing", dw->label, name);
    return gen__tensor_view(out, &e->t, e->t.ndim, e->t.shape, 0);
}

gen_status gen__weights_get(const gen__device_weights *dw, const char *name, int ndim,
                            const int64_t *shape, gen__tensor *out)
{
    bool found;
    gen_status st = gen__weights_get_opt(dw, name, ndim, shape, out, &found);
    if (st == GEN_OK && !found)
        return gen__error(GEN_ENOTFOUND, "%s: weight '%s' is missing", dw->label, name);
    return st;
}

/* ---- sharing between devices (weights_share.h) ------------------------------ */

/* Device kernels may use aligned vector loads: shared views must be as
 * aligned as the backend's own allocations. */
#define SHARE_ALIGN 64

static bool usable_as_is(const gen__host_tensor *t, gen__dtype dtype)
{
    return t->dtype == dtype && ((uintptr_t)t->data % SHARE_ALIGN) == 0;
}

bool gen__host_weights_all_dtype(const gen__host_weights *hw, gen__dtype dtype)
{
    for (size_t i = 0; i < hw->count; i++)
        if (!usable_as_is(&hw->items[i], dtype))
            return false;
    return true;
}

/* The source of a converted tensor is not read again: ask the kernel to drop
 * its pages now (file-backed pages of a mapped model are simply discarded and
 * re-read if ever touched), so converting a 1.7 GB part does not hold the file
 * and the converted copy in RAM at once. A hint only: never loses data. */
static void forget_source_pages(const void *data, size_t len)
{
#ifdef MADV_PAGEOUT
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)data / page * page;
    uintptr_t end = ((uintptr_t)data + len) / page * page; /* whole pages only */
    if (end > start)
        (void)madvise((void *)start, end - start, MADV_PAGEOUT);
#else
    (void)data;
    (void)len;
#endif
}

/* Owner of a converted map: the converted bytes plus the source map (whose
 * own owner keeps the mapped file alive for the views that were kept). */
typedef struct converted_owner {
    void *data;
    gen__host_weights *src;
} converted_owner;

static void release_converted(void *p)
{
    converted_owner *o = p;
    gen__free(o->data);
    gen__host_weights_destroy(o->src);
    gen__free(o);
}

gen_status gen__host_weights_to_dtype(gen__host_weights **out, gen__host_weights *src,
                                      gen__dtype dtype)
{
    *out = NULL;
    size_t esize = gen__dtype_size(dtype);
    uint64_t converted = 0;
    /* Each converted tensor starts on a SHARE_ALIGN boundary of the block. */
    for (size_t i = 0; i < src->count; i++)
        if (!usable_as_is(&src->items[i], dtype))
            converted += ((uint64_t)host_numel(&src->items[i]) * esize + SHARE_ALIGN - 1) /
                         SHARE_ALIGN * SHARE_ALIGN;
    if (converted == 0) {
        *out = src;
        return GEN_OK;
    }
    gen__host_weights *hw = NULL;
    gen_status st = gen__host_weights_create(&hw, src->label);
    if (st != GEN_OK)
        return st;
    converted_owner *owner = gen__calloc(1, sizeof *owner);
    char *data = converted <= SIZE_MAX ? gen__aligned_malloc(SHARE_ALIGN, (size_t)converted) : NULL;
    if (!owner || !data) {
        gen__free(owner);
        gen__free(data);
        gen__host_weights_destroy(hw);
        return gen__error(GEN_ENOMEM, "%s weights: cannot allocate %" PRIu64 " bytes to convert "
                                      "them to %s",
                          src->label, converted, gen__dtype_name(dtype));
    }
    size_t off = 0;
    for (size_t i = 0; st == GEN_OK && i < src->count; i++) {
        const gen__host_tensor *t = &src->items[i];
        const void *p = t->data;
        if (!usable_as_is(t, dtype)) {
            size_t n = (size_t)host_numel(t);
            gen__convert_host(data + off, dtype, t->data, t->dtype, n);
            forget_source_pages(t->data, n * gen__dtype_size(t->dtype));
            p = data + off;
            off += (n * esize + SHARE_ALIGN - 1) / SHARE_ALIGN * SHARE_ALIGN;
        }
        st = gen__host_weights_add(hw, t->name, dtype, t->ndim, t->shape, p);
    }
    if (st != GEN_OK) {
        gen__free(owner);
        gen__free(data);
        gen__host_weights_destroy(hw);
        return st;
    }
    owner->data = data;
    owner->src = src;
    bool views_kept = false;
    for (size_t i = 0; i < src->count; i++)
        views_kept = views_kept || usable_as_is(&src->items[i], dtype);
    if (!views_kept) {
        /* Everything was converted: let the source (and the file mapping
         * it keeps) go now, so its pages leave the resident set. */
        gen__host_weights_destroy(src);
        owner->src = NULL;
    }
    gen__host_weights_set_owner(hw, owner, release_converted);
    *out = hw;
    return GEN_OK;
}

gen_status gen__device_weights_alias(gen__device_weights **out, const gen__host_weights *hw,
                                     gen__backend *be, gen__dtype dtype)
{
    *out = NULL;
    if (!be || !(be->compute_dtypes & (1u << dtype)) || !gen__host_weights_all_dtype(hw, dtype))
        return gen__error(GEN_EINVAL, "%s weights: cannot be viewed as %s on %s", hw->label,
                          gen__dtype_name(dtype), be ? be->name : "(no device)");
    gen__device_weights *dw = gen__calloc(1, sizeof *dw);
    if (!dw || (hw->count && !(dw->items = gen__calloc(hw->count, sizeof *dw->items)))) {
        gen__free(dw);
        return gen__error(GEN_ENOMEM, "%s weights: out of memory", hw->label);
    }
    memcpy(dw->label, hw->label, sizeof dw->label);
    dw->be = be;
    dw->dtype = dtype;
    for (size_t i = 0; i < hw->count; i++) {
        const gen__host_tensor *src = &hw->items[i];
        device_entry *e = &dw->items[i];
        e->name = gen__strdup(src->name);
        dw->count = i + 1;
        gen_status st = e->name ? gen__tensor_describe(&e->t, dtype, src->ndim, src->shape)
                                : gen__error(GEN_ENOMEM, "%s weights: out of memory", hw->label);
        if (st != GEN_OK) {
            gen__device_weights_release(dw);
            return st;
        }
        e->t.data = (void *)src->data; /* borrowed: owned stays false */
        e->t.backend = be;
    }
    *out = dw;
    return GEN_OK;
}
