/* 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3).
 *
 * Every filter g (3x3) becomes U = G g G^T and every 4x4 input tile d becomes
 * V = B^T d B; in that 4x4 transform domain the convolution is 16 independent
 * products M[xi] = U[xi] (Co x Ci) . V[xi] (Ci x tiles), and each 2x2 output
 * tile is A^T M A. That is 16 multiplies per 4 outputs instead of 36: 2.25x
 * fewer than im2col's one big product, for the cost of the transforms (adds
 * only). The transform matrices hold only 0, +-1 and 1/2, so the result agrees
 * with direct convolution to float rounding (tests/backend/test_cpu_ops.c).
 *
 *   G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 */
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

#include "backend/cpu/cpu_internal.h"
#include "core/error.h"

int gen__cpu_conv_algorithm = GEN__CPU_CONV_AUTO;

/* Per-thread working set: V (16 x Ci x TB) and M (16 x Co x TB) floats. */
#define WINO_SCRATCH_FLOATS (4 << 20)

bool gen__cpu_winograd_fits(int64_t ci, int64_t co, int64_t kh, int64_t kw,
                            const gen__conv2d_params *p, int64_t ho, int64_t wo)
{
    if (kh != 3 || kw != 3 || p->stride_h != 1 || p->stride_w != 1)
        return false;
    if (gen__cpu_conv_algorithm == GEN__CPU_CONV_WINOGRAD)
        return true;
    if (gen__cpu_conv_algorithm == GEN__CPU_CONV_IM2COL)
        return false;
    /* Measured (bench_ops conv rows): the filter transform and the narrower
     * products only pay off with enough tiles and channels. */
    int64_t tiles = ((ho + 1) / 2) * ((wo + 1) / 2);
    return ci >= 32 && co >= 32 && tiles >= 256;
}

typedef struct filter_job {
    const float *w;
    float *u;
    int64_t ci, co;
} filter_job;

/* U[xi][o][c] for output channels [o0, o1). */
static void filter_task(void *arg, int64_t o0, int64_t o1, int thread)
{
    (void)thread;
    const filter_job *fj = arg;
    const float *w = fj->w;
    float *u = fj->u;
    const int64_t ci = fj->ci, co = fj->co;
    for (int64_t o = o0; o < o1; o++) {
        for (int64_t c = 0; c < ci; c++) {
            const float *g = w + (o * ci + c) * 9;
            float t[4][3];
            for (int j = 0; j < 3; j++) {
                t[0][j] = g[j];
                t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
                t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
                t[3][j] = g[6 + j];
            }
            for (int i = 0; i < 4; i++) {
                float r[4] = {t[i][0], 0.5f * (t[i][0] + t[i][1] + t[i][2]),
                              0.5f * (t[i][0] - t[i][1] + t[i][2]), t[i][2]};
                for (int j = 0; j < 4; j++)
                    u[((int64_t)(i * 4 + j) * co + o) * ci + c] = r[j];
            }
        }
    }
}

typedef struct wino_job {
    const float *x, *u, *bias;
    float *out;
    int64_t batch, ci, co, h, w, ho, wo;
    int pad_top, pad_left;
    int64_t tiles_w, tiles, tile_block; /* tiles per image; per task (all images in one range) */
    float **scratch;
} wino_job;

/* The transforms run along rows of tiles so that every loop below walks
 * contiguous (or stride-2) memory and vectorises: GCC does that at -O3 (its
 * -O2 vectoriser gives up on these loops; measured 1.4x slower convolutions),
 * hence the per-function optimize; clang vectorises them at -O2. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3")))
#elif defined(__GNUC__) && !defined(__clang__)
#define CLONES __attribute__((optimize("O3")))
#else
#define CLONES
#endif

/* Row buffers of one tile-row segment of up to `tiles_w` tiles: input_segment
 * uses 8 rows of 2 tiles_w + 2 floats, output_segment 8 rows of tiles_w. */
static int64_t row_floats(int64_t tiles_w)
{
    return 8 * (2 * tiles_w + 2);
}

/* V[xi][c][off + k] for the tiles k = 0..seg-1 of tile row ty starting at tx0. */
CLONES static void input_segment(const wino_job *j, const float *x, int64_t ty, int64_t tx0,
                                 int64_t seg, float *restrict v, int64_t off, int64_t tb,
                                 float *restrict rows)
{
    const int64_t width = 2 * seg + 2, ix0 = 2 * tx0 - j->pad_left, stride_xi = j->ci * tb;
    float *restrict p = rows;             /* 4 input rows, zero-padded */
    float *restrict r = rows + 4 * width; /* B^T applied down the columns */
    int64_t lo = ix0 < 0 ? -ix0 : 0;                     /* first k with ix in range */
    int64_t hi = j->w - ix0 < width ? j->w - ix0 : width; /* end of k in range */
    if (hi < lo)
        hi = lo;
    for (int64_t c = 0; c < j->ci; c++) {
        const float *xc = x + c * j->h * j->w;
        for (int a = 0; a < 4; a++) {
            int64_t iy = 2 * ty - j->pad_top + a;
            float *pa = p + a * width;
            if (iy < 0 || iy >= j->h || hi == lo) {
                memset(pa, 0, (size_t)width * sizeof(float));
                continue;
            }
            if (lo > 0)
                memset(pa, 0, (size_t)lo * sizeof(float));
            memcpy(pa + lo, xc + iy * j->w + ix0 + lo, (size_t)(hi - lo) * sizeof(float));
            if (hi < width)
                memset(pa + hi, 0, (size_t)(width - hi) * sizeof(float));
        }
        const float *p0 = p, *p1 = p + width, *p2 = p + 2 * width, *p3 = p + 3 * width;
        float *r0 = r, *r1 = r + width, *r2 = r + 2 * width, *r3 = r + 3 * width;
        for (int64_t k = 0; k < width; k++) {
            r0[k] = p0[k] - p2[k];
            r1[k] = p1[k] + p2[k];
            r2[k] = p2[k] - p1[k];
            r3[k] = p1[k] - p3[k];
        }
        float *vc = v + c * tb + off;
        for (int a = 0; a < 4; a++) {
            const float *ra = r + a * width;
            float *v0 = vc + (a * 4 + 0) * stride_xi, *v1 = vc + (a * 4 + 1) * stride_xi;
            float *v2 = vc + (a * 4 + 2) * stride_xi, *v3 = vc + (a * 4 + 3) * stride_xi;
            for (int64_t k = 0; k < seg; k++) {
                float e0 = ra[2 * k], o0 = ra[2 * k + 1], e1 = ra[2 * k + 2], o1 = ra[2 * k + 3];
                v0[k] = e0 - e1;
                v1[k] = o0 + e1;
                v2[k] = e1 - o0;
                v3[k] = o0 - o1;
            }
        }
    }
}

/* Output rows of tiles k = 0..seg-1 of tile row ty from tx0, from
 * M[xi][o][off + k], plus bias. */
CLONES static void output_segment(const wino_job *j, const float *m, int64_t ty, int64_t tx0,
                                  int64_t seg, int64_t off, int64_t tb, float *out,
                                  float *restrict rows)
{
    const int64_t stride_xi = j->co * tb, oy = 2 * ty, ox = 2 * tx0;
    /* whole output pairs; a last tile cut by an odd width is done apart */
    const int64_t pairs = ox + 2 * seg <= j->wo ? seg : seg - 1;
    float *restrict s = rows; /* s[a][b][k]: A^T m down the columns */
    for (int64_t o = 0; o < j->co; o++) {
        const float *mo = m + o * tb + off;
        const float bias = j->bias ? j->bias[o] : 0.0f;
        for (int b = 0; b < 4; b++) {
            const float *m0 = mo + (0 * 4 + b) * stride_xi, *m1 = mo + (1 * 4 + b) * stride_xi;
            const float *m2 = mo + (2 * 4 + b) * stride_xi, *m3 = mo + (3 * 4 + b) * stride_xi;
            float *s0 = s + (0 * 4 + b) * seg, *s1 = s + (1 * 4 + b) * seg;
            for (int64_t k = 0; k < seg; k++) {
                s0[k] = m0[k] + m1[k] + m2[k];
                s1[k] = m1[k] - m2[k] - m3[k];
            }
        }
        for (int a = 0; a < 2 && oy + a < j->ho; a++) {
            const float *sa0 = s + (a * 4 + 0) * seg, *sa1 = s + (a * 4 + 1) * seg;
            const float *sa2 = s + (a * 4 + 2) * seg, *sa3 = s + (a * 4 + 3) * seg;
            float *row = out + o * j->ho * j->wo + (oy + a) * j->wo + ox;
            for (int64_t k = 0; k < pairs; k++) {
                row[2 * k] = sa0[k] + sa1[k] + sa2[k] + bias;
                row[2 * k + 1] = sa1[k] - sa2[k] - sa3[k] + bias;
            }
            if (pairs < seg)
                row[2 * pairs] = sa0[pairs] + sa1[pairs] + sa2[pairs] + bias;
        }
    }
}

static void tile_task(void *arg, int64_t begin, int64_t end, int thread)
{
    const wino_job *j = arg;
    const int64_t tb = j->tile_block;
    float *v = j->scratch[thread], *m = v + 16 * j->ci * tb, *rows = m + 16 * j->co * tb;
    const int64_t total = j->batch * j->tiles;
    for (int64_t task = begin; task < end; task++) {
        /* A task's tiles may span images: one product for both images of a
         * CFG batch packs the filters once instead of once per image. */
        int64_t t0 = task * tb, t1 = t0 + tb < total ? t0 + tb : total;
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1)
                for (int xi = 0; xi < 16; xi++)
                    gen__cpu_sgemm(false, false, j->co, t1 - t0, j->ci, 1.0f,
                                   j->u + xi * j->co * j->ci, j->ci, v + xi * j->ci * tb, tb, 0.0f,
                                   m + xi * j->co * tb, tb);
            for (int64_t t = t0; t < t1;) { /* segments within one tile row of one image */
                int64_t n = t / j->tiles, local = t % j->tiles;
                int64_t ty = local / j->tiles_w, tx = local % j->tiles_w;
                int64_t seg = j->tiles_w - tx < t1 - t ? j->tiles_w - tx : t1 - t;
                if (pass == 0)
                    input_segment(j, j->x + n * j->ci * j->h * j->w, ty, tx, seg, v, t - t0, tb,
                                  rows);
                else
                    output_segment(j, m, ty, tx, seg, t - t0, tb,
                                   j->out + n * j->co * j->ho * j->wo, rows);
                t += seg;
            }
        }
    }
}

gen_status gen__cpu_conv2d_winograd(gen__cpu_ctx *cx, gen__tensor *out, const gen__tensor *x,
                                    const gen__tensor *weight, const gen__tensor *bias,
                                    const gen__conv2d_params *p)
{
    wino_job j;
    memset(&j, 0, sizeof j);
    j.x = x->data;
    j.bias = bias ? bias->data : NULL;
    j.out = out->data;
    j.ci = x->shape[1];
    j.h = x->shape[2];
    j.w = x->shape[3];
    j.co = weight->shape[0];
    j.ho = out->shape[2];
    j.wo = out->shape[3];
    j.pad_top = p->pad_top;
    j.pad_left = p->pad_left;
    j.tiles_w = (j.wo + 1) / 2;
    j.tiles = ((j.ho + 1) / 2) * j.tiles_w;
    j.batch = x->shape[0];

    /* Tiles per task: as many as the scratch bound allows (up to 256; every
     * task packs all 16 filter matrices, so fewer, larger products are
     * faster), in a number of tasks that is a multiple of the threads (equal
     * shares), a multiple of 16 tiles for the products' inner loops. */
    const int64_t total = j.batch * j.tiles;
    int64_t tb_max = WINO_SCRATCH_FLOATS / (16 * (j.ci + j.co)) / 16 * 16;
    if (tb_max > 256)
        tb_max = 256;
    if (tb_max < 16)
        tb_max = 16;
    int64_t tasks = (total + tb_max - 1) / tb_max;
    tasks = (tasks + cx->threads - 1) / cx->threads * cx->threads;
    int64_t tb = ((total + tasks - 1) / tasks + 15) / 16 * 16;
    if (tb > tb_max)
        tb = tb_max;
    j.tile_block = tb;

    gen_status st = gen__cpu_scratch_reserve(
        cx, (size_t)(16 * (j.ci + j.co) * tb + row_floats(j.tiles_w)), "conv2d");
    if (st != GEN_OK)
        return st;
    j.scratch = cx->scratch;
    float *u = NULL;
    st = gen__cpu_alloc(cx->be, (size_t)(16 * j.co * j.ci) * sizeof(float), (void **)&u);
    if (st != GEN_OK)
        return gen__error_prefix("conv2d: filter transform: ");
    filter_job fj = {weight->data, u, j.ci, j.co};
    gen__pool_run(cx->pool, j.co, 8, filter_task, &fj);
    j.u = u;
    gen__pool_run(cx->pool, (total + tb - 1) / tb, 1, tile_task, &j);
    gen__cpu_free(cx->be, u);
    return GEN_OK;
}
