/* CPU backend throughput, one JSON object per line:
 *   BLAS alone (the machine's measured peak for these shapes), the backend's
 *   GEMM on one device and on two concurrent devices, conv2d 3x3 at the
 *   UNet's and VAE's shapes by im2col, by Winograd and by the automatic choice,
 *   and attention at N=4096 (SD 1.x 64x64 latent, 8 heads of 40).
 * Each figure is the median of several runs. Wall-clock GFLOP/s are compared
 * with BLAS alone on the same number of threads; flop per CPU-second (process
 * CPU time) with single-thread BLAS, which stays meaningful when other
 * processes share the cores. Usage: bench_ops [repeats] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_internal.h"
#include "core/time.h"

#include "bench_util.h"

static int repeats = 5;

static float *filled(size_t n)
{
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    return p;
}

static gen__tensor tensor(gen__backend *be, int nd, const int64_t *shape)
{
    gen__tensor t;
    if (gen__tensor_alloc(&t, be, GEN__F32, nd, shape) != GEN_OK) {
        fprintf(stderr, "bench_ops: %s\n", gen_last_error_message());
        exit(1);
    }
    float *h = filled((size_t)gen__tensor_numel(&t));
    gen__tensor_upload(&t, h, gen__tensor_nbytes(&t));
    free(h);
    return t;
}

/* CPU seconds (all threads) of the last time_it: on a shared machine the
 * flop per CPU-second is the figure that other users' load disturbs least */
static double last_cpu;
/* single-thread BLAS flop per CPU-second: the per-core peak all ops compare to */
static double blas_cpu_peak;

/* wall seconds of one call of fn(arg), median over repeats (after one warm-up) */
static double time_it(void (*fn)(void *), void *arg)
{
    double s[64], c[64];
    fn(arg);
    for (int i = 0; i < repeats; i++) {
        double c0 = bench_cpu_seconds();
        int64_t t0 = gen__monotonic_ns();
        fn(arg);
        s[i] = (double)(gen__monotonic_ns() - t0) * 1e-9;
        c[i] = bench_cpu_seconds() - c0;
    }
    last_cpu = bench_median(c, repeats);
    return bench_median(s, repeats);
}

enum { M = 320, N = 4096, K = 2880 };

typedef struct blas_arg {
    float *a, *b, *c;
} blas_arg;

static void blas_call(void *p)
{
    blas_arg *x = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, x->a, K, x->b, N, 0.0f,
                x->c, N);
}

typedef struct op_arg {
    gen__tensor *out, *a, *b, *c;
    int kind;
    gen_status st;
} op_arg;

static void op_call(void *p)
{
    op_arg *x = p;
    gen__conv2d_params cp = gen__conv2d_simple(1, 1);
    switch (x->kind) {
    case 0: x->st = gen__gemm(x->out, x->a, x->b, false, false, 1.0f, 0.0f); break;
    case 1: x->st = gen__conv2d(x->out, x->a, x->b, x->c, &cp); break;
    default: x->st = gen__attention(x->out, x->a, x->b, x->c, 8, 0.158113883f, false); break;
    }
    if (x->st != GEN_OK) {
        fprintf(stderr, "bench_ops: %s\n", gen_last_error_message());
        exit(1);
    }
}

static void *op_thread(void *p)
{
    op_arg *x = p;
    for (int i = 0; i < repeats; i++)
        op_call(x);
    return NULL;
}

static const double gemm_flop = 2.0 * M * N * K;

static void print(const char *name, const char *extra, double sec, double flop, double peak)
{
    printf("{\"bench\":\"%s\",%s\"seconds\":%.5f,\"gflops\":%.2f", name, extra, sec, flop / sec * 1e-9);
    if (last_cpu > 0)
        printf(",\"cpu_seconds\":%.5f,\"gflops_per_cpu_second\":%.2f", last_cpu, flop / last_cpu * 1e-9);
    if (last_cpu > 0 && blas_cpu_peak > 0)
        printf(",\"fraction_of_blas_per_cpu_second\":%.3f", flop / last_cpu * 1e-9 / blas_cpu_peak);
    if (peak > 0)
        printf(",\"fraction_of_blas_peak\":%.3f", flop / sec * 1e-9 / peak);
    printf("}\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        repeats = atoi(argv[1]) > 0 && atoi(argv[1]) <= 64 ? atoi(argv[1]) : 5;
    int cores = gen__cpu_thread_budget(0, 1);
    char extra[160];

    /* 1. BLAS alone: the measured peak of this machine for a conv-shaped sgemm */
    blas_arg ba = {filled((size_t)M * K), filled((size_t)K * N), filled((size_t)M * N)};
    openblas_set_num_threads(1);
    double blas1 = gemm_flop / time_it(blas_call, &ba) * 1e-9;
    snprintf(extra, sizeof(extra), "\"m\":%d,\"n\":%d,\"k\":%d,\"threads\":1,", M, N, K);
    print("blas_sgemm", extra, gemm_flop / blas1 * 1e-9, gemm_flop, 0);
    blas_cpu_peak = gemm_flop / last_cpu * 1e-9;
    openblas_set_num_threads(cores);
    double blasn = gemm_flop / time_it(blas_call, &ba) * 1e-9;
    snprintf(extra, sizeof(extra), "\"m\":%d,\"n\":%d,\"k\":%d,\"threads\":%d,", M, N, K, cores);
    print("blas_sgemm", extra, gemm_flop / blasn * 1e-9, gemm_flop, 0);
    free(ba.a), free(ba.b), free(ba.c);

    /* 2. backend GEMM: one device with every core, one device with one core */
    gen__backend *all, *one[2];
    gen__cpu_backend_options o = {0, cores, 0};
    if (gen__cpu_backend_create(&all, &o) != GEN_OK)
        return 1;
    int64_t as[2] = {M, K}, bs[2] = {K, N}, cs[2] = {M, N};
    gen__tensor a = tensor(all, 2, as), b = tensor(all, 2, bs), c = tensor(all, 2, cs);
    op_arg g = {&c, &a, &b, NULL, 0, 0};
    snprintf(extra, sizeof(extra), "\"device\":\"cpu:0\",\"threads\":%d,", cores);
    print("gen_gemm", extra, time_it(op_call, &g), gemm_flop, blasn);

    /* 3. two devices (cpu:0, cpu:1, budget split) running GEMM at the same time */
    gen__tensor ta[2], tb[2], tc[2];
    op_arg ga[2];
    for (int i = 0; i < 2; i++) {
        gen__cpu_backend_options oi = {i, gen__cpu_thread_budget(i, 2), 0};
        if (gen__cpu_backend_create(&one[i], &oi) != GEN_OK)
            return 1;
        ta[i] = tensor(one[i], 2, as), tb[i] = tensor(one[i], 2, bs), tc[i] = tensor(one[i], 2, cs);
        ga[i] = (op_arg){&tc[i], &ta[i], &tb[i], NULL, 0, 0};
    }
    snprintf(extra, sizeof(extra), "\"device\":\"cpu:0\",\"threads\":%d,",
             gen__cpu_thread_budget(0, 2));
    print("gen_gemm", extra, time_it(op_call, &ga[0]), gemm_flop, blas1 * gen__cpu_thread_budget(0, 2));
    pthread_t th[2];
    double c0 = bench_cpu_seconds();
    int64_t t0 = gen__monotonic_ns();
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, op_thread, &ga[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    double sec = (double)(gen__monotonic_ns() - t0) * 1e-9 / repeats;
    last_cpu = (bench_cpu_seconds() - c0) / repeats;
    snprintf(extra, sizeof(extra), "\"devices\":\"cpu:0+cpu:1 concurrent\",\"threads_each\":%d,",
             gen__cpu_thread_budget(0, 2));
    print("gen_gemm_2dev", extra, sec, 2 * gemm_flop, blasn);
    for (int i = 0; i < 2; i++) {
        gen__tensor_free(&ta[i]), gen__tensor_free(&tb[i]), gen__tensor_free(&tc[i]);
        gen__backend_destroy(one[i]);
    }
    gen__tensor_free(&a), gen__tensor_free(&b), gen__tensor_free(&c);

    /* 4. conv2d 3x3, padding 1, at the shapes of SD 1.x's UNet and VAE, by
     * each algorithm (GFLOP/s count the direct convolution's flops, so the
     * figures compare speed) and by the automatic choice */
    static const struct { int64_t n, c, hw; } shapes[] = {
        {1, 320, 64}, {2, 320, 64}, {2, 640, 32}, {2, 320, 32}, {2, 640, 16},
        {2, 1280, 16}, {2, 1280, 8}, {1, 512, 64}, {1, 256, 128}, {1, 128, 256}};
    static const char *const algorithm_names[] = {"auto", "im2col", "winograd"};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int64_t n = shapes[si].n, ch = shapes[si].c, hw = shapes[si].hw;
        int64_t xs[4] = {n, ch, hw, hw}, ws[4] = {ch, ch, 3, 3}, bias[1] = {ch};
        gen__tensor x = tensor(all, 4, xs), w = tensor(all, 4, ws), bv = tensor(all, 1, bias);
        gen__tensor y = tensor(all, 4, xs);
        op_arg cv = {&y, &x, &w, &bv, 1, 0};
        double conv_flop = 2.0 * (double)(n * ch * ch * 9 * hw * hw);
        for (int algo = 0; algo < 3; algo++) {
            gen__cpu_conv_algorithm = algo;
            gen__conv2d_params cp = gen__conv2d_simple(1, 1);
            const char *chosen = algo ? algorithm_names[algo]
                                 : gen__cpu_winograd_fits(ch, ch, 3, 3, &cp, hw, hw) ? "winograd"
                                                                                     : "im2col";
            snprintf(extra, sizeof(extra),
                     "\"shape\":\"%lldx%lldx%lldx%lld k3 -> %lld\",\"algorithm\":\"%s\","
                     "\"runs\":\"%s\",\"threads\":%d,",
                     (long long)n, (long long)ch, (long long)hw, (long long)hw, (long long)ch,
                     algorithm_names[algo], chosen, cores);
            print("gen_conv2d", extra, time_it(op_call, &cv), conv_flop, blasn);
        }
        gen__cpu_conv_algorithm = GEN__CPU_CONV_AUTO;
        gen__tensor_free(&x), gen__tensor_free(&w), gen__tensor_free(&bv), gen__tensor_free(&y);
    }

    /* 5. attention, N = 4096 tokens, 8 heads x 40 (SD 1.x at 512x512), on a
     * fresh device so its working memory (scratch) is measured alone */
    gen__backend_destroy(all);
    if (gen__cpu_backend_create(&all, &o) != GEN_OK)
        return 1;
    int64_t qs[3] = {1, 4096, 320};
    gen__tensor q = tensor(all, 3, qs), k = tensor(all, 3, qs), v = tensor(all, 3, qs);
    gen__tensor out = tensor(all, 3, qs);
    op_arg at = {&out, &q, &k, &v, 2, 0};
    double attn_flop = 4.0 * 4096.0 * 4096.0 * 320.0;
    gen__backend_reset_peak(all);
    gen__backend_mem_info before;
    gen__backend_memory(all, &before);
    sec = time_it(op_call, &at);
    gen__backend_mem_info after;
    gen__backend_memory(all, &after);
    snprintf(extra, sizeof(extra),
             "\"n\":4096,\"heads\":8,\"dim\":40,\"threads\":%d,\"queries_per_s\":%.0f,"
             "\"working_bytes\":%llu,",
             cores, 4096.0 / sec, (unsigned long long)(after.peak_bytes - before.bytes_in_use));
    print("gen_attention", extra, sec, attn_flop, blasn);
    gen__tensor_free(&q), gen__tensor_free(&k), gen__tensor_free(&v), gen__tensor_free(&out);
    gen__backend_destroy(all);
    return 0;
}
