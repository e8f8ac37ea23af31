/* Resolution of generation_devices against the machine, labels, and the
 * public gen_device_pool accessors. */
#include <stdio.h>
#include <string.h>

#include "backend/gpu_probe.h"
#include "core/alloc.h"
#include "core/error.h"
#include "device/device.h"

/* What the machine has: read once per resolution, or replaced by a test. */
typedef struct machine_gpus {
    int count;
    const char *why; /* reason when count is 0 */
    gen__gpu_props props[GEN__MAX_DEVICES];
} machine_gpus;

static const gen__gpu_props *fake_props;
static int fake_count = -1;

void gen__device_pool_set_fake_gpus(const gen__gpu_props *props, int count)
{
    fake_props = props;
    fake_count = props ? count : -1;
}

static gen_status probe_machine(machine_gpus *m)
{
    memset(m, 0, sizeof(*m));
    if (fake_count >= 0) {
        m->count = fake_count < GEN__MAX_DEVICES ? fake_count : GEN__MAX_DEVICES;
        m->why = "no CUDA device (test)";
        memcpy(m->props, fake_props, sizeof(*fake_props) * (size_t)m->count);
        return GEN_OK;
    }
    int n = gen__gpu_count(&m->why);
    m->count = n < GEN__MAX_DEVICES ? n : GEN__MAX_DEVICES;
    for (int i = 0; i < m->count; i++) {
        gen_status st = gen__gpu_props_get(i, &m->props[i]);
        if (st != GEN_OK)
            return st;
    }
    return GEN_OK;
}

/* label = name, or "name #rank" when rank > 0. */
static void set_label(gen__device *d, int rank)
{
    char name[sizeof(d->name)];
    memcpy(name, d->name, sizeof(name));
    if (rank > 0)
        snprintf(d->label, sizeof(d->label), "%s #%d", name, rank);
    else
        snprintf(d->label, sizeof(d->label), "%s", name);
}

/* Labels are computed over every CUDA device of the machine, not only the
 * selected ones, so "cuda:2" is "#3" whether or not cuda:1 is used. */
static void label_cuda(gen__device *d, const machine_gpus *m)
{
    int same = 0, rank = 0;
    for (int i = 0; i < m->count; i++) {
        if (strcmp(m->props[i].name, d->name) != 0)
            continue;
        same++;
        if (i <= d->ordinal)
            rank = same;
    }
    set_label(d, same > 1 ? rank : 0);
}

static void add_cuda(gen_device_pool *pool, int index, const machine_gpus *m)
{
    gen__device *d = &pool->devices[pool->count];
    const gen__gpu_props *props = &m->props[index];
    memset(d, 0, sizeof(*d));
    d->pool_index = pool->count;
    d->kind = GEN_DEVICE_CUDA;
    d->ordinal = index;
    d->compute_capability = props->compute_capability;
    d->total_memory = props->total_memory;
    snprintf(d->id, sizeof(d->id), "cuda:%d", index);
    snprintf(d->name, sizeof(d->name), "%s", props->name);
    label_cuda(d, m);
    pool->count++;
}

static void add_cpu(gen_device_pool *pool, int ordinal)
{
    gen__device *d = &pool->devices[pool->count];
    memset(d, 0, sizeof(*d));
    d->pool_index = pool->count;
    d->kind = GEN_DEVICE_CPU;
    d->ordinal = ordinal;
    d->total_memory = gen__host_total_ram();
    snprintf(d->id, sizeof(d->id), "cpu:%d", ordinal);
    snprintf(d->name, sizeof(d->name), "CPU");
    pool->count++;
}

/* Virtual CPU devices split the usable cores; the first ones get the remainder. */
static void assign_cpu_threads_and_labels(gen_device_pool *pool)
{
    int ncpu = 0;
    for (size_t i = 0; i < pool->count; i++)
        ncpu += pool->devices[i].kind == GEN_DEVICE_CPU;
    if (ncpu == 0)
        return;
    int cores = gen__host_cpu_count();
    int base = cores / ncpu, extra = cores % ncpu, seen = 0;
    for (size_t i = 0; i < pool->count; i++) {
        gen__device *d = &pool->devices[i];
        if (d->kind != GEN_DEVICE_CPU)
            continue;
        d->cpu_threads = base + (seen < extra ? 1 : 0);
        if (d->cpu_threads < 1)
            d->cpu_threads = 1; /* more virtual devices than cores: oversubscribed */
        seen++;
        set_label(d, ncpu > 1 ? seen : 0);
    }
}

static gen_status resolve_cuda_entry(gen_device_pool *pool, const gen__device_entry *e,
                                     const machine_gpus *m)
{
    char id[32];
    int machine_count = m->count;
    gen__device_entry_format(e, id, sizeof(id));
    if (machine_count == 0)
        return gen__error(GEN_EDEVICE,
                          "generation_devices: %s requested but CUDA is not available (%s)", id,
                          m->why ? m->why : "no CUDA device");
    int index = e->index;
    if (index < 0)
        index = fake_count >= 0 ? 0 : gen__gpu_current(); /* bare "cuda" */
    if (index >= machine_count)
        return gen__error(GEN_EINVAL,
                          "generation_devices: %s does not exist (this machine has %d CUDA "
                          "device%s: cuda:0..cuda:%d)",
                          id, machine_count, machine_count == 1 ? "" : "s", machine_count - 1);
    for (size_t i = 0; i < pool->count; i++) {
        if (pool->devices[i].kind == GEN_DEVICE_CUDA && pool->devices[i].ordinal == index)
            return GEN_OK; /* "cuda" and "cuda:0" name the same device */
    }
    add_cuda(pool, index, m);
    return GEN_OK;
}

GEN_API gen_status gen_device_pool_create(gen_device_pool **out, const char *generation_devices)
{
    if (!out)
        return gen__error(GEN_EINVAL, "gen_device_pool_create: out pointer is NULL");
    *out = NULL;
    gen__device_spec spec;
    gen_status st = gen__device_spec_parse(generation_devices, &spec);
    if (st != GEN_OK)
        return st;
    gen_device_pool *pool = gen__calloc(1, sizeof(*pool));
    if (!pool)
        return gen__error(GEN_ENOMEM, "gen_device_pool_create: cannot allocate the pool");

    machine_gpus *m = gen__malloc(sizeof(*m));
    if (!m) {
        gen__free(pool);
        return gen__error(GEN_ENOMEM, "gen_device_pool_create: cannot allocate the probe");
    }
    st = probe_machine(m);
    if (st == GEN_OK && spec.is_auto) {
        for (int i = 0; i < m->count; i++)
            add_cuda(pool, i, m);
        if (pool->count == 0)
            add_cpu(pool, 0);
    } else {
        for (size_t i = 0; i < spec.count && st == GEN_OK; i++) {
            const gen__device_entry *e = &spec.entries[i];
            if (e->kind == GEN__DEVICE_CUDA)
                st = resolve_cuda_entry(pool, e, m);
            else
                add_cpu(pool, e->index);
        }
    }
    gen__free(m);
    if (st != GEN_OK) {
        gen__free(pool);
        return st;
    }
    assign_cpu_threads_and_labels(pool);
    *out = pool;
    return GEN_OK;
}

GEN_API void gen_device_pool_destroy(gen_device_pool *pool)
{
    gen__free(pool);
}

const gen__device *gen__device_pool_at(const gen_device_pool *pool, size_t index)
{
    return pool && index < pool->count ? &pool->devices[index] : NULL;
}

GEN_API size_t gen_device_pool_count(const gen_device_pool *pool)
{
    return pool ? pool->count : 0;
}

GEN_API gen_device_kind gen_device_pool_kind(const gen_device_pool *pool, size_t index)
{
    const gen__device *d = gen__device_pool_at(pool, index);
    return d ? d->kind : GEN_DEVICE_CPU;
}

GEN_API int gen_device_pool_ordinal(const gen_device_pool *pool, size_t index)
{
    const gen__device *d = gen__device_pool_at(pool, index);
    return d ? d->ordinal : -1;
}

GEN_API const char *gen_device_pool_id(const gen_device_pool *pool, size_t index)
{
    const gen__device *d = gen__device_pool_at(pool, index);
    return d ? d->id : NULL;
}

GEN_API const char *gen_device_pool_name(const gen_device_pool *pool, size_t index)
{
    const gen__device *d = gen__device_pool_at(pool, index);
    return d ? d->name : NULL;
}

GEN_API const char *gen_device_pool_label(const gen_device_pool *pool, size_t index)
{
    const gen__device *d = gen__device_pool_at(pool, index);
    return d ? d->label : NULL;
}

GEN_API int gen_device_pool_cpu_threads(const gen_device_pool *pool, size_t index)
{
    const gen__device *d = gen__device_pool_at(pool, index);
    return d ? d->cpu_threads : 0;
}

GEN_API int gen_device_pool_compute_capability(const gen_device_pool *pool, size_t index)
{
    const gen__device *d = gen__device_pool_at(pool, index);
    return d ? d->compute_capability : 0;
}

gen_status gen__device_memory(const gen__device *d, uint64_t *free_bytes, uint64_t *total_bytes)
{
    if (d->kind == GEN_DEVICE_CUDA)
        return gen__gpu_memory(d->ordinal, free_bytes, total_bytes);
    *free_bytes = gen__host_available_ram();
    *total_bytes = gen__host_total_ram();
    return GEN_OK;
}

GEN_API gen_status gen_device_pool_memory(const gen_device_pool *pool, size_t index,
                                          uint64_t *free_bytes, uint64_t *total_bytes)
{
    const gen__device *d = gen__device_pool_at(pool, index);
    if (!d)
        return gen__error(GEN_EINVAL, "gen_device_pool_memory: index %zu is out of range (%zu "
                                      "devices)",
                          index, gen_device_pool_count(pool));
    if (!free_bytes || !total_bytes)
        return gen__error(GEN_EINVAL, "gen_device_pool_memory: NULL output pointer");
    return gen__device_memory(d, free_bytes, total_bytes);
}
