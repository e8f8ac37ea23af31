/* Group norm, layer norm and softmax. Statistics are accumulated in double
 * (two passes: mean, then centred variance) so they match a double reference. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"

typedef struct norm_job {
    const float *x, *gamma, *beta;
    float *out;
    int64_t channels, spatial, groups, cols;
    float eps, scale;
    bool silu;
} norm_job;

static void group_norm_task(void *arg, int64_t begin, int64_t end, int thread)
{
    const norm_job *j = arg;
    int64_t cpg = j->channels / j->groups;
    for (int64_t t = begin; t < end; t++) {
        int64_t n = t / j->groups, g = t % j->groups;
        int64_t off = (n * j->channels + g * cpg) * j->spatial, len = cpg * j->spatial;
        const float *x = j->x + off;
        float *y = j->out + off;
        double sum = 0.0;
        for (int64_t i = 0; i < len; i++)
            sum += x[i];
        double mean = sum / (double)len, var = 0.0;
        for (int64_t i = 0; i < len; i++) {
            double d = x[i] - mean;
            var += d * d;
        }
        double rstd = 1.0 / sqrt(var / (double)len + j->eps);
        for (int64_t c = 0; c < cpg; c++) {
            int64_t ch = g * cpg + c;
            double a = j->gamma ? rstd * j->gamma[ch] : rstd;
            double b = (j->beta ? j->beta[ch] : 0.0) - mean * a;
            float fa = (float)a, fb = (float)b;
            const float *xs = x + c * j->spatial;
            float *ys = y + c * j->spatial;
            if (j->silu)
                gen__cpu_silu_row(xs, ys, j->spatial, fa, fb);
            else
                for (int64_t i = 0; i < j->spatial; i++)
                    ys[i] = xs[i] * fa + fb;
        }
    }
}

gen_status gen__cpu_group_norm(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                               const gen__tensor *gamma, const gen__tensor *beta, int groups,
                               float eps, bool fuse_silu)
{
    norm_job j = {x->data, gamma ? gamma->data : NULL, beta ? beta->data : NULL, out->data,
                  x->shape[1], gen__tensor_dims(x, 2, x->ndim), groups, 0, eps, 1.0f, fuse_silu};
    gen__pool_run(gen__cpu(be)->pool, x->shape[0] * groups, 1, group_norm_task, &j);
    return GEN_OK;
}

static void layer_norm_task(void *arg, int64_t begin, int64_t end, int thread)
{
    const norm_job *j = arg;
    int64_t d = j->cols;
    for (int64_t r = begin; r < end; r++) {
        const float *x = j->x + r * d;
        float *y = j->out + r * d;
        double sum = 0.0;
        for (int64_t i = 0; i < d; i++)
            sum += x[i];
        double mean = sum / (double)d, var = 0.0;
        for (int64_t i = 0; i < d; i++) {
            double t = x[i] - mean;
            var += t * t;
        }
        float rstd = (float)(1.0 / sqrt(var / (double)d + j->eps));
        float fm = (float)mean;
        for (int64_t i = 0; i < d; i++) {
            float v = (x[i] - fm) * rstd;
            if (j->gamma)
                v *= j->gamma[i];
            if (j->beta)
                v += j->beta[i];
            y[i] = v;
        }
    }
}

gen_status gen__cpu_layer_norm(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                               const gen__tensor *gamma, const gen__tensor *beta, float eps)
{
    norm_job j = {x->data, gamma ? gamma->data : NULL, beta ? beta->data : NULL, out->data,
                  0, 0, 0, gen__tensor_cols(x), eps, 1.0f, false};
    int64_t grain = 4096 / (j.cols + 1) + 1;
    gen__pool_run(gen__cpu(be)->pool, gen__tensor_rows(x), grain, layer_norm_task, &j);
    return GEN_OK;
}

void gen__cpu_softmax_row(const float *x, float *y, int64_t n, float scale)
{
    /* max of scale * x: scale may be negative */
    float mx = scale >= 0.0f ? gen__cpu_row_max(x, n) * scale : -INFINITY;
    if (scale < 0.0f)
        for (int64_t i = 0; i < n; i++)
            mx = x[i] * scale > mx ? x[i] * scale : mx;
    if (mx == -INFINITY) { /* every entry masked: torch gives NaN; keep that */
        for (int64_t i = 0; i < n; i++)
            y[i] = NAN;
        return;
    }
    double sum = gen__cpu_exp_row(x, y, n, scale, mx);
    gen__cpu_scale_row(y, n, (float)(1.0 / sum));
}

static void softmax_task(void *arg, int64_t begin, int64_t end, int thread)
{
    const norm_job *j = arg;
    for (int64_t r = begin; r < end; r++)
        gen__cpu_softmax_row(j->x + r * j->cols, j->out + r * j->cols, j->cols, j->scale);
}

gen_status gen__cpu_softmax(gen__backend *be, gen__tensor *out, const gen__tensor *x, float scale)
{
    norm_job j = {x->data, NULL, NULL, out->data, 0, 0, 0, gen__tensor_cols(x), 0.0f, scale, false};
    int64_t grain = 4096 / (j.cols + 1) + 1;
    gen__pool_run(gen__cpu(be)->pool, gen__tensor_rows(x), grain, softmax_task, &j);
    return GEN_OK;
}
