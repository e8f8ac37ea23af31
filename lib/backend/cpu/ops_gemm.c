/* GEMM, Linear and Conv2d. OpenBLAS runs single-threaded; parallelism comes
 * from splitting the output into blocks, one sgemm per block, on the device's
 * own threads (the split depends only on shapes and the thread count). */
#include <string.h>

#include <cblas.h>

#include "backend/cpu/cpu_internal.h"
#include "core/error.h"

void gen__cpu_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                    const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                    float *c, int64_t ldc)
{
    if (k == 0 || alpha == 0.0f) { /* BLAS would skip the product; keep beta semantics */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (blasint)m, (blasint)n, (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb, beta,
                c, (blasint)ldc);
}

/* A batch of GEMMs split into tasks: task = (batch entry, block of rows or of
 * columns of C). bias (optional) is added per column (linear) or per row (conv). */
typedef struct gemm_job {
    int64_t batch, m, n, k;
    bool ta, tb;
    const float *a, *b;
    float *c;
    int64_t lda, ldb, ldc;
    int64_t stride_a, stride_b, stride_c; /* 0 = broadcast */
    float alpha, beta;
    const float *bias;
    bool bias_per_row;
    bool split_rows;
    int64_t block, blocks;
} gemm_job;

static void gemm_task(void *arg, int64_t begin, int64_t end, int thread)
{
    const gemm_job *j = arg;
    for (int64_t t = begin; t < end; t++) {
        int64_t bi = t / j->blocks, blk = t % j->blocks;
        const float *a = j->a + bi * j->stride_a;
        const float *b = j->b + bi * j->stride_b;
        float *c = j->c + bi * j->stride_c;
        int64_t m0 = 0, m1 = j->m, n0 = 0, n1 = j->n;
        if (j->split_rows) {
            m0 = blk * j->block;
            m1 = m0 + j->block < j->m ? m0 + j->block : j->m;
            a += j->ta ? m0 : m0 * j->lda;
        } else {
            n0 = blk * j->block;
            n1 = n0 + j->block < j->n ? n0 + j->block : j->n;
            b += j->tb ? n0 * j->ldb : n0;
        }
        float *cb = c + m0 * j->ldc + n0;
        gen__cpu_sgemm(j->ta, j->tb, m1 - m0, n1 - n0, j->k, j->alpha, a, j->lda, b, j->ldb,
                       j->beta, cb, j->ldc);
        if (j->bias) {
            for (int64_t i = m0; i < m1; i++) {
                float *row = c + i * j->ldc;
                if (j->bias_per_row) {
                    float v = j->bias[i];
                    for (int64_t x = n0; x < n1; x++)
                        row[x] += v;
                } else {
                    for (int64_t x = n0; x < n1; x++)
                        row[x] += j->bias[x];
                }
            }
        }
    }
}

/* Choose how to split each product so that there are enough tasks for the
 * threads, with blocks large enough to keep sgemm efficient. */
static void gemm_run(gen__cpu_ctx *cx, gemm_job *j)
{
    int threads = cx->threads;
    /* one thread: one sgemm per product (BLAS blocks best by itself) */
    int64_t want = threads == 1 || j->batch >= 2 * threads ? 1 : (2 * threads + j->batch - 1) / j->batch;
    j->split_rows = j->m >= j->n;
    int64_t dim = j->split_rows ? j->m : j->n;
    int64_t unit = j->split_rows ? 16 : 64;
    int64_t block = (dim + want - 1) / want;
    block = (block + unit - 1) / unit * unit;
    if (block < unit)
        block = unit;
    if (block > dim)
        block = dim;
    j->block = block;
    j->blocks = (dim + block - 1) / block;
    gen__pool_run(cx->pool, j->batch * j->blocks, 1, gemm_task, j);
}

gen_status gen__cpu_gemm(gen__backend *be, gen__tensor *c, const gen__tensor *a,
                         const gen__tensor *b, bool trans_a, bool trans_b, float alpha, float beta)
{
    gemm_job j;
    memset(&j, 0, sizeof(j));
    int64_t ar = a->shape[a->ndim - 2], ac = a->shape[a->ndim - 1];
    int64_t br = b->shape[b->ndim - 2], bc = b->shape[b->ndim - 1];
    j.m = trans_a ? ac : ar;
    j.k = trans_a ? ar : ac;
    j.n = trans_b ? br : bc;
    j.ta = trans_a;
    j.tb = trans_b;
    j.a = a->data;
    j.b = b->data;
    j.c = c->data;
    j.lda = ac;
    j.ldb = bc;
    j.ldc = j.n;
    j.batch = gen__tensor_dims(c, 0, -2);
    j.stride_a = gen__tensor_dims(a, 0, -2) == 1 ? 0 : (int64_t)ar * ac;
    j.stride_b = gen__tensor_dims(b, 0, -2) == 1 ? 0 : (int64_t)br * bc;
    j.stride_c = j.m * j.n;
    j.alpha = alpha;
    j.beta = beta;
    gemm_run(gen__cpu(be), &j);
    return GEN_OK;
}

gen_status gen__cpu_linear(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                           const gen__tensor *weight, const gen__tensor *bias)
{
    gemm_job j;
    memset(&j, 0, sizeof(j));
    j.batch = 1;
    j.m = gen__tensor_rows(x);
    j.k = gen__tensor_cols(x);
    j.n = weight->shape[0];
    j.tb = true;
    j.a = x->data;
    j.b = weight->data;
    j.c = out->data;
    j.lda = j.k;
    j.ldb = j.k;
    j.ldc = j.n;
    j.alpha = 1.0f;
    j.bias = bias ? bias->data : NULL;
    gemm_run(gen__cpu(be), &j);
    return GEN_OK;
}

/* ---- conv2d: blocked im2col + sgemm ------------------------------------------ */

typedef struct conv_job {
    const float *x, *w, *bias;
    float *out;
    int64_t ci, h, wd, co, kh, kw, ho, wo, kdim;
    gen__conv2d_params p;
    int64_t pix_block, pix_blocks, co_block, co_blocks;
    float **scratch;
} conv_job;

/* col[kk][q] for output pixels [p0, p1) of one image: kk = (ci, ky, kx). */
static void im2col_block(const conv_job *j, const float *x, int64_t p0, int64_t p1, float *col)
{
    int64_t np = p1 - p0;
    for (int64_t c = 0; c < j->ci; c++) {
        const float *xc = x + c * j->h * j->wd;
        for (int64_t ky = 0; ky < j->kh; ky++) {
            for (int64_t kx = 0; kx < j->kw; kx++) {
                float *dst = col + ((c * j->kh + ky) * j->kw + kx) * np;
                int64_t q = p0;
                while (q < p1) {
                    int64_t oy = q / j->wo, ox = q % j->wo;
                    int64_t run = j->wo - ox; /* rest of this output row */
                    if (run > p1 - q)
                        run = p1 - q;
                    int64_t iy = oy * j->p.stride_h - j->p.pad_top + ky;
                    float *d = dst + (q - p0);
                    if (iy < 0 || iy >= j->h) {
                        memset(d, 0, (size_t)run * sizeof(float));
                    } else {
                        const float *row = xc + iy * j->wd;
                        int64_t sw = j->p.stride_w, off = kx - j->p.pad_left;
                        if (sw == 1) {
                            /* ix = ox + off: zero the parts outside [0, W), copy the rest */
                            int64_t a = ox, b = ox + run;
                            int64_t lo = -off > a ? -off : a;           /* first ox with ix >= 0 */
                            int64_t hi = j->wd - off < b ? j->wd - off : b; /* end with ix < W */
                            if (hi < lo)
                                lo = hi = b;
                            for (int64_t o = a; o < lo; o++)
                                d[o - a] = 0.0f;
                            if (hi > lo)
                                memcpy(d + (lo - a), row + lo + off, (size_t)(hi - lo) * sizeof(float));
                            for (int64_t o = hi > lo ? hi : lo; o < b; o++)
                                d[o - a] = 0.0f;
                        } else {
                            for (int64_t r = 0; r < run; r++) {
                                int64_t ix = (ox + r) * sw + off;
                                d[r] = ix >= 0 && ix < j->wd ? row[ix] : 0.0f;
                            }
                        }
                    }
                    q += run;
                }
            }
        }
    }
}

static void conv_task(void *arg, int64_t begin, int64_t end, int thread)
{
    const conv_job *j = arg;
    int64_t per_image = j->pix_blocks * j->co_blocks;
    int64_t npix = j->ho * j->wo;
    for (int64_t t = begin; t < end; t++) {
        int64_t n = t / per_image, r = t % per_image;
        int64_t pb = r / j->co_blocks, cb = r % j->co_blocks;
        int64_t p0 = pb * j->pix_block, p1 = p0 + j->pix_block < npix ? p0 + j->pix_block : npix;
        int64_t c0 = cb * j->co_block, c1 = c0 + j->co_block < j->co ? c0 + j->co_block : j->co;
        const float *x = j->x + n * j->ci * j->h * j->wd;
        float *out = j->out + n * j->co * npix;
        const float *col;
        int64_t ldcol;
        if (!j->scratch) { /* 1x1, stride 1, no padding: the input is the column matrix */
            col = x + p0;
            ldcol = npix;
        } else {
            im2col_block(j, x, p0, p1, j->scratch[thread]);
            col = j->scratch[thread];
            ldcol = p1 - p0;
        }
        gen__cpu_sgemm(false, false, c1 - c0, p1 - p0, j->kdim, 1.0f, j->w + c0 * j->kdim, j->kdim,
                       col, ldcol, 0.0f, out + c0 * npix + p0, npix);
        if (j->bias)
            for (int64_t c = c0; c < c1; c++) {
                float v = j->bias[c], *row = out + c * npix;
                for (int64_t q = p0; q < p1; q++)
                    row[q] += v;
            }
    }
}

gen_status gen__cpu_conv2d(gen__backend *be, gen__tensor *out, const gen__tensor *x,
                           const gen__tensor *weight, const gen__tensor *bias,
                           const gen__conv2d_params *p)
{
    gen__cpu_ctx *cx = gen__cpu(be);
    conv_job j;
    memset(&j, 0, sizeof(j));
    j.x = x->data;
    j.w = weight->data;
    j.bias = bias ? bias->data : NULL;
    j.out = out->data;
    j.ci = x->shape[1];
    j.h = x->shape[2];
    j.wd = x->shape[3];
    j.co = weight->shape[0];
    j.kh = weight->shape[2];
    j.kw = weight->shape[3];
    j.ho = out->shape[2];
    j.wo = out->shape[3];
    j.kdim = j.ci * j.kh * j.kw;
    j.p = *p;
    if (gen__cpu_winograd_fits(j.ci, j.co, j.kh, j.kw, p, j.ho, j.wo)) {
        gen_status st = gen__cpu_conv2d_winograd(cx, out, x, weight, bias, p);
        /* Winograd needs more working memory (filter transform, wider
         * tiles); on a device near its limit, im2col may still fit. */
        if (st != GEN_EDEVICE_OOM || gen__cpu_conv_algorithm == GEN__CPU_CONV_WINOGRAD)
            return st;
    }
    int64_t batch = x->shape[0], npix = j.ho * j.wo;
    bool direct = j.kh == 1 && j.kw == 1 && p->stride_h == 1 && p->stride_w == 1 &&
                  p->pad_top == 0 && p->pad_bottom == 0 && p->pad_left == 0 && p->pad_right == 0;
    /* column blocks of about 2M floats (8 MiB per thread; measured best of 1M, 2M, 4M for
     * 320->320 at 64x64), a multiple of 16 pixels */
    int64_t pix = (int64_t)(1 << 21) / j.kdim;
    pix = pix < 16 ? 16 : pix / 16 * 16;
    if (pix > 1024)
        pix = 1024;
    int64_t want = cx->threads == 1 ? 1 : 2 * (int64_t)cx->threads;
    /* enough tasks for every thread: shrink pixel blocks, then split channels */
    while (batch * ((npix + pix - 1) / pix) < want && pix > 64)
        pix /= 2;
    if (pix > npix)
        pix = npix;
    j.pix_block = pix;
    j.pix_blocks = (npix + pix - 1) / pix;
    int64_t tasks = batch * j.pix_blocks;
    j.co_blocks = tasks >= want ? 1 : (want + tasks - 1) / tasks;
    if (j.co_blocks > (j.co + 31) / 32)
        j.co_blocks = (j.co + 31) / 32;
    if (j.co_blocks < 1)
        j.co_blocks = 1;
    j.co_block = (j.co + j.co_blocks - 1) / j.co_blocks;
    j.co_blocks = (j.co + j.co_block - 1) / j.co_block;
    if (!direct) {
        gen_status st = gen__cpu_scratch_reserve(cx, (size_t)(j.kdim * pix), "conv2d");
        if (st != GEN_OK)
            return st;
        j.scratch = cx->scratch;
    }
    gen__pool_run(cx->pool, batch * j.pix_blocks * j.co_blocks, 1, conv_task, &j);
    return GEN_OK;
}
