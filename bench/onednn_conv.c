/* Measurement behind the conv2d choice (issue 3): oneDNN 2.x (Debian
 * libdnnl-dev, OpenMP) on the SD 3x3 320->320 64x64 convolution, against which
 * bench_ops's gen_conv2d (blocked im2col + OpenBLAS) is compared. Built only
 * where libdnnl is installed; prints JSON lines like bench_ops.
 *   nchw: activations stay NCHW (what the pipeline holds), weights in oneDNN's
 *         preferred layout (reordered once, as a model loader would);
 *   blocked: every tensor in oneDNN's preferred layout (reorders not counted). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#define CHECK(x)                                                           \
    do {                                                                   \
        dnnl_status_t s_ = (x);                                            \
        if (s_ != dnnl_success) {                                          \
            fprintf(stderr, "onednn_conv: %s failed (%d)\n", #x, (int)s_); \
            exit(1);                                                       \
        }                                                                  \
    } while (0)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void run(dnnl_engine_t eng, dnnl_stream_t st, int blocked, int threads, int repeats)
{
    dnnl_dims_t src = {1, 320, 64, 64}, wei = {320, 320, 3, 3}, bia = {320}, dst = {1, 320, 64, 64};
    dnnl_dims_t strides = {1, 1}, pad = {1, 1};
    dnnl_memory_desc_t src_md, wei_md, bia_md, dst_md;
    dnnl_format_tag_t act = blocked ? dnnl_format_tag_any : dnnl_nchw;
    CHECK(dnnl_memory_desc_init_by_tag(&src_md, 4, src, dnnl_f32, act));
    CHECK(dnnl_memory_desc_init_by_tag(&wei_md, 4, wei, dnnl_f32, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&bia_md, 1, bia, dnnl_f32, dnnl_x));
    CHECK(dnnl_memory_desc_init_by_tag(&dst_md, 4, dst, dnnl_f32, act));
    dnnl_convolution_desc_t cd;
    CHECK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct,
                                             &src_md, &wei_md, &bia_md, &dst_md, strides, pad, pad));
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_primitive_desc_create(&pd, &cd, NULL, eng, NULL));
    const char *impl = "?";
    CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
    dnnl_memory_t m[4];
    const dnnl_query_t q[4] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_weights_md,
                               dnnl_query_dst_md};
    for (int i = 0; i < 4; i++) {
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, q[i], i == 2 ? 1 : 0);
        CHECK(dnnl_memory_create(&m[i], md, eng, DNNL_MEMORY_ALLOCATE));
        void *p;
        CHECK(dnnl_memory_get_data_handle(m[i], &p));
        size_t n = dnnl_memory_desc_get_size(md) / sizeof(float);
        for (size_t k = 0; k < n; k++)
            ((float *)p)[k] = (float)((k * 2654435761u) % 1000) / 1000.0f - 0.5f;
    }
    dnnl_primitive_t conv;
    CHECK(dnnl_primitive_create(&conv, pd));
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, m[0]}, {DNNL_ARG_WEIGHTS, m[1]},
                               {DNNL_ARG_BIAS, m[2]}, {DNNL_ARG_DST, m[3]}};
    double t[64];
    CHECK(dnnl_primitive_execute(conv, st, 4, args));
    CHECK(dnnl_stream_wait(st));
    for (int r = 0; r < repeats; r++) {
        double t0 = now();
        CHECK(dnnl_primitive_execute(conv, st, 4, args));
        CHECK(dnnl_stream_wait(st));
        t[r] = now() - t0;
    }
    qsort(t, (size_t)repeats, sizeof(double), cmp);
    double sec = t[repeats / 2], flop = 2.0 * 320 * 320 * 9 * 64 * 64;
    printf("{\"bench\":\"onednn_conv2d\",\"layout\":\"%s\",\"impl\":\"%s\",\"threads\":%d,"
           "\"seconds\":%.5f,\"gflops\":%.2f}\n",
           blocked ? "blocked" : "nchw", impl, threads, sec, flop / sec * 1e-9);
    fflush(stdout);
    dnnl_primitive_destroy(conv);
    for (int i = 0; i < 4; i++)
        dnnl_memory_destroy(m[i]);
    dnnl_primitive_desc_destroy(pd);
}

int main(int argc, char **argv)
{
    int repeats = argc > 1 && atoi(argv[1]) > 0 && atoi(argv[1]) <= 64 ? atoi(argv[1]) : 5;
    dnnl_engine_t eng;
    dnnl_stream_t st;
    CHECK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&st, eng, dnnl_stream_default_flags));
    int maxt = omp_get_max_threads();
    for (int threads = 1; threads <= maxt; threads = threads == maxt ? maxt + 1 : maxt) {
        omp_set_num_threads(threads);
        run(eng, st, 0, threads, repeats);
        run(eng, st, 1, threads, repeats);
    }
    dnnl_stream_destroy(st);
    dnnl_engine_destroy(eng);
    return 0;
}
