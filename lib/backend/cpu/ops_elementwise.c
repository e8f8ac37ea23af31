/* Element-wise ops, layout ops (upsample, concat, transpose), embeddings. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"
#include "core/error.h"

#define GRAIN 16384 /* elements per chunk: below this, threading costs more than it gains */

typedef struct ew_job {
    const float *a, *b;
    float *out;
    const void *src;
    void *dst;
    gen__dtype src_dtype, dst_dtype;
    float alpha, beta;
    int op;
    int64_t cols;
} ew_job;

static void fill_task(void *arg, int64_t begin, int64_t end, int thread)
{
    const ew_job *j = arg;
    for (int64_t i = begin; i < end; i++)
        j->out[i] = j->alpha;
}

gen_status gen__cpu_fill(gen__backend *be, gen__tensor *out, float value)
{
    if (out->dtype != GEN__F32) /* fill of stored f16/bf16: one converted pattern */
        return gen__error(GEN_EUNSUPPORTED, "fill: %s computes in f32 only", be->name);
    ew_job j = {.out = out->data, .alpha = value};
    gen__pool_run(gen__cpu(be)->pool, gen__tensor_numel(out), GRAIN, fill_task, &j);
    return GEN_OK;
}

static void convert_task(void *arg, int64_t begin, int64_t end, int thread)
{
    const ew_job *j = arg;
    size_t ds = gen__dtype_size(j->dst_dtype), ss = gen__dtype_size(j->src_dtype);
    gen__convert_host((char *)j->dst + (size_t)begin * ds, j->dst_dtype,
                      (const char *)j->src + (size_t)begin * ss, j->src_dtype, (size_t)(end - begin));
}

gen_status gen__cpu_convert(gen__backend *be, gen__tensor *out, const gen__tensor *x)
{
    if (out->data == x->data && out->dtype == x->dtype)
        return GEN_OK;
    if (out->data == x->data)
        return gen__error(GEN_EINVAL, "convert: in-place conversion between dtypes on %s",
                          be->name);
    ew_job j = {.src = x->data, .dst = out->data, .src_dtype = x->dtype, .dst_dtype = out->dtype};
    gen__pool_run(gen__cpu(be)->pool, gen__tensor_numel(out), GRAIN, convert_task, &j);
    return GEN_OK;
}

static inline float gelu_erf(float v)
{
    return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
}

static inline float gelu_tanh(float v)
{
    return 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
}

static void unary_task(void *arg, int64_t begin, int64_t end, int thread)
{
    const ew_job *j = arg;
    const float *x = j->a;
    float *y = j->out;
    switch ((gen__unary_op)j->op) {
    case GEN__UNARY_SILU:
        gen__cpu_silu_row(x + begin, y + begin, end - begin, 1.0f, 0.0f);
        break;
    case GEN__UNARY_GELU:
        for (int64_t i = begin; i < end; i++)
            y[i] = gelu_erf(x[i]);
        break;
    case GEN__UNARY_GELU_TANH:
        for (int64_t i = begin; i < end; i++)
            y[i] = gelu_tanh(x[i]);
        break;
    case GEN__UNARY_QUICK_GELU:
        for (int64_t i = begin; i < end; i++)
            y[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
        break;
    default:
        break;
    }
}

gen_status gen__cpu_unary(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                          gen__unary_op op)
{
    ew_job j = {.a = x->data, .out = out->data, .op = (int)op};
    gen__pool_run(gen__cpu(be)->pool, gen__tensor_numel(out), GRAIN / 4, unary_task, &j);
    return GEN_OK;
}

static void geglu_task(void *arg, int64_t begin, int64_t end, int thread)
{
    const ew_job *j = arg;
    int64_t d = j->cols;
    for (int64_t r = begin; r < end; r++) {
        const float *h = j->a + r * 2 * d, *g = h + d;
        float *y = j->out + r * d;
        for (int64_t i = 0; i < d; i++)
            y[i] = h[i] * gelu_erf(g[i]);
    }
}

gen_status gen__cpu_geglu(gen__backend *be, gen__tensor *out, const gen__tensor *x)
{
    ew_job j = {.a = x->data, .out = out->data, .cols = gen__tensor_cols(out)};
    gen__pool_run(gen__cpu(be)->pool, gen__tensor_rows(out), GRAIN / 4 / (j.cols + 1) + 1,
                  geglu_task, &j);
    return GEN_OK;
}

/* ---- broadcast binary ops ------------------------------------------------------- */

typedef struct bin_job {
    const float *a, *b;
    float *out;
    int op;
    int64_t shape[GEN__TENSOR_MAX_DIMS]; /* out shape, padded to 5 dims on the left */
    int64_t sa[GEN__TENSOR_MAX_DIMS], sb[GEN__TENSOR_MAX_DIMS]; /* element strides, 0 = broadcast */
} bin_job;

static void pad_strides(const gen__tensor *t, int64_t *strides)
{
    int off = GEN__TENSOR_MAX_DIMS - t->ndim;
    int64_t s = 1;
    for (int i = GEN__TENSOR_MAX_DIMS - 1; i >= 0; i--) {
        int64_t d = i >= off ? t->shape[i - off] : 1;
        strides[i] = d == 1 ? 0 : s;
        s *= d;
    }
}

static void binary_task(void *arg, int64_t begin, int64_t end, int thread)
{
    const bin_job *j = arg;
    int64_t w = j->shape[4], sa = j->sa[4], sb = j->sb[4];
    for (int64_t r = begin; r < end; r++) {
        int64_t rem = r, oa = 0, ob = 0;
        for (int i = 3; i >= 0; i--) {
            int64_t idx = rem % j->shape[i];
            rem /= j->shape[i];
            oa += idx * j->sa[i];
            ob += idx * j->sb[i];
        }
        const float *a = j->a + oa, *b = j->b + ob;
        float *y = j->out + r * w;
        if (j->op == GEN__BINARY_ADD)
            for (int64_t x = 0; x < w; x++)
                y[x] = a[x * sa] + b[x * sb];
        else
            for (int64_t x = 0; x < w; x++)
                y[x] = a[x * sa] * b[x * sb];
    }
}

static void same_shape_task(void *arg, int64_t begin, int64_t end, int thread)
{
    const bin_job *j = arg;
    if (j->op == GEN__BINARY_ADD)
        for (int64_t i = begin; i < end; i++)
            j->out[i] = j->a[i] + j->b[i];
    else
        for (int64_t i = begin; i < end; i++)
            j->out[i] = j->a[i] * j->b[i];
}

gen_status gen__cpu_binary(gen__backend *be, gen__tensor *out, const gen__tensor *a,
                           const gen__tensor *b, gen__binary_op op)
{
    bin_job j = {.a = a->data, .b = b->data, .out = out->data, .op = (int)op};
    gen__pool *pool = gen__cpu(be)->pool;
    if (gen__tensor_same_shape(a, b)) {
        gen__pool_run(pool, gen__tensor_numel(out), GRAIN, same_shape_task, &j);
        return GEN_OK;
    }
    pad_strides(a, j.sa);
    pad_strides(b, j.sb);
    int off = GEN__TENSOR_MAX_DIMS - out->ndim;
    for (int i = 0; i < GEN__TENSOR_MAX_DIMS; i++)
        j.shape[i] = i >= off ? out->shape[i - off] : 1;
    int64_t rows = gen__tensor_numel(out) / j.shape[4];
    gen__pool_run(pool, rows, GRAIN / (j.shape[4] + 1) + 1, binary_task, &j);
    return GEN_OK;
}

static void axpby_task(void *arg, int64_t begin, int64_t end, int thread)
{
    const ew_job *j = arg;
    if (j->b)
        for (int64_t i = begin; i < end; i++)
            j->out[i] = j->alpha * j->a[i] + j->beta * j->b[i];
    else
        for (int64_t i = begin; i < end; i++)
            j->out[i] = j->alpha * j->a[i];
}

gen_status gen__cpu_axpby(gen__backend *be, gen__tensor *out, float alpha, const gen__tensor *a,
                          float beta, const gen__tensor *b)
{
    ew_job j = {.a = a->data, .b = b ? b->data : NULL, .out = out->data, .alpha = alpha,
                .beta = beta};
    gen__pool_run(gen__cpu(be)->pool, gen__tensor_numel(out), GRAIN, axpby_task, &j);
    return GEN_OK;
}

/* ---- layout ops -------------------------------------------------------------------- */

static void upsample_task(void *arg, int64_t begin, int64_t end, int thread)
{
    const ew_job *j = arg;
    int64_t w = j->cols;
    for (int64_t r = begin; r < end; r++) { /* r: input row over N*C*H */
        const float *x = j->a + r * w;
        float *y = j->out + r * 4 * w;
        for (int64_t i = 0; i < w; i++)
            y[2 * i] = y[2 * i + 1] = x[i];
        memcpy(y + 2 * w, y, (size_t)(2 * w) * sizeof(float));
    }
}

gen_status gen__cpu_upsample_nearest2x(gen__backend *be, gen__tensor *out, const gen__tensor *x)
{
    ew_job j = {.a = x->data, .out = out->data, .cols = x->shape[3]};
    gen__pool_run(gen__cpu(be)->pool, gen__tensor_rows(x), GRAIN / (4 * j.cols + 1) + 1,
                  upsample_task, &j);
    return GEN_OK;
}

typedef struct concat_job {
    const float *a, *b;
    float *out;
    int64_t ia, ib; /* contiguous elements per outer index */
} concat_job;

static void concat_task(void *arg, int64_t begin, int64_t end, int thread)
{
    const concat_job *j = arg;
    for (int64_t o = begin; o < end; o++) {
        float *y = j->out + o * (j->ia + j->ib);
        memcpy(y, j->a + o * j->ia, (size_t)j->ia * sizeof(float));
        memcpy(y + j->ia, j->b + o * j->ib, (size_t)j->ib * sizeof(float));
    }
}

gen_status gen__cpu_concat(gen__backend *be, gen__tensor *out, const gen__tensor *a,
                           const gen__tensor *b, int dim)
{
    int64_t inner = gen__tensor_dims(out, dim + 1, out->ndim);
    concat_job j = {a->data, b->data, out->data, a->shape[dim] * inner, b->shape[dim] * inner};
    gen__pool_run(gen__cpu(be)->pool, gen__tensor_dims(out, 0, dim),
                  GRAIN / (j.ia + j.ib + 1) + 1, concat_task, &j);
    return GEN_OK;
}

typedef struct transpose_job {
    const float *x;
    float *out;
    int64_t p, q, tiles_p;
} transpose_job;

#define TILE 32

static void transpose_task(void *arg, int64_t begin, int64_t end, int thread)
{
    const transpose_job *j = arg;
    for (int64_t t = begin; t < end; t++) { /* t: (batch, tile row of P) */
        int64_t bi = t / j->tiles_p, p0 = (t % j->tiles_p) * TILE;
        int64_t p1 = p0 + TILE < j->p ? p0 + TILE : j->p;
        const float *x = j->x + bi * j->p * j->q;
        float *y = j->out + bi * j->p * j->q;
        for (int64_t q0 = 0; q0 < j->q; q0 += TILE) {
            int64_t q1 = q0 + TILE < j->q ? q0 + TILE : j->q;
            for (int64_t qq = q0; qq < q1; qq++)
                for (int64_t pp = p0; pp < p1; pp++)
                    y[qq * j->p + pp] = x[pp * j->q + qq];
        }
    }
}

gen_status gen__cpu_transpose(gen__backend *be, gen__tensor *out, const gen__tensor *x)
{
    transpose_job j = {x->data, out->data, x->shape[x->ndim - 2], x->shape[x->ndim - 1], 0};
    j.tiles_p = (j.p + TILE - 1) / TILE;
    gen__pool_run(gen__cpu(be)->pool, gen__tensor_dims(x, 0, -2) * j.tiles_p, 1, transpose_task,
                  &j);
    return GEN_OK;
}

/* ---- embeddings ------------------------------------------------------------------------ */

gen_status gen__cpu_timestep_embedding(gen__backend *be, gen__tensor *out, const float *timesteps,
                                       bool flip_sin_to_cos, float downscale_freq_shift,
                                       float scale, float max_period)
{
    int64_t n = out->shape[0], dim = out->shape[1], half = dim / 2;
    float *y = out->data;
    /* diffusers' arithmetic step by step in f32 (the same roundings as torch),
     * so the embedding matches the reference bit-for-bit or within an ulp */
    float neg_log = (float)-log((double)max_period);
    float denom = (float)((double)half - (double)downscale_freq_shift);
    for (int64_t r = 0; r < n; r++) {
        float *row = y + r * dim;
        for (int64_t i = 0; i < half; i++) {
            float e = expf(neg_log * (float)i / denom);
            float arg = scale * (timesteps[r] * e);
            float s = sinf(arg), c = cosf(arg);
            row[i] = flip_sin_to_cos ? c : s;
            row[half + i] = flip_sin_to_cos ? s : c;
        }
        if (dim % 2)
            row[dim - 1] = 0.0f;
    }
    return GEN_OK;
}

gen_status gen__cpu_embedding(gen__backend *be, gen__tensor *out, const gen__tensor *table,
                              const int32_t *ids)
{
    int64_t d = table->shape[1], rows = gen__tensor_rows(out);
    const float *t = table->data;
    float *y = out->data;
    for (int64_t r = 0; r < rows; r++)
        memcpy(y + r * d, t + (int64_t)ids[r] * d, (size_t)d * sizeof(float));
    return GEN_OK;
}
