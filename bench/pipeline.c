/* Stage timings of the Stable Diffusion networks on cpu:0, one JSON object per
 * line: weight load + upload per part, text encoder (batch 2), UNet step
 * (batch 2 = CFG, and batch 1; median after one warm-up), VAE decode and encode; peak device memory
 * and the process's peak RSS. Inputs are deterministic pseudo-random tensors (the weights come from
 * the model), so only the speed is meaningful.
 *
 * Usage: bench_pipeline MODEL [image_size=64] [unet_repeats=3] [threads=0]
 *   MODEL: a diffusers folder or a single .safetensors file.
 * Example: bench_pipeline tests/fixtures/tiny-sd15 64 5 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <gen/gen.h>

#include "backend/backend.h"
#include "core/time.h"
#include "model/model.h"
#include "pipeline/text_encoder.h"
#include "pipeline/unet.h"
#include "pipeline/vae.h"
#include "pipeline/weights.h"
#include "pipeline/weights_model.h"

#include "bench_util.h"

static const char *model_path;
static int image_size;

static void die(const char *what)
{
    fprintf(stderr, "bench_pipeline: %s: %s\n", what, gen_last_error_message());
    exit(1);
}

static double now(void)
{
    return (double)gen__monotonic_ns() * 1e-9;
}

static gen__tensor filled(gen__backend *be, int nd, const int64_t *shape, float amp)
{
    gen__tensor t;
    if (gen__tensor_alloc(&t, be, GEN__F32, nd, shape) != GEN_OK)
        die("alloc");
    size_t n = (size_t)gen__tensor_numel(&t);
    float *h = malloc(n * sizeof *h);
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        h[i] = amp * ((float)(s >> 8) / 16777216.0f * 2.0f - 1.0f);
    }
    if (gen__tensor_upload(&t, h, n * sizeof *h) != GEN_OK)
        die("upload");
    free(h);
    return t;
}

static void emit(const char *stage, const char *extra, double seconds, double cpu_seconds,
                 gen__backend *be)
{
    gen__backend_mem_info mi;
    gen__backend_memory(be, &mi);
    printf("{\"bench\":\"pipeline\",\"model\":\"%s\",\"image\":%d,\"stage\":\"%s\"%s,"
           "\"seconds\":%.4f,\"cpu_seconds\":%.4f,\"device_in_use_mb\":%.1f,\"device_peak_mb\":%.1f,"
           "\"peak_rss_mb\":%.1f}\n",
           model_path, image_size, stage, extra, seconds, cpu_seconds, (double)mi.bytes_in_use / 1048576.0,
           (double)mi.peak_bytes / 1048576.0, bench_peak_rss_mb());
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_pipeline MODEL [image_size] [unet_repeats] [threads]\n");
        return 2;
    }
    model_path = argv[1];
    image_size = argc > 2 ? atoi(argv[2]) : 64;
    int repeats = argc > 3 ? atoi(argv[3]) : 3;
    int threads = argc > 4 ? atoi(argv[4]) : 0;
    if (image_size < 8 || repeats < 1 || repeats > 64)
        return 2;

    gen__backend *be;
    gen__cpu_backend_options o = {0, threads, 0};
    if (gen__cpu_backend_create(&be, &o) != GEN_OK)
        die("cpu backend");
    gen__model *m;
    double t0 = now(), c0 = bench_cpu_seconds();
    if (gen__model_open(&m, model_path, NULL) != GEN_OK)
        die("open");
    emit("open", "", now() - t0, bench_cpu_seconds() - c0, be);

    gen__device_weights *dw[GEN__PART_COUNT];
    for (int p = 0; p < GEN__PART_COUNT; p++) {
        gen__host_weights *hw;
        t0 = now();
        c0 = bench_cpu_seconds();
        if (gen__host_weights_from_model(&hw, m, (gen__part)p) != GEN_OK ||
            gen__device_weights_upload(&dw[p], hw, be, GEN__F32) != GEN_OK)
            die("weights");
        gen__host_weights_destroy(hw);
        char extra[96];
        snprintf(extra, sizeof extra, ",\"part\":\"%s\",\"weights_mb\":%.1f",
                 gen__part_name((gen__part)p),
                 (double)gen__device_weights_bytes(dw[p]) / 1048576.0);
        emit("upload", extra, now() - t0, bench_cpu_seconds() - c0, be);
    }
    gen__text_encoder *te;
    gen__unet *unet;
    gen__vae *vae;
    if (gen__text_encoder_create(&te, gen__model_text_config(m), dw[GEN__PART_TEXT_ENCODER]) ||
        gen__unet_create(&unet, gen__model_unet_config(m), dw[GEN__PART_UNET]) ||
        gen__vae_create(&vae, gen__model_vae_config(m), dw[GEN__PART_VAE], true))
        die("networks");

    /* text encoder, batch 2 (prompt + negative) */
    const gen__text_config *tc = gen__model_text_config(m);
    int32_t ids[2 * 77];
    for (int i = 0; i < 2 * 77; i++)
        ids[i] = (int32_t)((i * 37 + 11) % tc->vocab_size);
    gen__tensor emb;
    double s[64], c[64];
    for (int r = 0; r < repeats; r++) {
        t0 = now();
        c0 = bench_cpu_seconds();
        if (gen__text_encoder_forward(te, &emb, ids, 2, 77, 0) != GEN_OK)
            die("text encoder");
        s[r] = now() - t0;
        c[r] = bench_cpu_seconds() - c0;
        if (r + 1 < repeats)
            gen__tensor_free(&emb);
    }
    emit("text_encoder", ",\"batch\":2", bench_median(s, repeats), bench_median(c, repeats), be);

    const gen__unet_config *uc = gen__model_unet_config(m);
    const int f = gen__vae_scale_factor(vae);
    const int64_t lh = image_size / f;
    for (int batch = 2; batch >= 1; batch--) {
        gen__tensor x = filled(be, 4, (int64_t[]){batch, uc->in_channels, lh, lh}, 1.0f), out;
        gen__tensor ctx;
        if (gen__tensor_view3(&ctx, &emb, batch, 77, emb.shape[2], 0) != GEN_OK)
            die("view");
        float t[2] = {500.0f, 500.0f};
        /* one untimed warm-up (scratch growth, first touch of the weights) */
        if (gen__unet_forward(unet, &out, &x, t, &ctx) != GEN_OK)
            die("unet");
        gen__tensor_free(&out);
        gen__backend_reset_peak(be);
        for (int r = 0; r < repeats; r++) {
            t0 = now();
            c0 = bench_cpu_seconds();
            if (gen__unet_forward(unet, &out, &x, t, &ctx) != GEN_OK)
                die("unet");
            s[r] = now() - t0;
            c[r] = bench_cpu_seconds() - c0;
            gen__tensor_free(&out);
        }
        emit("unet_step", batch == 2 ? ",\"batch\":2" : ",\"batch\":1", bench_median(s, repeats), bench_median(c, repeats), be);
        gen__tensor_free(&x);
    }
    gen__tensor_free(&emb);

    gen__tensor z = filled(be, 4, (int64_t[]){1, uc->in_channels, lh, lh}, 1.0f), img;
    gen__backend_reset_peak(be);
    int vr = repeats < 3 ? repeats : 3;
    for (int r = 0; r < vr; r++) {
        t0 = now();
        c0 = bench_cpu_seconds();
        if (gen__vae_decode(vae, &img, &z) != GEN_OK)
            die("vae decode");
        s[r] = now() - t0;
        c[r] = bench_cpu_seconds() - c0;
        if (r + 1 < vr)
            gen__tensor_free(&img);
    }
    emit("vae_decode", ",\"batch\":1", bench_median(s, vr), bench_median(c, vr), be);
    gen__tensor mean, sd;
    gen__backend_reset_peak(be);
    for (int r = 0; r < vr; r++) {
        t0 = now();
        c0 = bench_cpu_seconds();
        if (gen__vae_encode(vae, &mean, &sd, &img) != GEN_OK)
            die("vae encode");
        s[r] = now() - t0;
        c[r] = bench_cpu_seconds() - c0;
        gen__tensor_free(&mean);
        gen__tensor_free(&sd);
    }
    emit("vae_encode", ",\"batch\":1", bench_median(s, vr), bench_median(c, vr), be);
    gen__tensor_free(&img);
    gen__tensor_free(&z);

    gen__text_encoder_destroy(te);
    gen__unet_destroy(unet);
    gen__vae_destroy(vae);
    for (int p = 0; p < GEN__PART_COUNT; p++)
        gen__device_weights_release(dw[p]);
    gen__model_close(m);
    gen__backend_destroy(be);
    return 0;
}
