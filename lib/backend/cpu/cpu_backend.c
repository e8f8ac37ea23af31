/* The CPU device: creation, thread budget, accounted memory, copies, op table. */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "backend/cpu/cpu_internal.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"

/* Each block carries its raw pointer and size just below the aligned address. */
#define CPU_ALIGN 64
typedef struct block_header {
    void *raw;
    size_t bytes;
} block_header;

static int online_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int gen__cpu_thread_budget(int index, int device_count)
{
    int cores = online_cores();
    if (device_count < 1)
        device_count = 1;
    if (index < 0)
        index = 0;
    int i = index % device_count;
    int n = cores / device_count + (i < cores % device_count ? 1 : 0);
    return n < 1 ? 1 : n;
}

static uint64_t physical_ram(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : 0;
}

static uint64_t mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return 0;
    char line[256];
    uint64_t kb = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "MemAvailable: %" SCNu64 " kB", &kb) == 1)
            break;
    fclose(f);
    return kb * 1024;
}

gen_status gen__cpu_alloc(gen__backend *be, size_t bytes, void **out)
{
    gen__cpu_ctx *c = gen__cpu(be);
    *out = NULL;
    if (c->limit && atomic_load(&c->in_use) + bytes > c->limit)
        return gen__error(GEN_EDEVICE_OOM,
                          "%s: cannot allocate %zu bytes: %" PRIu64 " of its %" PRIu64
                          " byte limit in use",
                          be->name, bytes, (uint64_t)atomic_load(&c->in_use), c->limit);
    if (bytes > SIZE_MAX - CPU_ALIGN - sizeof(block_header))
        return gen__error(GEN_EDEVICE_OOM, "%s: cannot allocate %zu bytes", be->name, bytes);
    void *raw = gen__malloc(bytes + CPU_ALIGN + sizeof(block_header));
    if (!raw)
        return gen__error(GEN_EDEVICE_OOM, "%s: out of memory allocating %zu bytes", be->name,
                          bytes);
    uintptr_t p = ((uintptr_t)raw + sizeof(block_header) + CPU_ALIGN - 1) & ~(uintptr_t)(CPU_ALIGN - 1);
    block_header h = {raw, bytes};
    memcpy((char *)p - sizeof(h), &h, sizeof(h));
    unsigned long long now = atomic_fetch_add(&c->in_use, bytes) + bytes;
    unsigned long long peak = atomic_load(&c->peak);
    while (now > peak && !atomic_compare_exchange_weak(&c->peak, &peak, now)) {
    }
    *out = (void *)p;
    return GEN_OK;
}

void gen__cpu_free(gen__backend *be, void *ptr)
{
    if (!ptr)
        return;
    block_header h;
    memcpy(&h, (char *)ptr - sizeof(h), sizeof(h));
    atomic_fetch_sub(&gen__cpu(be)->in_use, h.bytes);
    gen__free(h.raw);
}

gen_status gen__cpu_scratch_reserve(gen__cpu_ctx *c, size_t floats, const char *op)
{
    for (int t = 0; t < c->threads; t++) {
        if (c->scratch_floats[t] >= floats)
            continue;
        gen__cpu_free(c->be, c->scratch[t]);
        c->scratch[t] = NULL;
        c->scratch_floats[t] = 0;
        void *p;
        gen_status st = gen__cpu_alloc(c->be, floats * sizeof(float), &p);
        if (st != GEN_OK)
            return gen__error_prefix("%s: scratch: ", op);
        c->scratch[t] = p;
        c->scratch_floats[t] = floats;
    }
    return GEN_OK;
}

static void cpu_mem_info(gen__backend *be, gen__backend_mem_info *out)
{
    gen__cpu_ctx *c = gen__cpu(be);
    out->bytes_in_use = atomic_load(&c->in_use);
    out->peak_bytes = atomic_load(&c->peak);
    out->capacity = c->capacity;
    uint64_t avail = mem_available();
    if (c->limit) {
        uint64_t left = c->limit > out->bytes_in_use ? c->limit - out->bytes_in_use : 0;
        if (avail == 0 || left < avail)
            avail = left;
    }
    out->available = avail;
}

static void cpu_reset_peak(gen__backend *be)
{
    gen__cpu_ctx *c = gen__cpu(be);
    atomic_store(&c->peak, atomic_load(&c->in_use));
}

static gen_status cpu_memcpy(gen__backend *be, void *dst, const void *src, size_t bytes)
{
    if (dst != src)
        memmove(dst, src, bytes);
    return GEN_OK;
}

static gen_status cpu_synchronize(gen__backend *be)
{
    return GEN_OK; /* every CPU op has finished when it returns */
}

static void cpu_destroy(gen__backend *be)
{
    gen__cpu_ctx *c = gen__cpu(be);
    if (c->scratch)
        for (int t = 0; t < c->threads; t++)
            gen__cpu_free(be, c->scratch[t]);
    unsigned long long left = atomic_load(&c->in_use);
    if (left)
        gen__log(NULL, GEN_LOG_WARN, "%s destroyed with %llu bytes of tensors still allocated",
                 be->name, left);
    gen__pool_destroy(c->pool);
    gen__free(c->scratch);
    gen__free(c->scratch_floats);
    gen__free(c);
    gen__free(be);
}

static const gen__backend_ops cpu_ops = {
    .destroy = cpu_destroy,
    .alloc = gen__cpu_alloc,
    .free = gen__cpu_free,
    .mem_info = cpu_mem_info,
    .reset_peak = cpu_reset_peak,
    .upload = cpu_memcpy,
    .download = cpu_memcpy,
    .copy = cpu_memcpy,
    .synchronize = cpu_synchronize,
    .fill = gen__cpu_fill,
    .convert = gen__cpu_convert,
    .gemm = gen__cpu_gemm,
    .linear = gen__cpu_linear,
    .conv2d = gen__cpu_conv2d,
    .group_norm = gen__cpu_group_norm,
    .layer_norm = gen__cpu_layer_norm,
    .softmax = gen__cpu_softmax,
    .attention = gen__cpu_attention,
    .unary = gen__cpu_unary,
    .geglu = gen__cpu_geglu,
    .binary = gen__cpu_binary,
    .axpby = gen__cpu_axpby,
    .upsample_nearest2x = gen__cpu_upsample_nearest2x,
    .concat = gen__cpu_concat,
    .transpose = gen__cpu_transpose,
    .timestep_embedding = gen__cpu_timestep_embedding,
    .embedding = gen__cpu_embedding,
};

/* OpenBLAS keeps one global thread count. We make it 1 for the whole process
 * (again at each device creation, in case the application changed it): every
 * CPU device then calls BLAS from its own threads on its own blocks, so
 * devices neither share nor serialise on OpenBLAS's pool (0.3.21 has no
 * per-call thread control). */
static pthread_mutex_t blas_mu = PTHREAD_MUTEX_INITIALIZER;
static void blas_single_threaded(void)
{
    pthread_mutex_lock(&blas_mu);
    if (openblas_get_num_threads() != 1)
        openblas_set_num_threads(1);
    pthread_mutex_unlock(&blas_mu);
}

gen_status gen__cpu_backend_create(gen__backend **out, const gen__cpu_backend_options *opts)
{
    *out = NULL;
    gen__cpu_backend_options o = {0, 0, 0};
    if (opts)
        o = *opts;
    if (o.index < 0)
        return gen__error(GEN_EINVAL, "cpu backend: device index %d is negative", o.index);
    if (o.threads <= 0)
        o.threads = gen__cpu_thread_budget(o.index, 1);
    if (o.threads > 1024)
        return gen__error(GEN_EINVAL, "cpu:%d: %d threads is too many", o.index, o.threads);
    blas_single_threaded();

    gen__backend *be = gen__calloc(1, sizeof(*be));
    gen__cpu_ctx *c = gen__calloc(1, sizeof(*c));
    if (!be || !c) {
        gen__free(be);
        gen__free(c);
        return gen__error(GEN_ENOMEM, "cpu:%d: out of memory", o.index);
    }
    be->ops = &cpu_ops;
    be->ctx = c;
    snprintf(be->name, sizeof(be->name), "cpu:%d", o.index);
    be->compute_dtypes = 1u << GEN__F32;
    c->be = be;
    c->threads = o.threads;
    c->limit = o.memory_limit;
    c->capacity = o.memory_limit ? o.memory_limit : physical_ram();
    atomic_init(&c->in_use, 0);
    atomic_init(&c->peak, 0);
    c->scratch = gen__calloc((size_t)o.threads, sizeof(float *));
    c->scratch_floats = gen__calloc((size_t)o.threads, sizeof(size_t));
    gen_status st = c->scratch && c->scratch_floats
                        ? gen__pool_create(&c->pool, o.threads)
                        : gen__error(GEN_ENOMEM, "cpu:%d: out of memory", o.index);
    if (st != GEN_OK) {
        gen__free(c->scratch);
        gen__free(c->scratch_floats);
        gen__free(c);
        gen__free(be);
        return gen__error_prefix("cpu:%d: ", o.index);
    }
    *out = be;
    return GEN_OK;
}
