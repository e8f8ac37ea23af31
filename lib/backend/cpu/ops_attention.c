/* Memory-efficient attention: for each (batch, head, block of queries) the
 * scores of that block against all keys live in one thread's scratch
 * (QBLOCK x Nk floats), never the full [heads, Nq, Nk] matrix. */
#include <math.h>

#include "backend/cpu/cpu_internal.h"
#include "core/error.h"

#define QBLOCK 128


typedef struct attn_job {
    const float *q, *k, *v;
    float *out;
    int64_t b, nq, nk, heads, dk, dv, qblocks;
    float scale;
    bool causal;
    float **scratch;
} attn_job;

static void attn_task(void *arg, int64_t begin, int64_t end, int thread)
{
    const attn_job *j = arg;
    int64_t ldq = j->heads * j->dk, ldv = j->heads * j->dv;
    float *s = j->scratch[thread];
    for (int64_t t = begin; t < end; t++) {
        int64_t qb = t % j->qblocks, h = (t / j->qblocks) % j->heads, b = t / (j->qblocks * j->heads);
        int64_t i0 = qb * QBLOCK, i1 = i0 + QBLOCK < j->nq ? i0 + QBLOCK : j->nq;
        int64_t rows = i1 - i0;
        /* causal (top-left aligned): row i sees keys j <= i */
        int64_t nk = j->causal ? (i1 < j->nk ? i1 : j->nk) : j->nk;
        const float *q = j->q + (b * j->nq + i0) * ldq + h * j->dk;
        const float *k = j->k + b * j->nk * ldq + h * j->dk;
        const float *v = j->v + b * j->nk * ldv + h * j->dv;
        float *o = j->out + (b * j->nq + i0) * ldv + h * j->dv;
        gen__cpu_sgemm(false, true, rows, nk, j->dk, j->scale, q, ldq, k, ldq, 0.0f, s, nk);
        /* softmax numerators in place; the division by each row's sum is
         * applied to the Dv outputs instead of the Nk probabilities */
        float inv[QBLOCK];
        for (int64_t r = 0; r < rows; r++) {
            float *row = s + r * nk;
            if (j->causal)
                for (int64_t c = i0 + r + 1; c < nk; c++)
                    row[c] = -INFINITY;
            float mx = gen__cpu_row_max(row, nk);
            inv[r] = mx == -INFINITY ? NAN : (float)(1.0 / gen__cpu_exp_row(row, row, nk, 1.0f, mx));
        }
        gen__cpu_sgemm(false, false, rows, j->dv, nk, 1.0f, s, nk, v, ldv, 0.0f, o, ldv);
        for (int64_t r = 0; r < rows; r++)
            gen__cpu_scale_row(o + r * ldv, j->dv, inv[r]);
    }
}

gen_status gen__cpu_attention(gen__backend *be, gen__tensor *out, const gen__tensor *q,
                              const gen__tensor *k, const gen__tensor *v, int heads, float scale,
                              bool causal)
{
    gen__cpu_ctx *cx = gen__cpu(be);
    attn_job j = {q->data, k->data, v->data, out->data, q->shape[0], q->shape[1], k->shape[1],
                  heads, q->shape[2] / heads, v->shape[2] / heads, 0, scale, causal, NULL};
    j.qblocks = (j.nq + QBLOCK - 1) / QBLOCK;
    gen_status st = gen__cpu_scratch_reserve(cx, (size_t)(QBLOCK * j.nk), "attention");
    if (st != GEN_OK)
        return st;
    j.scratch = cx->scratch;
    gen__pool_run(cx->pool, j.b * heads * j.qblocks, 1, attn_task, &j);
    return GEN_OK;
}
