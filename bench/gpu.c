/* CUDA backend throughput on one GPU, one JSON object per line:
 *   gemm       f16 GEMM TFLOP/s through gen__gemm vs cublasGemmEx called
 *              directly (same compute type), at SD shapes and 4096^3;
 *   conv2d     f16 3x3 convolutions at SD UNet/VAE shapes through gen__conv2d
 *              vs cuDNN called directly with its best measured algorithm, in
 *              NCHW (our layout) and NHWC (to see which layout is faster);
 *   attention  our fused kernel's TFLOP/s (4 B H Nq Nk D flops) at SD shapes;
 *   op_mix     time per op kind for one UNet-step-shaped sequence of ops (the
 *              SD1.5 layer shapes at 512x512, batch 2);
 *   unet_step  the real lib/pipeline networks on a generated full-size SD1.5
 *              file (zero weights) in f16: UNet step at batch 2, text encoder,
 *              VAE decode 512x512, 20-step image estimate (GEN_BENCH_DIR: where
 *              the 2 GB sparse file goes, default /tmp);
 *   generate   whole 512x512 20-step images from that file through gen_generate
 *              on a cuda:N context (first image with loading, warm median).
 * Times are medians of 5 batches of back-to-back calls ended by a sync.
 * Exits 77 when there is no CUDA device. Usage: bench_gpu [device index] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wundef"
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#pragma GCC diagnostic pop

#include <gen/gen.h>

#include "backend/backend.h"
#include "backend/cuda_backend.h"
#include "backend/gpu_probe.h"
#include "context/context_internal.h"
#include "core/time.h"
#include "model/model.h"
#include "pipeline/text_encoder.h"
#include "pipeline/unet.h"
#include "pipeline/vae.h"
#include "pipeline/weights.h"
#include "pipeline/weights_model.h"
#include "sd_ldm.h"

static gen__backend *be, *be_mma; /* be_mma: tensor-core attention (NULL before sm_80) */
static int bench_device_index;

static void die(const char *what)
{
    fprintf(stderr, "bench_gpu: %s: %s\n", what, gen_last_error_message());
    exit(1);
}

#define OK(call)                                                                                   \
    do {                                                                                           \
        if ((call) != GEN_OK)                                                                      \
            die(#call);                                                                            \
    } while (0)

typedef void (*run_fn)(void *arg);
typedef void (*sync_fn)(void);

static void sync_backend(void)
{
    OK(gen__backend_synchronize(be));
}

static void sync_device(void)
{
    if (cudaDeviceSynchronize() != cudaSuccess) {
        fprintf(stderr, "bench_gpu: cudaDeviceSynchronize failed\n");
        exit(1);
    }
}

/* Seconds per call: a batch of back-to-back calls (sized to ~30 ms from a
 * warm-up) ended by a sync, median of 5 batches. */
static double time_calls(run_fn fn, void *arg, sync_fn sync)
{
    fn(arg);
    sync();
    int64_t t0 = gen__monotonic_ns();
    fn(arg);
    sync();
    double one = (double)(gen__monotonic_ns() - t0) * 1e-9;
    int reps = one > 0 ? (int)(0.03 / one) : 100;
    reps = reps < 1 ? 1 : reps > 200 ? 200 : reps;
    double s[5];
    for (int b = 0; b < 5; b++) {
        t0 = gen__monotonic_ns();
        for (int i = 0; i < reps; i++)
            fn(arg);
        sync();
        s[b] = (double)(gen__monotonic_ns() - t0) * 1e-9 / reps;
    }
    return bench_median(s, 5);
}

static gen__tensor tensor(gen__dtype dt, int nd, const int64_t *shape)
{
    gen__tensor t;
    OK(gen__tensor_alloc(&t, be, dt, nd, shape));
    size_t n = (size_t)gen__tensor_numel(&t);
    float *h = malloc(n * sizeof(float));
    uint16_t *c = malloc(n * sizeof(uint16_t) * 2);
    for (size_t i = 0; i < n; i++)
        h[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    gen__convert_host(c, dt, h, GEN__F32, n);
    OK(gen__tensor_upload(&t, c, gen__tensor_nbytes(&t)));
    free(h);
    free(c);
    return t;
}

#define SHAPE(...) (int64_t[]){__VA_ARGS__}

/* ---- GEMM ------------------------------------------------------------------------- */

typedef struct gemm_arg {
    gen__tensor a, b, c;
    cublasHandle_t h;
    int m, n, k;
} gemm_arg;

static void gemm_ours(void *p)
{
    gemm_arg *g = p;
    OK(gen__gemm(&g->c, &g->a, &g->b, false, false, 1.0f, 0.0f));
}

static void gemm_cublas(void *p)
{
    gemm_arg *g = p;
    const float one = 1.0f, zero = 0.0f;
    cublasStatus_t st = cublasGemmEx(g->h, CUBLAS_OP_N, CUBLAS_OP_N, g->n, g->m, g->k, &one,
                                     g->b.data, CUDA_R_16F, g->n, g->a.data, CUDA_R_16F, g->k,
                                     &zero, g->c.data, CUDA_R_16F, g->n, CUBLAS_COMPUTE_32F,
                                     CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "bench_gpu: cublasGemmEx: %s\n", cublasGetStatusString(st));
        exit(1);
    }
}

static void bench_gemm(void)
{
    int shapes[][3] = {{4096, 4096, 4096}, {8192, 1280, 320}, {8192, 320, 1280},
                       {2048, 5120, 640}, {512, 10240, 1280}, {154, 320, 768}};
    cublasHandle_t h;
    if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS)
        return;
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        gemm_arg g = {0};
        g.m = shapes[i][0];
        g.n = shapes[i][1];
        g.k = shapes[i][2];
        g.a = tensor(GEN__F16, 2, SHAPE(g.m, g.k));
        g.b = tensor(GEN__F16, 2, SHAPE(g.k, g.n));
        g.c = tensor(GEN__F16, 2, SHAPE(g.m, g.n));
        g.h = h;
        double flops = 2.0 * g.m * g.n * g.k;
        double ours = time_calls(gemm_ours, &g, sync_backend);
        double ref = time_calls(gemm_cublas, &g, sync_device);
        printf("{\"bench\":\"gemm\",\"dtype\":\"f16\",\"m\":%d,\"n\":%d,\"k\":%d,\"ours_ms\":%.4f,"
               "\"ours_tflops\":%.1f,\"cublas_ms\":%.4f,\"cublas_tflops\":%.1f,\"ratio\":%.3f}\n",
               g.m, g.n, g.k, ours * 1e3, flops / ours * 1e-12, ref * 1e3, flops / ref * 1e-12,
               ref / ours);
        fflush(stdout);
        gen__tensor_free(&g.a);
        gen__tensor_free(&g.b);
        gen__tensor_free(&g.c);
    }
    cublasDestroy(h);
}

/* ---- conv2d ---------------------------------------------------------------------- */

typedef struct conv_arg {
    gen__tensor x, w, b, y;
    gen__conv2d_params p;
    cudnnHandle_t h;
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    cudnnConvolutionFwdAlgo_t algo;
    void *ws;
    size_t ws_bytes;
} conv_arg;

static void conv_ours(void *p)
{
    conv_arg *c = p;
    OK(gen__conv2d(&c->y, &c->x, &c->w, NULL, &c->p));
}

static void conv_cudnn(void *p)
{
    conv_arg *c = p;
    const float one = 1.0f, zero = 0.0f;
    cudnnStatus_t st = cudnnConvolutionForward(c->h, &one, c->xd, c->x.data, c->wd, c->w.data,
                                               c->cd, c->algo, c->ws, c->ws_bytes, &zero, c->yd,
                                               c->y.data);
    if (st != CUDNN_STATUS_SUCCESS) {
        fprintf(stderr, "bench_gpu: cudnnConvolutionForward: %s\n", cudnnGetErrorString(st));
        exit(1);
    }
}

/* cuDNN alone in `format` with its fastest measured algorithm; seconds or -1 */
static double cudnn_direct(conv_arg *c, cudnnTensorFormat_t format, int n, int ci, int h, int w,
                           int co, int k, int pad)
{
    cudnnCreateTensorDescriptor(&c->xd);
    cudnnCreateTensorDescriptor(&c->yd);
    cudnnCreateFilterDescriptor(&c->wd);
    cudnnCreateConvolutionDescriptor(&c->cd);
    cudnnSetTensor4dDescriptor(c->xd, format, CUDNN_DATA_HALF, n, ci, h, w);
    cudnnSetTensor4dDescriptor(c->yd, format, CUDNN_DATA_HALF, n, co, h + 2 * pad - k + 1,
                               w + 2 * pad - k + 1);
    cudnnSetFilter4dDescriptor(c->wd, CUDNN_DATA_HALF, format, co, ci, k, k);
    cudnnSetConvolution2dDescriptor(c->cd, pad, pad, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                    CUDNN_DATA_FLOAT);
    cudnnSetConvolutionMathType(c->cd, CUDNN_TENSOR_OP_MATH);
    c->ws_bytes = (size_t)256 << 20;
    double t = -1;
    if (cudaMalloc(&c->ws, c->ws_bytes) == cudaSuccess) {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        int found = 0;
        if (cudnnFindConvolutionForwardAlgorithmEx(c->h, c->xd, c->x.data, c->wd, c->w.data, c->cd,
                                                   c->yd, c->y.data, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                   &found, perf, c->ws, c->ws_bytes) ==
                CUDNN_STATUS_SUCCESS &&
            found > 0 && perf[0].status == CUDNN_STATUS_SUCCESS) {
            c->algo = perf[0].algo;
            cudnnSetConvolutionMathType(c->cd, perf[0].mathType);
            t = time_calls(conv_cudnn, c, sync_device);
        }
        cudaFree(c->ws);
    }
    cudnnDestroyTensorDescriptor(c->xd);
    cudnnDestroyTensorDescriptor(c->yd);
    cudnnDestroyFilterDescriptor(c->wd);
    cudnnDestroyConvolutionDescriptor(c->cd);
    return t;
}

static void bench_conv(void)
{
    int shapes[][6] = {/* n, ci, h, w, co, k */
                       {2, 320, 64, 64, 320, 3}, {2, 640, 32, 32, 640, 3},
                       {2, 1280, 16, 16, 1280, 3}, {2, 1280, 8, 8, 1280, 3},
                       {2, 4, 64, 64, 320, 3},     {1, 512, 64, 64, 512, 3},
                       {1, 256, 256, 256, 256, 3}, {1, 128, 512, 512, 128, 3}};
    cudnnHandle_t h;
    if (cudnnCreate(&h) != CUDNN_STATUS_SUCCESS)
        return;
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        int n = shapes[i][0], ci = shapes[i][1], hh = shapes[i][2], ww = shapes[i][3];
        int co = shapes[i][4], k = shapes[i][5];
        conv_arg c = {0};
        c.h = h;
        c.p = gen__conv2d_simple(1, k / 2);
        c.x = tensor(GEN__F16, 4, SHAPE(n, ci, hh, ww));
        c.w = tensor(GEN__F16, 4, SHAPE(co, ci, k, k));
        c.y = tensor(GEN__F16, 4, SHAPE(n, co, hh, ww));
        double flops = 2.0 * n * co * hh * ww * ci * k * k;
        double ours = time_calls(conv_ours, &c, sync_backend);
        double nchw = cudnn_direct(&c, CUDNN_TENSOR_NCHW, n, ci, hh, ww, co, k, k / 2);
        double nhwc = cudnn_direct(&c, CUDNN_TENSOR_NHWC, n, ci, hh, ww, co, k, k / 2);
        printf("{\"bench\":\"conv2d\",\"dtype\":\"f16\",\"shape\":\"[%d,%d,%d,%d]->%d k%d\","
               "\"ours_ms\":%.4f,\"ours_tflops\":%.1f,\"cudnn_nchw_ms\":%.4f,"
               "\"cudnn_nhwc_ms\":%.4f,\"cudnn_nchw_tflops\":%.1f,\"cudnn_nhwc_tflops\":%.1f}\n",
               n, ci, hh, ww, co, k, ours * 1e3, flops / ours * 1e-12, nchw * 1e3, nhwc * 1e3,
               nchw > 0 ? flops / nchw * 1e-12 : 0.0, nhwc > 0 ? flops / nhwc * 1e-12 : 0.0);
        fflush(stdout);
        gen__tensor_free(&c.x);
        gen__tensor_free(&c.w);
        gen__tensor_free(&c.y);
    }
    cudnnDestroy(h);
}

/* ---- attention ------------------------------------------------------------------- */

typedef struct attn_arg {
    gen__tensor q, k, v, o;
    int heads;
    float scale;
    bool causal;
} attn_arg;

static void attn_ours(void *p)
{
    attn_arg *a = p;
    OK(gen__attention(&a->o, &a->q, &a->k, &a->v, a->heads, a->scale, a->causal));
}

static void bench_attention(const char *kernel)
{
    /* batch, heads, nq, nk, d: SD1.5 self-attention at 64/32/16/8 latents (CFG batch 2,
     * 8 heads), SD2 / SDXL-like D=64, cross-attention over 77 tokens, CLIP causal */
    int shapes[][5] = {{2, 8, 4096, 4096, 40}, {2, 8, 1024, 1024, 80}, {2, 8, 256, 256, 160},
                       {2, 8, 64, 64, 160},    {2, 8, 4096, 77, 40},   {2, 10, 4096, 4096, 64},
                       {2, 12, 77, 77, 64}};
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        int b = shapes[i][0], h = shapes[i][1], nq = shapes[i][2], nk = shapes[i][3];
        int d = shapes[i][4];
        attn_arg a = {0};
        a.heads = h;
        a.scale = 1.0f / sqrtf((float)d);
        a.causal = i == 6;
        a.q = tensor(GEN__F16, 3, SHAPE(b, nq, (int64_t)h * d));
        a.k = tensor(GEN__F16, 3, SHAPE(b, nk, (int64_t)h * d));
        a.v = tensor(GEN__F16, 3, SHAPE(b, nk, (int64_t)h * d));
        a.o = tensor(GEN__F16, 3, SHAPE(b, nq, (int64_t)h * d));
        double flops = 4.0 * b * h * (double)nq * nk * d * (a.causal ? 0.5 : 1.0);
        double t = time_calls(attn_ours, &a, sync_backend);
        printf("{\"bench\":\"attention\",\"kernel\":\"%s\",\"dtype\":\"f16\",\"bh\":%d,"
               "\"nq\":%d,\"nk\":%d,\"d\":%d,\"causal\":%s,\"ms\":%.4f,\"tflops\":%.2f}\n",
               kernel, b * h, nq, nk, d, a.causal ? "true" : "false", t * 1e3, flops / t * 1e-12);
        fflush(stdout);
        gen__tensor_free(&a.q);
        gen__tensor_free(&a.k);
        gen__tensor_free(&a.v);
        gen__tensor_free(&a.o);
    }
}

#include "gpu_generate.h"
#include "gpu_op_mix.h"

int main(int argc, char **argv)
{
    int index = argc > 1 ? atoi(argv[1]) : 0;
    bench_device_index = index;
    const char *why = NULL;
    if (gen__gpu_count(&why) == 0) {
        printf("{\"bench\":\"gpu\",\"skipped\":\"no CUDA device: %s\"}\n", why ? why : "none");
        return 77;
    }
    gen__cuda_backend_options o = {.index = index};
    OK(gen__cuda_backend_create(&be, &o));
    gen__cuda_backend_set_attention(be, GEN__CUDA_ATTENTION_SIMPLE);
    OK(gen__cuda_backend_create(&be_mma, &o));
    if (!gen__cuda_backend_set_attention(be_mma, GEN__CUDA_ATTENTION_MMA)) {
        gen__backend_destroy(be_mma); /* before sm_80 */
        be_mma = NULL;
    }
    OK(cudaSetDevice(index) == cudaSuccess ? GEN_OK : GEN_EDEVICE);
    gen__gpu_props props;
    if (gen__gpu_props_get(index, &props) == GEN_OK)
        printf("{\"bench\":\"device\",\"name\":\"%s\",\"memory_mib\":%llu,\"cc\":%d}\n", props.name,
               (unsigned long long)(props.total_memory >> 20), props.compute_capability);
    const char *only = getenv("GEN_BENCH_ONLY"); /* gemm, conv2d, attention, op_mix */
    if (!only || strstr(only, "gemm"))
        bench_gemm();
    if (!only || strstr(only, "conv2d"))
        bench_conv();
    if (!only || strstr(only, "attention")) {
        bench_attention("simple");
        if (be_mma) { /* same shapes through the tensor-core kernel */
            gen__backend *saved = be;
            be = be_mma;
            bench_attention("mma");
            be = saved;
        }
    }
    if (!only || strstr(only, "op_mix")) {
        bench_op_mix("simple");
        if (be_mma) {
            gen__backend *saved = be;
            be = be_mma;
            bench_op_mix("mma");
            be = saved;
        }
    }
    if (!only || strstr(only, "unet"))
        unet_step_hook();
    gen__backend_mem_info mi;
    gen__backend_memory(be, &mi);
    printf("{\"bench\":\"memory\",\"peak_mib\":%.1f,\"in_use_mib\":%.1f}\n",
           (double)mi.peak_bytes / (1 << 20), (double)mi.bytes_in_use / (1 << 20));
    gen__backend_destroy(be_mma);
    gen__backend_destroy(be);
    return 0;
}
